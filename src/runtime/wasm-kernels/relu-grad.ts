import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelArgs } from './scope.js';
import { heapPtr, simdFor } from './simd.js';

/** Kernel name of the fused ReLU gradient: dx = x > 0 ? dy : 0. */
export const RELU_GRAD = 'TlReluGrad';

function reluGrad({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const be = backend as BackendWasm;
  const out = be.makeOutput(x.shape, 'float32');
  const simd = simdFor(be);
  if (simd) {
    simd.relu_grad(heapPtr(be, x), heapPtr(be, dy), heapPtr(be, out), tf.util.sizeFromShape(x.shape));
    return out;
  }
  const [xs, g, dx] = [x, dy, out].map((t) => be.typedArrayFromHeap(t) as Float32Array);
  for (let i = 0; i < dx!.length; i++) dx![i] = xs![i]! > 0 ? g![i]! : 0;
  return out;
}

export const reluGradKernel: tf.KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: 'wasm',
  kernelFunc: reluGrad as tf.KernelFunc,
};

/**
 * ReLU's gradient as one kernel where the backend has it (tfjs's own is Cast + Step + Multiply,
 * three passes over every activation); elsewhere exactly tfjs's formula.
 */
export const reluGradConfig: tf.GradConfig = {
  kernelName: tf.Relu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved as [tf.Tensor];
    const g = dy as tf.Tensor;
    return {
      x: () =>
        x.dtype === 'float32' && tf.getKernel(RELU_GRAD, tf.getBackend())
          ? (tf.engine().runKernel(RELU_GRAD, { x, dy: g }) as tf.Tensor)
          : tf.mul(g, tf.step(tf.cast(x, 'float32'))),
    };
  },
};
