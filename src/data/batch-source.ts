import type * as tf from '@tensorflow/tfjs';

/** One mini-batch: x ready for the model, y the class indices (int32, [B]). The loop disposes both. */
export interface Batch {
  x: tf.Tensor;
  y: tf.Tensor1D;
}

/**
 * Anything that yields mini-batches: in-memory arrays, streamed image folders, cached features.
 * `epochSeed` undefined means the original order (evaluation); a number means a seeded shuffle.
 */
export interface BatchSource {
  readonly size: number;
  batches(batchSize: number, epochSeed?: number): AsyncIterable<Batch>;
}
