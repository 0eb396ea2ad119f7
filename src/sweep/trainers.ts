import type { RunMetrics } from '../artifacts/run.js';
import { DEFAULT_CNN, DEFAULT_MLP } from '../models/custom.js';
import { CUSTOM_OPTIONS, trainCustom, type CustomTrainOptions } from '../training/custom.js';
import { TRANSFER_OPTIONS, trainTransfer, type TransferTrainOptions } from '../training/transfer.js';
import { reportOrWarn } from '../reporting/report.js';
import type { Options, SweepCommand } from './spec.js';

/** How one configuration runs: `resume` continues its unfinished run, `signal` interrupts it. */
export interface TrainerControl {
  resume?: boolean;
  signal?: AbortSignal;
}

/**
 * Trains one configuration into `runDir` (which must not exist yet) and returns its metrics.
 * The sweep engine takes any function of this shape, so tests can count calls and inject failures.
 */
export type SweepTrainer = (command: SweepCommand, options: Options, runDir: string, commandLine: string, control?: TrainerControl) => Promise<{ runDir: string; metrics: RunMetrics }>;

/** Options a sweep cannot set: each configuration gets its own run directory. */
function sweepable(table: object): string[] {
  return Object.keys(table).filter((key) => key !== 'out');
}

/** Spec keys `tl custom train` understands: its option table, and each architecture field dotted. */
const CUSTOM_KEYS = [
  ...sweepable(CUSTOM_OPTIONS),
  ...Object.keys(DEFAULT_MLP).map((k) => `mlp.${k}`),
  ...Object.keys(DEFAULT_CNN).map((k) => `cnn.${k}`),
];

const TRANSFER_KEYS = ['dataDir', ...sweepable(TRANSFER_OPTIONS)];

export function allowedKeys(command: SweepCommand): readonly string[] {
  return command === 'train' ? TRANSFER_KEYS : CUSTOM_KEYS;
}

/**
 * The real trainers: `tl custom train` and `tl train` as library calls in this process (datasets
 * stay decoded in memory between configurations).
 */
export const defaultTrainer: SweepTrainer = async (command, options, runDir, commandLine, control = {}) => {
  const result =
    command === 'train'
      ? await trainTransfer({ ...(options as unknown as TransferTrainOptions), ...control, out: runDir, command: commandLine })
      : await trainCustom({ ...(options as unknown as CustomTrainOptions), ...control, out: runDir, command: commandLine });
  // Each configuration's run gets its report, as `tl train` / `tl custom train` give theirs.
  await reportOrWarn(result.runDir);
  return result;
};
