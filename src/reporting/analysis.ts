import type { PredictionRecord } from '../artifacts/run.js';

export interface ConfusedPair {
  a: string;
  b: string;
  /** true a, predicted b */
  aAsB: number;
  /** true b, predicted a */
  bAsA: number;
  total: number;
  /** total over the test samples of both classes */
  share: number;
}

/** Unordered class pairs the model mixes up most (O/0 counts O->0 and 0->O together). */
export function mostConfusedPairs(confusion: number[][], labels: string[], limit = 10): ConfusedPair[] {
  const support = confusion.map((row) => row.reduce((x, y) => x + y, 0));
  const pairs: ConfusedPair[] = [];
  for (let i = 0; i < confusion.length; i++) {
    for (let j = i + 1; j < confusion.length; j++) {
      const aAsB = confusion[i]![j]!;
      const bAsA = confusion[j]![i]!;
      const total = aAsB + bAsA;
      if (total === 0) continue;
      const both = support[i]! + support[j]!;
      pairs.push({ a: labels[i]!, b: labels[j]!, aAsB, bAsA, total, share: both ? total / both : 0 });
    }
  }
  return pairs.sort((p, q) => q.total - p.total || q.share - p.share).slice(0, limit);
}

/**
 * A spread of test predictions for the "samples" grid: round-robin over the true classes, so
 * every class shows up (all 47 EMNIST characters; four of each Fashion-MNIST class).
 */
export function pickSamples(predictions: PredictionRecord[], classes: number, minimum = 40, maximum = 60): PredictionRecord[] {
  const limit = Math.min(predictions.length, Math.max(minimum, Math.min(classes, maximum)));
  const byClass = Array.from({ length: classes }, () => [] as PredictionRecord[]);
  for (const p of predictions) byClass[p.label]?.push(p);
  const picked: PredictionRecord[] = [];
  for (let round = 0; picked.length < limit; round++) {
    let added = false;
    for (const bucket of byClass) {
      const p = bucket[round];
      if (p && picked.length < limit) {
        picked.push(p);
        added = true;
      }
    }
    if (!added) break;
  }
  return picked;
}

/** The wrong predictions, most confident first: those are the ones worth looking at. */
export function pickMisclassified(predictions: PredictionRecord[], limit = 100): PredictionRecord[] {
  return predictions
    .filter((p) => p.predicted !== p.label)
    .sort((a, b) => b.confidence - a.confidence)
    .slice(0, limit);
}
