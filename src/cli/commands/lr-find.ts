import type { Command } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { lrFind, LR_FIND_OPTIONS, type LrFindOptions } from '../../training/lr-find.js';
import { lrFindSpec } from '../../reporting/lr-find-chart.js';
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
    await fs.mkdir(path.dirname(out), { recursive: true });
    await writeFileAtomic(out, chart.png);
    await writeFileAtomic(out.replace(/\.png$/i, '') + '.json', JSON.stringify(result, null, 2) + '\n');
    console.log(`suggested learning rate ${result.suggestedLr.toExponential(1)} (lowest loss at ${result.minLossLr.toExponential(1)}; ${result.points.length} steps)`);
    console.log(`plot: ${out}`);
  });
}
