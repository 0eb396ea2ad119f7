import type { Command } from 'commander';
import { finetune, FINETUNE_OPTIONS, type FinetuneOptions } from '../../training/finetune.js';
import { commandLine } from './train.js';
import { abortOnCtrlC, finishTrainingCommand, resumeOption } from '../run-control.js';
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
      await finishTrainingCommand(await finetune({ ...flags, run, dataDir, command: commandLine(), signal: abortOnCtrlC() }));
    });
}
