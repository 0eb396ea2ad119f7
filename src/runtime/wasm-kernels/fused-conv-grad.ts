import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelArgs } from './scope.js';
import { heapPtr, simdFor, withScratch } from './simd.js';

/** Kernel name of the fused bias + ReLU gradient: [dz, db] from a convolution's output y and dy. */
export const RELU_BIAS_GRAD = 'TlReluBiasGrad';

/** dz = y > 0 ? dy : 0 and db[c] = sum of dz over every pixel of channel c, in one pass. */
function reluBiasGrad({ inputs, backend }: KernelArgs): tf.TensorInfo[] {
  const { y, dy } = inputs as { y: tf.TensorInfo; dy: tf.TensorInfo };
  const be = backend as BackendWasm;
  const channels = y.shape[y.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(y.shape) / channels;
  const dz = be.makeOutput(y.shape, 'float32');
  const db = be.makeOutput([channels], 'float32');
  const simd = simdFor(be);
  if (simd && channels % 4 === 0) {
    withScratch(be, 8 * channels, (scratch) => simd.relu_bias_grad(heapPtr(be, y), heapPtr(be, dy), heapPtr(be, dz), heapPtr(be, db), rows, channels, scratch));
    return [dz, db];
  }
  const [ys, g, out, sums] = [y, dy, dz, db].map((t) => be.typedArrayFromHeap(t) as Float32Array);
  const acc = new Float64Array(channels);
  for (let i = 0; i < out!.length; i++) {
    out![i] = ys![i]! > 0 ? g![i]! : 0;
    acc[i % channels] += out![i]!;
  }
  sums!.set(acc);
  return [dz, db];
}

export const reluBiasGradKernel: tf.KernelConfig = {
  kernelName: RELU_BIAS_GRAD,
  backendName: 'wasm',
  kernelFunc: reluBiasGrad as unknown as tf.KernelFunc,
};

/** Where the fused bias + ReLU gradient runs as one kernel (and so fused training pays). */
export function hasFusedConvGradient(): boolean {
  return tf.getKernel(RELU_BIAS_GRAD, tf.getBackend()) !== undefined;
}

/** A 2-D convolution FusedConv2D trains as one kernel here: NHWC, dilation 1, no or a ReLU activation. */
export interface FusableConv {
  rank: number;
  dataFormat: string;
  padding: string;
  dilationRate: readonly number[];
  activation: string;
}

export function fusedConvSupports(conv: FusableConv): boolean {
  const plain = conv.rank === 2 && conv.dataFormat === 'channelsLast' && conv.padding !== 'causal' && conv.dilationRate.every((d) => d === 1);
  return hasFusedConvGradient() && plain && (conv.activation === 'relu' || conv.activation === 'linear');
}

/** The gradient before the activation and the bias gradient. */
function preActivation(dy: tf.Tensor4D, y: tf.Tensor4D, activation: string): [tf.Tensor4D, tf.Tensor1D] {
  if (activation === 'relu' && hasFusedConvGradient()) return tf.engine().runKernel(RELU_BIAS_GRAD, { y, dy }) as [tf.Tensor4D, tf.Tensor1D];
  const dz: tf.Tensor4D = activation === 'relu' ? tf.mul(dy, tf.step(y)) : dy;
  return [dz, tf.sum(dz, [0, 1, 2])];
}

/**
 * The gradient of FusedConv2D with no or a ReLU activation, NHWC, dilation 1, which tfjs does not
 * have: its fused conv2d op runs three kernels (Conv2D, Add, Relu) whenever a gradient is being
 * recorded. With this, a training step can run the convolution, bias and ReLU as one forward
 * kernel (src/training/layer-patches.ts), and their gradients as one pass plus the two
 * convolution gradients. dx is computed only if the tape asks for it (the first layer's never is).
 */
export const fusedConv2DGradConfig: tf.GradConfig = {
  kernelName: tf.FusedConv2D,
  inputsToSave: ['x', 'filter'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = attrs as unknown as tf.FusedConv2DAttrs;
    if (activation !== 'linear' && activation !== 'relu') throw new Error(`FusedConv2D gradient: activation ${activation} is not supported`);
    if (dataFormat === 'NCHW' || !tf.backend_util.tupleValuesAreOne(dilations ?? 1)) {
      throw new Error('FusedConv2D gradient: only NHWC and dilation 1 are supported');
    }
    // Made here, not in a closure: the tape runs each closure in its own tidy, which would free a
    // shared dz before the next one used it; this scope lasts the whole backward pass.
    const [dz, db] = preActivation(dy as tf.Tensor4D, y, activation);
    const convAttrs = { strides, pad, dataFormat: 'NHWC', dimRoundingMode };
    return {
      x: () => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dz, filter }, { ...convAttrs, inputShape: x.shape }) as tf.Tensor,
      filter: () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: dz }, { ...convAttrs, filterShape: filter.shape }) as tf.Tensor,
      bias: () => db,
    };
  },
};
