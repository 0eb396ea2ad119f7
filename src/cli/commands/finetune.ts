import type { Command } from 'commander';
import { finetune, parseUnfreeze } from '../../training/finetune.js';
import { formatEvaluation, parseInteger, parseNumber } from './custom.js';
import { commandLine, reportSkipped } from './train.js';
import { abortOnCtrlC, resumeOption } from '../run-control.js';

interface FinetuneFlags {
  unfreeze: 'all' | number;
  lr: number;
  epochs: number;
  batchSize?: number;
  out?: string;
  resume?: boolean;
}

export function register(program: Command): void {
  program
    .command('finetune')
    .description('fine-tune a transfer run end to end (BatchNorm statistics frozen) into a new run directory')
    .argument('<run>', 'run directory written by tl train (or tl finetune)')
    .argument('[data-dir]', 'image folder (default: the one the run was trained on)')
    .option('--unfreeze <which>', '"all", or N: train the last N layers of the base (plus the head)', parseUnfreeze, 'all')
    .option('--lr <x>', 'Adam learning rate (small: the base is pretrained)', parseNumber, 1e-5)
    .option('--epochs <n>', 'epochs of fine-tuning', parseInteger, 3)
    .option('--batch-size <n>', 'mini-batch size (default: the parent run\'s)', parseInteger)
    .option('--out <dir>', 'new run directory (default RUN-finetune; the parent is never overwritten)')
    .addOption(resumeOption())
    .action(async (run: string, dataDir: string | undefined, flags: FinetuneFlags) => {
      const { runDir, metrics } = await finetune({ ...flags, run, dataDir, command: commandLine(), signal: abortOnCtrlC() });
      reportSkipped(metrics.dataset);
      console.log(formatEvaluation(metrics.test));
      console.log(`run: ${runDir}`);
      if (metrics.interrupted) process.exitCode = 130;
    });
}
