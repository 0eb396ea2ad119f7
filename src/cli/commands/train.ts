import type { Command } from 'commander';
import { trainTransfer, TRANSFER_OPTIONS, type TransferTrainOptions } from '../../training/transfer.js';
import { addOptions } from '../options.js';
import type { DatasetInfo } from '../../artifacts/run.js';
import { formatEvaluation } from './custom.js';
import { abortOnCtrlC, resumeOption } from '../run-control.js';
import { reportOrWarn } from '../../reporting/report.js';

type TrainFlags = Omit<TransferTrainOptions, 'dataDir' | 'command' | 'signal'>;

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
  const train = program
    .command('train')
    .description('transfer learning: a frozen pretrained base and a new classifier head, trained on an image folder')
    .argument('<data-dir>', 'one sub-folder of images per class, or train/ [val/] [test/] sub-trees of them');
  addOptions(train, TRANSFER_OPTIONS)
    .addOption(resumeOption())
    .action(async (dataDir: string, flags: TrainFlags) => {
      const { runDir, metrics } = await trainTransfer({ ...flags, dataDir, command: commandLine(), signal: abortOnCtrlC() });
      reportSkipped(metrics.dataset);
      console.log(formatEvaluation(metrics.test));
      console.log(`run: ${runDir}`);
      await reportOrWarn(runDir);
      if (metrics.interrupted) process.exitCode = 130;
    });
}
