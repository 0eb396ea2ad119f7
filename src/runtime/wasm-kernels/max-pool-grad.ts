import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelArgs } from './scope.js';

type TensorInfo = tf.TensorInfo;

/**
 * MaxPoolGrad (NHWC): each window's gradient goes to its first maximum in row-major window
 * order, as on the cpu backend. One pass over x on the heap; the stock wasm kernel rescans
 * every window for every input pixel and took ~18 ms for the seed CNN's first pool (batch 32).
 */
function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const be = backend as BackendWasm;
  const out = be.makeOutput(input.shape, 'float32');
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
