import path from 'node:path';
import os from 'node:os';
import { mkdtempSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Real data and weights live beside the checkout (`../shared`), or where TL_SHARED points. */
export const sharedDir = process.env.TL_SHARED ? path.resolve(process.env.TL_SHARED) : path.resolve(repoRoot, '..', 'shared');

export function shared(...parts: string[]): string {
  const p = path.join(sharedDir, ...parts);
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (tests expect ../shared beside the checkout, or TL_SHARED)`);
  return p;
}

export function tempDir(prefix = 'tl-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The compiled CLI, as a user runs it after `npm install`. */
export const tlBin = path.join(repoRoot, 'bin', 'tl.js');

/**
 * Mean sparse categorical cross-entropy of softmax outputs, clipped like Keras, written with plain
 * graph ops: the definition the training loop's one-pass `sparseCrossEntropy` is checked against.
 */
export function referenceCrossEntropy(probs: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, probs.shape[probs.shape.length - 1]!);
    const logp = tf.log(tf.clipByValue(probs, 1e-7, 1 - 1e-7));
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logp), -1))) as tf.Scalar;
  });
}

/** Normwise relative error: max |a - b| over max |b| (the error relative to the tensor's scale). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}
