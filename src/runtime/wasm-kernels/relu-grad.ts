import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelArgs } from './scope.js';
import { heapPtr, simdFor, type SimdKernels } from './simd.js';

/** Kernel name of the fused ReLU gradient: dx = x > 0 ? dy : 0. */
export const RELU_GRAD = 'TlReluGrad';
/** Kernel name of the fused clipByValue gradient (ReLU6's): dx = lo <= x <= hi ? dy : 0. */
export const CLIP_GRAD = 'TlClipGrad';

/**
 * dx = keep(x) ? dy : 0 in one pass: `simd` runs it on the heap where wasm SIMD exists, `keep`
 * is the same test in JS otherwise.
 */
function maskedGradient(args: KernelArgs, simd: (k: SimdKernels, x: number, dy: number, out: number, n: number) => void, keep: (x: number) => boolean): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const be = args.backend as BackendWasm;
  const out = be.makeOutput(x.shape, 'float32');
  const kernels = simdFor(be);
  if (kernels) {
    simd(kernels, heapPtr(be, x), heapPtr(be, dy), heapPtr(be, out), tf.util.sizeFromShape(x.shape));
    return out;
  }
  const [xs, g, dx] = [x, dy, out].map((t) => be.typedArrayFromHeap(t) as Float32Array);
  for (let i = 0; i < dx!.length; i++) dx![i] = keep(xs![i]!) ? g![i]! : 0;
  return out;
}

export const reluGradKernel: tf.KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: 'wasm',
  kernelFunc: ((args: KernelArgs) => maskedGradient(args, (k, x, dy, out, n) => k.relu_grad(x, dy, out, n), (v) => v > 0)) as tf.KernelFunc,
};

export const clipGradKernel: tf.KernelConfig = {
  kernelName: CLIP_GRAD,
  backendName: 'wasm',
  kernelFunc: ((args: KernelArgs) => {
    const { clipValueMin: lo, clipValueMax: hi } = args.attrs as unknown as tf.ClipByValueAttrs;
    return maskedGradient(args, (k, x, dy, out, n) => k.clip_grad(x, dy, out, n, lo, hi), (v) => v >= lo && v <= hi);
  }) as tf.KernelFunc,
};

/** Whether `kernel` can take this gradient here: float32 input on a backend that has it. */
const runs = (kernel: string, x: tf.Tensor) => x.dtype === 'float32' && tf.getKernel(kernel, tf.getBackend()) !== undefined;

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
      x: () => (runs(RELU_GRAD, x) ? (tf.engine().runKernel(RELU_GRAD, { x, dy: g }) as tf.Tensor) : tf.mul(g, tf.step(tf.cast(x, 'float32')))),
    };
  },
};

/**
 * clipByValue's gradient (ReLU6 in every MobileNet block) as one kernel where the backend has it:
 * tfjs's own is GreaterEqual, LessEqual, LogicalAnd, ZerosLike and Select, five passes that took
 * 40% of a MobileNet fine-tuning step on wasm. Elsewhere exactly tfjs's formula.
 */
export const clipGradConfig: tf.GradConfig = {
  kernelName: tf.ClipByValue,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const g = dy as tf.Tensor;
    const { clipValueMin: lo, clipValueMax: hi } = attrs as unknown as tf.ClipByValueAttrs;
    return {
      x: () =>
        runs(CLIP_GRAD, x)
          ? (tf.engine().runKernel(CLIP_GRAD, { x, dy: g }, { clipValueMin: lo, clipValueMax: hi }) as tf.Tensor)
          : tf.where(tf.logicalAnd(tf.greaterEqual(x, lo), tf.lessEqual(x, hi)), g, tf.zerosLike(g)),
    };
  },
};
