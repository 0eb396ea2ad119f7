import type { RunMetrics } from '../artifacts/run.js';
import type { CnnOptions, MlpOptions } from '../models/custom.js';
import type { CustomTrainOptions } from '../training/custom.js';
import type { TransferTrainOptions } from '../training/transfer.js';
import type { Options, SweepCommand } from './spec.js';

/**
 * Trains one configuration into `runDir` (which must not exist yet) and returns its metrics.
 * The sweep engine takes any function of this shape, so tests can count calls and inject failures.
 */
/** How one configuration runs: `resume` continues its unfinished run, `signal` interrupts it. */
export interface TrainerControl {
  resume?: boolean;
  signal?: AbortSignal;
}

export type SweepTrainer = (command: SweepCommand, options: Options, runDir: string, commandLine: string, control?: TrainerControl) => Promise<{ runDir: string; metrics: RunMetrics }>;

type Sweepable<T> = Exclude<keyof T, 'out' | 'command' | 'mlp' | 'cnn' | 'resume' | 'signal'> & string;

/** Spec keys `tl custom train` understands; `satisfies` keeps the list true to CustomTrainOptions. */
const CUSTOM_KEYS = [
  'dataset', 'model', 'epochs', 'batchSize', 'lr', 'valSplit', 'seed', 'resplit', 'trainLimit', 'normalize', 'patience',
  'mlp.hidden', 'mlp.activation', 'mlp.l2', 'mlp.dropout',
  'cnn.filters', 'cnn.convsPerBlock', 'cnn.kernelSize', 'cnn.stride', 'cnn.dropout', 'cnn.dense', 'cnn.batchNorm',
] as const satisfies readonly (Sweepable<CustomTrainOptions> | `mlp.${keyof MlpOptions}` | `cnn.${keyof CnnOptions}`)[];

const TRANSFER_KEYS = [
  'dataDir', 'backbone', 'alpha', 'weights', 'epochs', 'batchSize', 'lr', 'size', 'valSplit', 'seed',
] as const satisfies readonly Sweepable<TransferTrainOptions>[];

export function allowedKeys(command: SweepCommand): readonly string[] {
  return command === 'train' ? TRANSFER_KEYS : CUSTOM_KEYS;
}

/**
 * The real trainers: `tl custom train` and `tl train` as library calls in this process (datasets
 * stay decoded in memory between configurations). Loaded on first use, so `tl sweep --help`
 * does not pull in tfjs.
 */
export const defaultTrainer: SweepTrainer = async (command, options, runDir, commandLine, control = {}) => {
  if (command === 'train') {
    const { trainTransfer } = await import('../training/transfer.js');
    return trainTransfer({ ...(options as unknown as TransferTrainOptions), ...control, out: runDir, command: commandLine });
  }
  const { trainCustom } = await import('../training/custom.js');
  return trainCustom({ ...(options as unknown as CustomTrainOptions), ...control, out: runDir, command: commandLine });
};
