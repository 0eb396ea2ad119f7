import type { Command } from 'commander';
import { trainCustom, evaluateCustomRun, CUSTOM_ARCHITECTURE_OPTIONS, CUSTOM_OPTIONS } from '../../training/custom.js';
import type { Resolved } from '../../util/options.js';
import { addOptions } from '../options.js';
import { abortOnCtrlC, finishTrainingCommand, resumeOption } from '../run-control.js';
import { formatEvaluation } from '../output.js';


type TrainFlags = Resolved<typeof CUSTOM_OPTIONS> & Partial<Resolved<typeof CUSTOM_ARCHITECTURE_OPTIONS>> & { resume?: boolean };

export function register(program: Command): void {
  const custom = program.command('custom').description('classifiers trained from scratch on Fashion-MNIST, EMNIST and other idx/CSV datasets');

  const train = custom.command('train').description('train a custom model on a cached dataset and write a run directory');
  addOptions(train, CUSTOM_OPTIONS);
  addOptions(train, CUSTOM_ARCHITECTURE_OPTIONS)
    .addOption(resumeOption())
    .action(async (flags: TrainFlags) => {
      const mlp = {
        ...(flags.hidden ? { hidden: flags.hidden } : {}),
        ...(flags.activation ? { activation: flags.activation } : {}),
        ...(flags.l2 !== undefined ? { l2: flags.l2 } : {}),
        ...(flags.dropout !== undefined ? { dropout: flags.dropout } : {}),
      };
      const cnn = {
        ...(flags.filters ? { filters: flags.filters } : {}),
        ...(flags.kernelSize ? { kernelSize: flags.kernelSize } : {}),
        ...(flags.stride ? { stride: flags.stride } : {}),
        ...(flags.dropout !== undefined ? { dropout: flags.dropout } : {}),
      };
      const result = await trainCustom({
        ...flags,
        model: flags.model,
        mlp: flags.model === 'mlp' ? mlp : undefined,
        cnn: flags.model === 'cnn' ? cnn : undefined,
        command: ['tl', ...process.argv.slice(2)].join(' '),
        signal: abortOnCtrlC(),
      });
      await finishTrainingCommand(result);
    });

  custom
    .command('evaluate')
    .description('re-score a custom run on its test split')
    .argument('<run>', 'run directory')
    .option('--json', 'machine-readable output')
    .action(async (runDir: string, flags: { json?: boolean }) => {
      const { metrics } = await evaluateCustomRun(runDir);
      console.log(flags.json ? JSON.stringify(metrics, null, 2) : formatEvaluation(metrics));
    });
}
