import type { Command } from 'commander';
import path from 'node:path';
import { lrFind, LR_FIND_OPTIONS, type LrFindOptions } from '../../training/lr-find.js';
import { formatLr, lrFindSpec, LR_FIND_FILE, saveLrFindResult } from '../../reporting/lr-find-chart.js';
import { reportOrWarn } from '../../reporting/report.js';
import { renderVegaLite } from '../../reporting/vega.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { addOptions } from '../options.js';

type LrFindFlags = Omit<LrFindOptions, 'source'> & { out?: string };

export function register(program: Command): void {
  const command = program
    .command('lr-find')
    .description("learning-rate range test for tl train's head (fastai's lr_find): a loss-vs-rate plot and a suggested rate")
    .argument('<run-or-data>', 'a run written by tl train, or an image folder (then --backbone)');
  addOptions(command, LR_FIND_OPTIONS).action(async (source: string, flags: LrFindFlags) => {
    const result = await lrFind({ ...flags, source });
    const out = path.resolve(flags.out ?? (result.run ? path.join(result.run, 'lr-find.png') : 'lr-find.png'));
    const chart = await renderVegaLite(lrFindSpec(result));
    await writeFileAtomic(out, chart.png);
    const points = out.replace(/\.png$/i, '') + '.json';
    await saveLrFindResult(points, result);
    console.log(`suggested learning rate ${formatLr(result.suggestedLr)} (lowest loss at ${formatLr(result.minLossLr)}; ${result.points.length} steps)`);
    console.log(`plot: ${out}`);
    if (result.run) {
      // The run keeps the result (wherever --out put the plot), and its report shows it.
      const kept = path.join(result.run, LR_FIND_FILE);
      if (kept !== points) await saveLrFindResult(kept, result);
      await reportOrWarn(result.run);
    }
  });
}
