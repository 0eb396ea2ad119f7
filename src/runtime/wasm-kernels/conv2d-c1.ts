import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { KernelScope } from './scope.js';
import { heapPtr, simdFor } from './simd.js';
import type { KernelOverride } from './stock.js';

type Conv2DInfo = tf.backend_util.Conv2DInfo;

function takesFastPath(info: Conv2DInfo, attrs: tf.Conv2DAttrs): boolean {
  return info.inChannels === 1 && info.outChannels % 4 === 0 && info.filterHeight === 3 && info.filterWidth === 3 &&
    info.dilationHeight === 1 && info.dilationWidth === 1 && attrs.dataFormat !== 'NCHW';
}

/**
 * 3x3 Conv2D of a one-channel image (the first layer of every grayscale model) by simd.wat's
 * conv2d_c1, on a zero-padded copy when the convolution pads: XNNPACK runs it as a 9-deep
 * matrix product at ~7 GFLOP/s, several times slower. Every other convolution stays stock.
 */
export const conv2dOneChannelOverride: KernelOverride = {
  kernelName: tf.Conv2D,
  wrap: (stock) => (args) => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.Conv2DAttrs;
    const backend = args.backend as BackendWasm;
    const simd = simdFor(backend);
    if (!simd || x.dtype !== 'float32' || x.shape.length !== 4) return stock(args);
    const shape4 = (s: number[]) => s as [number, number, number, number];
    const info = tf.backend_util.computeConv2DInfo(shape4(x.shape), shape4(filter.shape), attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode);
    if (!takesFastPath(info, attrs)) return stock(args);
    const scope = new KernelScope(backend);
    try {
      const { top, bottom, left, right } = info.padInfo;
      const padded = top + bottom + left + right === 0
        ? x
        : scope.run('PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 });
      const out = backend.makeOutput(info.outShape, 'float32');
      simd.conv2d_c1(
        heapPtr(backend, padded), heapPtr(backend, filter), heapPtr(backend, out), info.batchSize,
        padded.shape[1]!, padded.shape[2]!, info.outHeight, info.outWidth, info.outChannels, info.strideHeight, info.strideWidth,
      );
      return out;
    } finally {
      scope.disposeAll();
    }
  },
};
