import type { Command } from 'commander';
import { trainTransfer, TRANSFER_OPTIONS, type TransferTrainOptions } from '../../training/transfer.js';
import { addOptions } from '../options.js';
import { abortOnCtrlC, finishTrainingCommand, resumeOption } from '../run-control.js';

type TrainFlags = Omit<TransferTrainOptions, 'dataDir' | 'command' | 'signal'>;

/** The command line as typed, recorded in run.json so a run can be repeated. */
export function commandLine(): string {
  return ['tl', ...process.argv.slice(2)].join(' ');
}


export function register(program: Command): void {
  const train = program
    .command('train')
    .description('transfer learning: a frozen pretrained base and a new classifier head, trained on an image folder')
    .argument('<data-dir>', 'one sub-folder of images per class, or train/ [val/] [test/] sub-trees of them');
  addOptions(train, TRANSFER_OPTIONS)
    .addOption(resumeOption())
    .action(async (dataDir: string, flags: TrainFlags) => {
      await finishTrainingCommand(await trainTransfer({ ...flags, dataDir, command: commandLine(), signal: abortOnCtrlC() }));
    });
}
