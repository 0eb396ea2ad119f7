import tf from '../runtime/tf.cjs';
import type { ClassMetrics, Evaluation } from '../artifacts/run.js';
import type { BatchSource } from '../data/batch-source.js';
import { yieldToEventLoop } from '../util/event-loop.js';
import { withTlKernels } from '../runtime/patches.js';
import { createProgress, logEvent } from '../runtime/progress.js';
import type { InferenceEngine } from '../runtime/engine.js';

export interface ScoredSample {
  label: number;
  predicted: number;
  confidence: number;
  /** 1 when the true class has the highest probability, 2 when one class is above it, ... */
  rank?: number;
}

export function confusionMatrix(samples: ScoredSample[], classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (const s of samples) m[s.label]![s.predicted]!++;
  return m;
}

/** Precision, recall and F1 per class from a confusion matrix (rows = true, columns = predicted). */
export function perClassMetrics(confusion: number[][], classNames: string[]): ClassMetrics[] {
  return classNames.map((label, k) => {
    const tp = confusion[k]![k]!;
    const support = confusion[k]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[k]!, 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
}

/**
 * Wilson score interval for `correct` of `n` at 95% (z = 1.96): unlike p +- 1.96 SE it stays
 * inside [0, 1] and is honest for small sets (2 of 2 right is [34%, 100%], not [100%, 100%]).
 */
export function wilsonInterval(correct: number, n: number, z = 1.959964): [number, number] {
  if (n === 0) return [0, 1];
  const p = correct / n;
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = ((z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n)));
  // The score test always accepts p itself; rounding alone put 10 of 10 right at an upper bound of 0.9999999999999999.
  return [Math.max(0, Math.min(p, centre - half)), Math.min(1, Math.max(p, centre + half))];
}

/** Top-k accuracies worth reporting: k = 3 and 5 where there are more classes than k. */
function topKAccuracies(samples: ScoredSample[], classes: number): { k: number; accuracy: number }[] | undefined {
  const ks = [3, 5].filter((k) => classes > k);
  if (!ks.length || samples.some((s) => s.rank === undefined)) return undefined;
  return ks.map((k) => ({ k, accuracy: samples.filter((s) => s.rank! <= k).length / Math.max(samples.length, 1) }));
}

export function summarize(samples: ScoredSample[], lossSum: number, classNames: string[]): Evaluation {
  const confusion = confusionMatrix(samples, classNames.length);
  const correct = samples.filter((s) => s.label === s.predicted).length;
  const perClass = perClassMetrics(confusion, classNames);
  const present = perClass.filter((c) => c.support > 0);
  const topK = topKAccuracies(samples, classNames.length);
  return {
    accuracy: samples.length ? correct / samples.length : 0,
    accuracyCI95: wilsonInterval(correct, samples.length),
    // Mean recall over the classes present: what accuracy would be if every class were equally common.
    balancedAccuracy: present.length ? present.reduce((a, c) => a + c.recall, 0) / present.length : 0,
    ...(topK ? { topK } : {}),
    loss: samples.length ? lossSum / samples.length : 0,
    perClass,
    confusion,
  };
}

/**
 * Every sample of `source`, in order, through `model` in inference mode: its prediction, and the
 * summed clipped cross-entropy (Keras' clipping). One pass serves validation and test evaluation.
 * With several `views` (test-time augmentation: the same samples in the same order, e.g. mirrored)
 * the class probabilities are averaged over them.
 */
export async function scoreSamples(
  model: tf.LayersModel | InferenceEngine,
  source: BatchSource,
  batchSize: number,
  onBatch: () => void = () => {},
  views: readonly BatchSource[] = [],
): Promise<{ samples: ScoredSample[]; lossSum: number }> {
  const all = [source, ...views];
  const scored = await withTlKernels(async () => {
    const each = [];
    for (const s of all) each.push(await allProbabilities(model, s, batchSize, onBatch));
    return each;
  });
  const probs = scored[0]!.probs;
  for (const other of scored.slice(1)) for (let i = 0; i < probs.length; i++) probs[i]! += other.probs[i]!;
  if (all.length > 1) for (let i = 0; i < probs.length; i++) probs[i]! /= all.length;
  return scoreProbabilities(probs, scored[0]!.labels);
}

/** Class probabilities [samples, classes] of every sample of `source`, in order, and their labels. */
async function allProbabilities(
  model: tf.LayersModel | InferenceEngine,
  source: BatchSource,
  batchSize: number,
  onBatch: () => void,
): Promise<{ probs: Float64Array; labels: number[] }> {
  const chunks: ArrayLike<number>[] = [];
  const labels: number[] = [];
  for await (const { x, y } of source.batches(batchSize)) {
    await yieldToEventLoop();
    const [p, l] = await Promise.all([probabilities(model, x), y.data()]);
    chunks.push(p);
    labels.push(...Array.from(l));
    tf.dispose([x, y]);
    onBatch();
  }
  const probs = new Float64Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    probs.set(c, offset);
    offset += c.length;
  }
  return { probs, labels };
}

/** Prediction, confidence and the true class's rank per row; summed clipped cross-entropy. */
function scoreProbabilities(p: Float64Array, labels: number[]): { samples: ScoredSample[]; lossSum: number } {
  const samples: ScoredSample[] = [];
  let lossSum = 0;
  const k = labels.length ? p.length / labels.length : 0;
  labels.forEach((label, i) => {
    let best = 0;
    let rank = 1;
    for (let j = 1; j < k; j++) if (p[i * k + j]! > p[i * k + best]!) best = j;
    for (let j = 0; j < k; j++) if (p[i * k + j]! > p[i * k + label]!) rank++;
    lossSum += -Math.log(Math.min(Math.max(p[i * k + label]!, 1e-7), 1 - 1e-7));
    samples.push({ label, predicted: best, confidence: p[i * k + best]!, rank });
  });
  return { samples, lossSum };
}

/** Class probabilities of one batch, row-major [batch, classes]. */
async function probabilities(model: tf.LayersModel | InferenceEngine, x: tf.Tensor): Promise<ArrayLike<number>> {
  if ('run' in model) return model.run((await x.data()) as Float32Array, x.shape[0]!);
  const probs = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor2D);
  const p = await probs.data();
  probs.dispose();
  return p;
}

/**
 * Score `model` on every sample of `source` in order: accuracy, loss, per-class metrics, confusion,
 * plus each sample's prediction (for reports and misclassification lists).
 */
export async function evaluateModel(
  model: tf.LayersModel | InferenceEngine,
  source: BatchSource,
  classNames: string[],
  batchSize = 256,
  views: readonly BatchSource[] = [],
): Promise<{ evaluation: Evaluation; samples: ScoredSample[] }> {
  const batches = Math.ceil(source.size / batchSize) * (1 + views.length);
  const progress = createProgress({ label: 'evaluate', total: batches, unit: 'batches' });
  let batch = 0;
  const { samples, lossSum } = await scoreSamples(model, source, batchSize, () => {
    progress.tick();
    logEvent({ event: 'evaluate-batch', batch: ++batch, batches });
  }, views);
  progress.done();
  const evaluation = summarize(samples, lossSum, classNames);
  logEvent({ event: 'evaluate', samples: samples.length, accuracy: evaluation.accuracy, loss: evaluation.loss });
  return { evaluation, samples };
}
