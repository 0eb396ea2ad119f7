import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { nhwcConv2DInfo } from './input-gradient.js';
import { type KernelScope, withKernelScope } from './scope.js';
import { heapPtr, type SimdKernels, simdFor } from './simd.js';
import type { KernelOverride } from './stock.js';

type Conv2DInfo = tf.backend_util.Conv2DInfo;

/**
 * A 3x3, undilated convolution of one-channel images to a multiple of 4 channels. (The layout is
 * the callers' check: `info` always says channelsLast, whatever the kernel's dataFormat attribute.)
 */
export function isOneChannel3x3(info: Conv2DInfo): boolean {
  return info.inChannels === 1 && info.outChannels % 4 === 0 && info.filterHeight === 3 && info.filterWidth === 3 &&
    info.dilationHeight === 1 && info.dilationWidth === 1;
}

/** x zero-padded by the convolution's padding (x itself when it pads nothing). */
export function padded(scope: KernelScope, x: tf.TensorInfo, info: Conv2DInfo): tf.TensorInfo {
  const { top, bottom, left, right } = info.padInfo;
  if (top + bottom + left + right === 0) return x;
  return scope.run('PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 });
}

/**
 * x zero-padded for the one-channel loops, then the sizes every one of them takes after its three
 * pointers (batch, padded height and width, output height and width, Co, strides).
 */
function paddedInput(scope: KernelScope, x: tf.TensorInfo, info: Conv2DInfo): [number, number, number, number, number, number, number, number, number] {
  const input = padded(scope, x, info);
  return [heapPtr(scope.backend, input), info.batchSize, input.shape[1]!, input.shape[2]!, info.outHeight, info.outWidth, info.outChannels, info.strideHeight, info.strideWidth];
}

/** dW of a one-channel 3x3 convolution (isOneChannel3x3) by simd.wat's conv2d_c1_filter_grad. */
export function oneChannelFilterGrad(scope: KernelScope, simd: SimdKernels, x: tf.TensorInfo, dy: tf.TensorInfo, info: Conv2DInfo): tf.TensorInfo {
  const dw = scope.alloc([3, 3, 1, info.outChannels]);
  const [input, ...sizes] = paddedInput(scope, x, info);
  simd.conv2d_c1_filter_grad(input, heapPtr(scope.backend, dy), heapPtr(scope.backend, dw), ...sizes);
  return dw;
}

/** The bias to add: the kernel's, or zeros for a plain Conv2D. */
function biasOrZeros(scope: KernelScope, bias: tf.TensorInfo | undefined, channels: number): tf.TensorInfo | undefined {
  if (bias) return bias.shape.length === 1 && bias.shape[0] === channels && bias.dtype === 'float32' ? bias : undefined;
  const zeros = scope.alloc([channels]);
  scope.view(zeros).fill(0);
  return zeros;
}

/**
 * 3x3 Conv2D (and FusedConv2D with a bias and no or ReLU activation) of a one-channel image, the
 * first layer of every grayscale model, by simd.wat's conv2d_c1, on a zero-padded copy when the
 * convolution pads: XNNPACK runs it as a 9-deep matrix product at ~7 GFLOP/s, several times slower.
 * Every other convolution stays stock. (Its filter gradient, oneChannelFilterGrad, is taken by
 * conv2d-grads.ts.)
 */
function oneChannelOverride(kernelName: string): KernelOverride {
  return {
    kernelName,
    wrap: (stock) => (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
      const attrs = args.attrs as unknown as tf.FusedConv2DAttrs;
      const activation = attrs.activation ?? 'linear';
      const backend = args.backend as BackendWasm;
      const simd = simdFor(backend);
      const supported = simd && x!.dtype === 'float32' && x!.shape.length === 4 && attrs.dataFormat !== 'NCHW' &&
        !preluActivationWeights && (activation === 'linear' || activation === 'relu');
      if (!supported) return stock(args);
      const info = nhwcConv2DInfo(x!.shape, filter!.shape, attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode);
      if (!isOneChannel3x3(info)) return stock(args);
      return withKernelScope(backend, (scope) => {
        const b = biasOrZeros(scope, bias, info.outChannels);
        if (!b) return stock(args);
        const out = backend.makeOutput(info.outShape, 'float32');
        const [input, ...sizes] = paddedInput(scope, x!, info);
        simd.conv2d_c1(input, heapPtr(backend, filter!), heapPtr(backend, out), ...sizes, heapPtr(backend, b), activation === 'relu' ? 0 : -Infinity);
        return out;
      });
    },
  };
}

export const conv2dOneChannelOverride = oneChannelOverride(tf.Conv2D);
export const fusedConv2dOneChannelOverride = oneChannelOverride(tf.FusedConv2D);
