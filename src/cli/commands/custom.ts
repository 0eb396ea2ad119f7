import { Command, InvalidArgumentError } from 'commander';
import { trainCustom, evaluateCustomRun } from '../../training/custom.js';
import { ACTIVATIONS, CUSTOM_MODELS, isCustomModel, type Activation } from '../../models/custom.js';
import type { Evaluation } from '../../artifacts/run.js';
import { TlError } from '../../util/errors.js';
import { abortOnCtrlC, resumeOption } from '../run-control.js';

export function parseNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`"${value}" is not a number`);
  return n;
}

export function parseInteger(value: string): number {
  const n = parseNumber(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`"${value}" is not an integer`);
  return n;
}

function parseIntList(value: string): number[] {
  if (value.trim() === '' || value === 'none') return [];
  return value.split(',').map((v) => parseInteger(v.trim()));
}

function parseActivation(value: string): Activation {
  if (!(ACTIVATIONS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`use one of ${ACTIVATIONS.join(', ')}`);
  }
  return value as Activation;
}

/** One line per class, then accuracy: what a person reads after training. */
export function formatEvaluation(e: Evaluation): string {
  const width = Math.max(5, ...e.perClass.map((c) => c.label.length));
  const rows = e.perClass.map(
    (c) =>
      `${c.label.padEnd(width)}  ${c.precision.toFixed(3)}  ${c.recall.toFixed(3)}  ${c.f1.toFixed(3)}  ${String(c.support).padStart(6)}`,
  );
  return [
    `${'class'.padEnd(width)}  prec   recall f1     support`,
    ...rows,
    `accuracy ${(e.accuracy * 100).toFixed(2)}%  loss ${e.loss.toFixed(4)}`,
  ].join('\n');
}

interface TrainFlags {
  dataset: string;
  model: string;
  epochs: number;
  batchSize?: number;
  lr: number;
  valSplit: number;
  seed: number;
  resplit?: number;
  trainLimit?: number;
  patience: number;
  lrPatience: number;
  normalize: boolean;
  hidden?: number[];
  activation?: Activation;
  l2?: number;
  dropout?: number;
  filters?: number[];
  kernelSize?: number;
  stride?: number;
  out?: string;
  resume?: boolean;
}

export function register(program: Command): void {
  const custom = program.command('custom').description('classifiers trained from scratch on Fashion-MNIST, EMNIST and other idx/CSV datasets');

  custom
    .command('train')
    .description('train a custom model on a cached dataset and write a run directory')
    .requiredOption('--dataset <name>', 'dataset name (see tl datasets list)')
    .option('--model <name>', `${CUSTOM_MODELS.join(' | ')}`, 'cnn')
    .option('--epochs <n>', 'maximum epochs', parseInteger, 10)
    .option('--batch-size <n>', 'mini-batch size (default: per model)', parseInteger)
    .option('--lr <x>', 'Adam learning rate', parseNumber, 1e-3)
    .option('--val-split <f>', 'validation fraction of the training split', parseNumber, 0.1)
    .option('--seed <n>', 'seed for splits, initialisation, dropout and shuffles', parseInteger, 1)
    .option('--resplit <f>', 'derive a stratified train/test split with this test fraction from the one split available', parseNumber)
    .option('--train-limit <n>', 'train on at most N images (stratified)', parseInteger)
    .option('--patience <n>', 'early-stopping patience on val loss (0 = off); the best epoch is restored', parseInteger, 3)
    .option('--lr-patience <n>', 'halve the learning rate after N epochs without a better val loss (0 = constant rate)', parseInteger, 1)
    .option('--no-normalize', 'feed raw 0..255 pixels instead of [0,1]')
    .option('--hidden <list>', 'mlp: hidden layer sizes, e.g. 512,512 (or "none")', parseIntList)
    .option('--activation <name>', `mlp: ${ACTIVATIONS.join(', ')}`, parseActivation)
    .option('--l2 <lambda>', 'mlp: L2 penalty on dense kernels', parseNumber)
    .option('--dropout <rate>', 'mlp/cnn: dropout rate', parseNumber)
    .option('--filters <list>', 'cnn: filters per conv stage, e.g. 32,64,128', parseIntList)
    .option('--kernel-size <n>', 'cnn: convolution size', parseInteger)
    .option('--stride <n>', 'cnn: stride of the first convolution', parseInteger)
    .option('--out <dir>', 'run directory (default runs/<dataset>-<model>-<time>)')
    .addOption(resumeOption())
    .action(async (flags: TrainFlags) => {
      if (!isCustomModel(flags.model)) throw new TlError(`unknown model "${flags.model}"; use one of ${CUSTOM_MODELS.join(', ')}`);
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
      const { runDir, metrics } = await trainCustom({
        ...flags,
        model: flags.model,
        mlp: flags.model === 'mlp' ? mlp : undefined,
        cnn: flags.model === 'cnn' ? cnn : undefined,
        command: ['tl', ...process.argv.slice(2)].join(' '),
        signal: abortOnCtrlC(),
      });
      console.log(formatEvaluation(metrics.test));
      console.log(`run: ${runDir}`);
      if (metrics.interrupted) process.exitCode = 130;
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
