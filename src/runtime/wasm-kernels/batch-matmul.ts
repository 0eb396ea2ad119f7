import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type KernelScope, withKernelScope } from './scope.js';
import type { KernelOverride } from './stock.js';

/**
 * The stock wasm BatchMatMul uses XNNPACK only for a plain product of batch 1; with transposeA or
 * transposeB (every Dense layer's backward pass) it runs a scalar loop 10-25x slower than
 * transposing the operand first and multiplying plainly (measured: [256,784]^T x [256,512]
 * 129 ms vs 5.4 ms). So transpose explicitly with the fast Transpose kernel.
 */
function swapLastTwo(scope: KernelScope, t: tf.TensorInfo): tf.TensorInfo {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [r - 1, r - 2];
  return scope.transpose(t, perm);
}

export const batchMatMulOverride: KernelOverride = {
  kernelName: tf.BatchMatMul,
  wrap: (stock) => ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA?: boolean; transposeB?: boolean };
    if (!transposeA && !transposeB) return stock({ inputs, backend, attrs });
    // The product is the engine's output; only the transposed copies are freed here.
    return withKernelScope(backend as BackendWasm, (scope) =>
      stock({
        inputs: { a: transposeA ? swapLastTwo(scope, a) : a, b: transposeB ? swapLastTwo(scope, b) : b },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      }),
    );
  },
};
