import * as tf from '@tensorflow/tfjs';
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

export function summarize(samples: ScoredSample[], lossSum: number, classNames: string[]): Evaluation {
  const confusion = confusionMatrix(samples, classNames.length);
  const correct = samples.filter((s) => s.label === s.predicted).length;
  return {
    accuracy: samples.length ? correct / samples.length : 0,
    loss: samples.length ? lossSum / samples.length : 0,
    perClass: perClassMetrics(confusion, classNames),
    confusion,
  };
}

/**
 * Every sample of `source`, in order, through `model` in inference mode: its prediction, and the
 * summed clipped cross-entropy (Keras' clipping). One pass serves validation and test evaluation.
 */
export function scoreSamples(
  model: tf.LayersModel | InferenceEngine,
  source: BatchSource,
  batchSize: number,
  onBatch: () => void = () => {},
): Promise<{ samples: ScoredSample[]; lossSum: number }> {
  return withTlKernels(() => scoreAll(model, source, batchSize, onBatch));
}

async function scoreAll(
  model: tf.LayersModel | InferenceEngine,
  source: BatchSource,
  batchSize: number,
  onBatch: () => void,
): Promise<{ samples: ScoredSample[]; lossSum: number }> {
  const samples: ScoredSample[] = [];
  let lossSum = 0;
  for await (const { x, y } of source.batches(batchSize)) {
    await yieldToEventLoop();
    const [p, labels] = await Promise.all([probabilities(model, x), y.data()]);
    const k = p.length / labels.length;
    for (let i = 0; i < labels.length; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (p[i * k + j]! > p[i * k + best]!) best = j;
      const label = labels[i]!;
      lossSum += -Math.log(Math.min(Math.max(p[i * k + label]!, 1e-7), 1 - 1e-7));
      samples.push({ label, predicted: best, confidence: p[i * k + best]! });
    }
    tf.dispose([x, y]);
    onBatch();
  }
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
): Promise<{ evaluation: Evaluation; samples: ScoredSample[] }> {
  const batches = Math.ceil(source.size / batchSize);
  const progress = createProgress({ label: 'evaluate', total: batches, unit: 'batches' });
  let batch = 0;
  const { samples, lossSum } = await scoreSamples(model, source, batchSize, () => {
    progress.tick();
    logEvent({ event: 'evaluate-batch', batch: ++batch, batches });
  });
  progress.done();
  const evaluation = summarize(samples, lossSum, classNames);
  logEvent({ event: 'evaluate', samples: samples.length, accuracy: evaluation.accuracy, loss: evaluation.loss });
  return { evaluation, samples };
}
