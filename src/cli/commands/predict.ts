import type { Command } from 'commander';
import type { SkippedFile } from '../../data/image-folder.js';
import { expandImagePaths, formatRanked, openRun, predictFiles, PREDICT_OPTIONS, type FilePrediction } from '../../training/predict.js';
import { commanderOption } from '../options.js';

/** Ranked classes per file (or JSON), skipped files on stderr; exit 1 when nothing could be read. */
export function printPredictions(result: { predictions: FilePrediction[]; skipped: SkippedFile[] }, json: boolean, extra: object = {}): void {
  const { predictions, skipped } = result;
  if (json) {
    console.log(JSON.stringify({ ...extra, predictions, skipped }, null, 2));
  } else {
    for (const p of predictions) {
      console.log(p.file);
      for (const r of p.top) console.log(`  ${formatRanked(r)}`);
    }
    for (const s of skipped) console.error(`skipped ${s.file}: ${s.reason}`);
  }
  if (predictions.length === 0) process.exitCode = 1;
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('classify images with a trained run (transfer, finetune or custom)')
    .argument('<run>', 'run directory written by tl train, tl finetune or tl custom train')
    .argument('<images...>', 'image files or folders of images')
    .addOption(commanderOption('topK', PREDICT_OPTIONS.topK))
    .option('--json', 'machine-readable output')
    .action(async (runDir: string, inputs: string[], flags: { topK: number; json?: boolean }) => {
      const run = await openRun(runDir);
      const files = await expandImagePaths(inputs);
      const result = await predictFiles(run, files, { topK: flags.topK });
      run.model.dispose();
      printPredictions(result, flags.json === true, { run: run.dir });
    });
}
