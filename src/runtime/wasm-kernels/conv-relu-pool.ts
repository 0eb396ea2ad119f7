import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { isOneChannel3x3, padded } from './conv2d-c1.js';
import { nhwcConv2DInfo } from './input-gradient.js';
import { type KernelArgs, withKernelScope } from './scope.js';
import { partials } from './partials.js';
import { runShares, runSplit } from './pool.js';
import { heapPtr, simdFor, simdPoolFor } from './simd.js';

/**
 * The first block of a grayscale CNN, Conv2D(3x3, stride 1, ReLU) -> MaxPooling2D(2), as one kernel
 * pair. Forward, simd.wat's conv2d_c1_relu_pool writes only the pooled map and, per pooled value,
 * which window position won (the full-size feature map, 4x larger, is never stored). Backward,
 * conv2d_c1_relu_pool_grad takes the filter and bias gradients straight from the pooled gradient:
 * the max-pool gradient, the ReLU gradient, the bias sum and the filter gradient in one pass, where
 * unfused they are four passes over the full-size map.
 */
export const CONV_RELU_POOL = 'TlConvReluPool';
const CONV_RELU_POOL_GRAD = 'TlConvReluPoolGrad';

export interface ConvReluPoolAttrs {
  pad: 'valid' | 'same';
}

function convInfo(x: tf.TensorInfo, filterShape: number[], attrs: ConvReluPoolAttrs): tf.backend_util.Conv2DInfo {
  return nhwcConv2DInfo(x.shape, filterShape, 1, 1, attrs.pad);
}

/** [batch, pooledH, pooledW, Co]: a 2x2 pool at stride 2, 'valid', of the convolution's output. */
function pooledShape(info: tf.backend_util.Conv2DInfo): number[] {
  return [info.batchSize, Math.floor(info.outHeight / 2), Math.floor(info.outWidth / 2), info.outChannels];
}

/** Whether CONV_RELU_POOL runs on the current backend: wasm, with SIMD (its loops have no fallback). */
export function convReluPoolRuns(): boolean {
  return tf.getKernel(CONV_RELU_POOL, tf.getBackend()) !== undefined && simdFor(tf.backend() as BackendWasm) !== undefined;
}

/**
 * A ReLU convolution CONV_RELU_POOL runs with the 2x2 max-pool after it: 3x3 at stride 1 over one
 * channel, with a bias, to a multiple of 4 channels (its SIMD lanes).
 */
export function convReluPoolSupports(conv: { kernelShape: readonly number[]; strides: readonly number[]; hasBias: boolean; activation: string }): boolean {
  const [kh, kw, ci, co] = conv.kernelShape;
  const shaped = kh === 3 && kw === 3 && ci === 1 && co! % 4 === 0 && conv.strides.every((s) => s === 1);
  return convReluPoolRuns() && conv.activation === 'relu' && shaped && conv.hasBias;
}

function requireSupported(backend: BackendWasm, x: tf.TensorInfo, info: tf.backend_util.Conv2DInfo) {
  const simd = simdFor(backend);
  if (!simd || x.shape.length !== 4 || !isOneChannel3x3(info)) {
    throw new Error(`${CONV_RELU_POOL}: needs wasm SIMD and a 3x3 one-channel convolution to a multiple of 4 channels`);
  }
  return simd;
}

function convReluPool({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { x, filter, bias } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo; bias: tf.TensorInfo };
  const be = backend as BackendWasm;
  const info = convInfo(x, filter.shape, attrs as unknown as ConvReluPoolAttrs);
  requireSupported(be, x, info);
  const shape = pooledShape(info);
  const pooled = be.makeOutput(shape, 'float32');
  const argmax = be.makeOutput(shape, 'int32');
  withKernelScope(be, (scope) => {
    const input = padded(scope, x, info);
    const [, inH, inW] = input.shape as [number, number, number, number];
    const pooledBytes = shape[1]! * shape[2]! * info.outChannels * 4;
    runSplit(simdPoolFor(be)!, info.batchSize, (images) => [{
      kernel: 'conv2d_c1_relu_pool',
      args: [
        heapPtr(be, input) + images.first * inH * inW * 4, heapPtr(be, filter), heapPtr(be, bias),
        heapPtr(be, pooled) + images.first * pooledBytes, heapPtr(be, argmax) + images.first * pooledBytes,
        images.count, inH, inW, shape[1]!, shape[2]!, info.outChannels,
      ],
    }]);
  });
  return [pooled, argmax];
}

function convReluPoolGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { x, dy, pooled, argmax } = inputs as Record<'x' | 'dy' | 'pooled' | 'argmax', tf.TensorInfo>;
  const be = backend as BackendWasm;
  const channels = pooled.shape[3]!;
  const info = convInfo(x, [3, 3, 1, channels], attrs as unknown as ConvReluPoolAttrs);
  const simd = requireSupported(be, x, info);
  const dw = be.makeOutput([3, 3, 1, channels], 'float32');
  const db = be.makeOutput([channels], 'float32');
  withKernelScope(be, (scope) => {
    const input = padded(scope, x, info);
    const [, inH, inW] = input.shape as [number, number, number, number];
    const [, ph, pw] = pooled.shape as [number, number, number, number];
    const pool = simdPoolFor(be)!;
    // Each reduction share of the batch sums into its own dW and db; one pass adds them up.
    const dws = partials(scope, simd, info.batchSize, dw);
    const dbs = partials(scope, simd, info.batchSize, db);
    runShares(pool, info.batchSize, (images, part) => [{
      kernel: 'conv2d_c1_relu_pool_grad',
      args: [
        heapPtr(be, input) + images.first * inH * inW * 4, heapPtr(be, dy) + images.first * ph * pw * channels * 4,
        heapPtr(be, pooled) + images.first * ph * pw * channels * 4, heapPtr(be, argmax) + images.first * ph * pw * channels * 4,
        dws.at(part), dbs.at(part), images.count, inH, inW, ph, pw, channels,
      ],
    }]);
    dws.sum();
    dbs.sum();
  });
  return [dw, db];
}

export const convReluPoolKernels: tf.KernelConfig[] = [
  { kernelName: CONV_RELU_POOL, backendName: 'wasm', kernelFunc: convReluPool as unknown as tf.KernelFunc },
  { kernelName: CONV_RELU_POOL_GRAD, backendName: 'wasm', kernelFunc: convReluPoolGrad as unknown as tf.KernelFunc },
];

/**
 * The pre-activation gradient dz [B, OH, OW, Co] rebuilt from the pooled gradient: g = pooled > 0 ?
 * dpooled : 0 placed at the winning window position (rows and columns the pool dropped stay 0).
 * Only the input gradient needs it, and only a layer whose input is not the batch asks for that.
 */
function denseGradient(dy: tf.Tensor4D, pooled: tf.Tensor4D, argmax: tf.Tensor4D, outH: number, outW: number): tf.Tensor4D {
  const [batch, ph, pw, channels] = pooled.shape;
  const g = tf.mul(dy, tf.step(pooled));
  const at = (position: number) => tf.mul(g, tf.cast(tf.equal(argmax, position), 'float32'));
  const rows = [0, 1].map((r) => tf.stack([at(2 * r), at(2 * r + 1)], 3)); // [B, PH, PW, 2 (dx), C]
  const windows = tf.reshape(tf.stack(rows, 2), [batch, 2 * ph, 2 * pw, channels]) as tf.Tensor4D; // from [B, PH, 2 (dy), PW, 2, C]
  return tf.pad(windows, [[0, 0], [0, outH - 2 * ph], [0, outW - 2 * pw], [0, 0]]);
}

export const convReluPoolGradConfig: tf.GradConfig = {
  kernelName: CONV_RELU_POOL,
  inputsToSave: ['x', 'filter'],
  outputsToSave: [true, true],
  gradFunc: (dys, saved, attrs) => {
    const [x, filter, pooled, argmax] = saved as tf.Tensor4D[];
    const dy = (dys as tf.Tensor[])[0] as tf.Tensor4D;
    const { pad } = attrs as unknown as ConvReluPoolAttrs;
    // Made here, not in a closure: the tape runs each closure in its own tidy.
    const [dw, db] = tf.engine().runKernel(CONV_RELU_POOL_GRAD, { x, dy, pooled, argmax }, { pad }) as tf.Tensor[];
    return {
      x: () => {
        const info = convInfo(x, filter.shape, { pad });
        const dz = denseGradient(dy, pooled!, argmax!, info.outHeight, info.outWidth);
        return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dz, filter }, { strides: 1, pad, dataFormat: 'NHWC', inputShape: x!.shape }) as tf.Tensor;
      },
      filter: () => dw!,
      bias: () => db!,
    };
  },
};
