import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapPtr, simdFor } from './simd.js';
import type { KernelOverride } from './stock.js';

/** Whether `perm` swaps the last two axes and keeps the others in place. */
export function swapsLastTwo(perm: readonly number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, r - 2).every((p, i) => p === i);
}

/**
 * Transpose of the last two axes of float32 matrices whose sides are multiples of 4, by simd.wat's
 * 4x4 blocks: every Dense layer's backward pass and tl's matrix products transpose this way, and
 * the stock kernel's element loop took 1.6 ms for a 512x1024 matrix (0.2 ms here).
 */
export const transposeOverride: KernelOverride = {
  kernelName: tf.Transpose,
  wrap: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { perm } = args.attrs as unknown as tf.TransposeAttrs;
    const be = args.backend as BackendWasm;
    const simd = simdFor(be);
    const [rows, cols] = x.shape.slice(-2) as [number, number];
    if (!simd || x.dtype !== 'float32' || !swapsLastTwo(perm) || rows % 4 !== 0 || cols % 4 !== 0) return stock(args);
    const out = be.makeOutput([...x.shape.slice(0, -2), cols, rows], 'float32');
    if (rows * cols > 0) simd.transpose_2d(heapPtr(be, x), heapPtr(be, out), tf.util.sizeFromShape(x.shape.slice(0, -2)), rows, cols);
    return out;
  },
};
