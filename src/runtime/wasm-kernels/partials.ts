import type * as tf from '@tensorflow/tfjs';
import { reductionShares } from './pool.js';
import type { KernelScope } from './scope.js';
import { heapPtr, type SimdKernels, withScratch } from './simd.js';

/** Per-share copies of a sum (a filter or bias gradient) that a pool's threads accumulate apart. */
export interface Partials {
  /** Heap byte offset of share `part`'s copy. */
  at(part: number): number;
  /** Writes the copies' sum (float64 accumulation) to the result. */
  sum(): void;
}

/**
 * Zeroed partial sums of `result` for the reduction shares of `count` items (pool.ts
 * `reductionShares`): with one share the result itself, else a [shares, size] buffer of the scope
 * whose rows are added into the result in order at the end (size % 4 == 0: sum_rows' lanes).
 */
export function partials(s: KernelScope, simd: SimdKernels, count: number, result: tf.TensorInfo): Partials {
  const size = result.shape.reduce((a, b) => a * b, 1);
  const shares = reductionShares(count).length;
  if (shares === 1) {
    s.view(result).fill(0);
    return { at: () => heapPtr(s.backend, result), sum: () => {} };
  }
  if (size % 4 !== 0) throw new Error(`partial sums of ${size} values: needs a multiple of 4`);
  const buffer = s.alloc([shares, size]);
  s.view(buffer).fill(0);
  return {
    at: (part) => heapPtr(s.backend, buffer) + part * size * 4,
    sum: () => withScratch(s.backend, size * 8, (scratch) => simd.sum_rows(heapPtr(s.backend, buffer), heapPtr(s.backend, result), shares, size, scratch)),
  };
}
