import path from 'node:path';
import type { DatasetInfo, Evaluation, PredictionRecord, RunMetrics } from '../artifacts/run.js';
import type { ScoredSample } from './metrics.js';
import type { ImageFolderData, ImageSample } from '../data/image-folder.js';
import type { FitResult } from './loop.js';

/** Below this many images a test accuracy's 95% interval is wider than about +-10 points. */
export const SMALL_TEST_SET = 100;
/** Class counts further apart than this ratio get a warning. */
export const IMBALANCE_RATIO = 3;

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** "a: 120, b: 30" when the largest training class has more than 3x the images of the smallest. */
export function imbalanceWarning(train: readonly ImageSample[], classNames: readonly string[]): string | undefined {
  const counts = classNames.map((_, k) => train.filter((s) => s.label === k).length);
  const [most, least] = [Math.max(...counts), Math.min(...counts)];
  if (least === 0 || most <= IMBALANCE_RATIO * least) return undefined;
  const name = (n: number) => classNames[counts.indexOf(n)];
  return `class counts differ by more than ${IMBALANCE_RATIO}x (${name(most)}: ${most}, ${name(least)}: ${least}); read balanced accuracy, not accuracy, and consider --class-weight balanced`;
}

/** `--class-weight balanced`: n / (classes * n_k) per class, as scikit-learn and Keras users compute it. */
export function balancedClassWeights(train: readonly ImageSample[], classes: number): number[] {
  const counts = Array.from({ length: classes }, (_, k) => train.filter((s) => s.label === k).length);
  return counts.map((n) => (n > 0 ? train.length / (classes * n) : 0));
}

/**
 * What a run's held-out figure is and how far to trust it: which set it was measured on, the
 * epoch kept, and warnings for a figure measured on the set that chose the epoch, a test set too
 * small to mean much, and imbalanced classes.
 */
export function heldOutFacts(data: ImageFolderData, evaluation: Evaluation, fit: FitResult, restoreBest: boolean): Pick<RunMetrics, 'evaluatedOn' | 'keptEpoch' | 'restoredBest' | 'warnings'> {
  const evaluatedOn = data.test === data.val ? 'validation' : 'test';
  const n = evaluation.confusion.flat().reduce((a, b) => a + b, 0);
  const [low, high] = evaluation.accuracyCI95 ?? [0, 1];
  const warnings = [
    evaluatedOn === 'validation' ? 'accuracy is measured on the validation split that chose the epoch, so it is optimistic; hold out a test set (--test-split)' : undefined,
    n < SMALL_TEST_SET ? `the ${evaluatedOn} set has only ${n} images: its accuracy ${pct(evaluation.accuracy)} is only known to lie in [${pct(low)}, ${pct(high)}] (95%)` : undefined,
    imbalanceWarning(data.train, data.classNames),
  ].filter((w): w is string => w !== undefined);
  return { evaluatedOn, keptEpoch: fit.keptEpoch, restoredBest: restoreBest, ...(warnings.length ? { warnings } : {}) };
}

/** `flowers` for .../flowers and for .../flowers/train: what a run and its metrics call the data. */
export function datasetNameOf(root: string): string {
  const base = path.basename(root);
  return ['train', 'training'].includes(base) ? path.basename(path.dirname(root)) : base;
}

export function datasetInfo(data: ImageFolderData, counts: { train: number; val: number; test: number }, seed: number, skipped: Map<string, string>): DatasetInfo {
  return {
    name: datasetNameOf(data.root),
    split: data.split,
    seed,
    trainCount: counts.train,
    valCount: counts.val,
    testCount: counts.test,
    classes: data.classNames.length,
    source: data.root,
    skipped: [...skipped].map(([file, reason]) => ({ file, reason })),
  };
}

export function filePredictions(samples: readonly ImageSample[], scored: ScoredSample[]): PredictionRecord[] {
  return scored.map((s, i) => ({ source: { kind: 'file', path: samples[i]!.file }, ...s }));
}
