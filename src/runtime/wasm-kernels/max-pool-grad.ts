import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { runSplit } from './pool.js';
import type { KernelArgs } from './scope.js';
import { heapPtr, simdFor, simdPoolFor } from './simd.js';

type TensorInfo = tf.TensorInfo;

/**
 * MaxPoolGrad (NHWC): each window's gradient goes to its first maximum in row-major window
 * order, as on the cpu backend. One pass over x on the heap (SIMD when channels % 4 == 0); the
 * stock wasm kernel took ~18 ms for the seed CNN's first pool at batch 32.
 */
function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const be = backend as BackendWasm;
  const out = be.makeOutput(input.shape, 'float32');
  const simd = simdFor(be);
  if (simd && info.inChannels % 4 === 0) {
    const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;
    const disjoint = sh >= fh && sw >= fw;
    const tiled = sh === fh && sw === fw && padInfo.top === 0 && padInfo.left === 0;
    const covered = tiled && info.outHeight * sh === info.inHeight && info.outWidth * sw === info.inWidth;
    if (fh === 2 && fw === 2 && tiled) {
      const inBytes = info.inHeight * info.inWidth * info.inChannels * 4;
      const outBytes = info.outHeight * info.outWidth * info.inChannels * 4;
      runSplit(simdPoolFor(be)!, info.batchSize, (images) => [{
        kernel: 'max_pool_grad_2x2',
        args: [
          heapPtr(be, input) + images.first * inBytes, heapPtr(be, dy) + images.first * outBytes, heapPtr(be, out) + images.first * inBytes,
          images.count, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth, covered ? 0 : 1,
        ],
      }]);
      return out;
    }
    simd.max_pool_grad(
      heapPtr(be, input), heapPtr(be, dy), heapPtr(be, out), info.batchSize, info.inHeight, info.inWidth, info.inChannels,
      info.outHeight, info.outWidth, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth,
      info.padInfo.top, info.padInfo.left, disjoint ? 0 : 1, covered ? 0 : 1,
    );
    return out;
  }
  const x = be.typedArrayFromHeap(input) as Float32Array;
  const g = be.typedArrayFromHeap(dy) as Float32Array;
  const dx = be.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const best = new Float32Array(channels);
  const at = new Int32Array(channels);
  let dyIndex = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const rowStart = oh * info.strideHeight - info.padInfo.top;
      const rowFrom = Math.max(0, rowStart);
      const rowTo = Math.min(inHeight, rowStart + info.filterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const colStart = ow * info.strideWidth - info.padInfo.left;
        const colFrom = Math.max(0, colStart);
        const colTo = Math.min(inWidth, colStart + info.filterWidth);
        best.fill(-Infinity);
        at.fill(-1);
        for (let r = rowFrom; r < rowTo; r++) {
          for (let c = colFrom; c < colTo; c++) {
            const base = ((b * inHeight + r) * inWidth + c) * channels;
            for (let ch = 0; ch < channels; ch++) {
              const v = x[base + ch]!;
              if (v > best[ch]!) {
                best[ch] = v;
                at[ch] = base + ch;
              }
            }
          }
        }
        for (let ch = 0; ch < channels; ch++, dyIndex++) {
          const pos = at[ch]!;
          if (pos >= 0) dx[pos] += g[dyIndex]!;
        }
      }
    }
  }
  return out;
}

export const maxPoolGradKernel: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as tf.KernelFunc,
};
