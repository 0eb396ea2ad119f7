import type { Command } from 'commander';
import { trainTransfer } from '../../training/transfer.js';
import type { DatasetInfo } from '../../artifacts/run.js';
import { formatEvaluation, parseInteger, parseNumber } from './custom.js';
import { abortOnCtrlC, resumeOption } from '../run-control.js';

interface TrainFlags {
  backbone: string;
  alpha?: number;
  weights: string;
  epochs: number;
  batchSize: number;
  lr: number;
  size: number;
  valSplit: number;
  seed: number;
  out?: string;
  resume?: boolean;
}

/** The command line as typed, recorded in run.json so a run can be repeated. */
export function commandLine(): string {
  return ['tl', ...process.argv.slice(2)].join(' ');
}

/** Files that could not be used, one line each (on stderr: stdout stays the result). */
export function reportSkipped(dataset: DatasetInfo): void {
  const skipped = dataset.skipped ?? [];
  if (skipped.length === 0) return;
  process.stderr.write(`skipped ${skipped.length} file(s):\n`);
  for (const s of skipped) process.stderr.write(`  ${s.file}: ${s.reason}\n`);
}

export function register(program: Command): void {
  program
    .command('train')
    .description('transfer learning: a frozen pretrained base and a new classifier head, trained on an image folder')
    .argument('<data-dir>', 'one sub-folder of images per class, or train/ [val/] [test/] sub-trees of them')
    .requiredOption('--backbone <name>', 'base network (tl backbones list), e.g. mobilenet')
    .option('--alpha <a>', 'width multiplier, for backbones that have one (mobilenet: 0.25, 0.5, 0.75, 1.0)', parseNumber)
    .option('--weights <src>', 'imagenet (from the cache), none (random), a catalog id, or a .h5 file / tfjs model folder', 'imagenet')
    .option('--epochs <n>', 'epochs of head training', parseInteger, 5)
    .option('--batch-size <n>', 'mini-batch size', parseInteger, 32)
    .option('--lr <x>', 'Adam learning rate', parseNumber, 1e-3)
    .option('--size <px>', 'square input size the images are resized to', parseInteger, 150)
    .option('--val-split <f>', 'validation fraction (stratified) when there is no val/ folder', parseNumber, 0.1)
    .option('--seed <n>', 'seed for the split, initialisation and shuffles', parseInteger, 1)
    .option('--out <dir>', 'run directory (default runs/<data>-<backbone>-<time>)')
    .addOption(resumeOption())
    .action(async (dataDir: string, flags: TrainFlags) => {
      const { runDir, metrics } = await trainTransfer({ ...flags, dataDir, command: commandLine(), signal: abortOnCtrlC() });
      reportSkipped(metrics.dataset);
      console.log(formatEvaluation(metrics.test));
      console.log(`run: ${runDir}`);
      if (metrics.interrupted) process.exitCode = 130;
    });
}
