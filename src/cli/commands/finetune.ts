import type { Command } from 'commander';
import { finetune, FINETUNE_OPTIONS, type FinetuneOptions } from '../../training/finetune.js';
import { formatEvaluation } from './custom.js';
import { commandLine, reportSkipped } from './train.js';
import { abortOnCtrlC, resumeOption } from '../run-control.js';
import { addOptions } from '../options.js';

type FinetuneFlags = Omit<FinetuneOptions, 'run' | 'dataDir' | 'command' | 'signal'>;

export function register(program: Command): void {
  const command = program
    .command('finetune')
    .description('fine-tune a transfer run end to end (BatchNorm statistics frozen) into a new run directory')
    .argument('<run>', 'run directory written by tl train (or tl finetune)')
    .argument('[data-dir]', 'image folder (default: the one the run was trained on)');
  addOptions(command, FINETUNE_OPTIONS)
    .addOption(resumeOption())
    .action(async (run: string, dataDir: string | undefined, flags: FinetuneFlags) => {
      const { runDir, metrics } = await finetune({ ...flags, run, dataDir, command: commandLine(), signal: abortOnCtrlC() });
      reportSkipped(metrics.dataset);
      console.log(formatEvaluation(metrics.test));
      console.log(`run: ${runDir}`);
      if (metrics.interrupted) process.exitCode = 130;
    });
}
