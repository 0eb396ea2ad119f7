import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelArgs } from './scope.js';
import { heapPtr, simdFor, withScratch, type SimdKernels } from './simd.js';

/**
 * BatchNormalization on frozen statistics followed by a ReLU (capped, for ReLU6) is, per channel c,
 * y = min(max(x*scale[c] + shift[c], 0), maxValue): one pass forward and one backward instead of
 * tfjs's Sub, Mul, Add, Relu, ClipByValue and their gradients (about a third of a MobileNet
 * fine-tuning step on wasm). These are the two passes and `batchNormRelu`, the differentiable op
 * src/training/layer-patches.ts puts in place of each BN -> ReLU pair.
 */
export const AFFINE_RELU = 'TlAffineRelu';
export const AFFINE_RELU_GRAD = 'TlAffineReluGrad';

/** attrs of both kernels: the ReLU's cap (Infinity for a plain ReLU). */
export interface AffineReluAttrs {
  maxValue: number;
}

/** Heap views of float32 tensors (valid until the next allocation). */
const views = (be: BackendWasm, tensors: tf.TensorInfo[]) => tensors.map((t) => be.typedArrayFromHeap(t) as Float32Array);

/** simd.wat where it runs and the channels come in fours; the same float32 arithmetic in JS otherwise. */
function simdWithChannels(be: BackendWasm, x: tf.TensorInfo): { simd?: SimdKernels; channels: number; rows: number } {
  const channels = x.shape[x.shape.length - 1]!;
  const simd = channels % 4 === 0 ? simdFor(be) : undefined;
  return { simd, channels, rows: tf.util.sizeFromShape(x.shape) / channels };
}

/** x*scale + shift rounded as float32 arithmetic rounds each step (as simd.wat computes it). */
const affine = (x: number, scale: number, shift: number) => Math.fround(Math.fround(x * scale) + shift);

/** y = min(max(x*scale + shift, 0), maxValue) per channel, NHWC (channels last); NaN gives 0. */
function affineRelu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, scale, shift } = inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; shift: tf.TensorInfo };
  const { maxValue } = attrs as unknown as AffineReluAttrs;
  const be = backend as BackendWasm;
  const out = be.makeOutput(x.shape, 'float32');
  const { simd, channels, rows } = simdWithChannels(be, x);
  if (simd) {
    simd.affine_relu(heapPtr(be, x), heapPtr(be, scale), heapPtr(be, shift), heapPtr(be, out), rows, channels, maxValue);
    return out;
  }
  const [xs, s, b, y] = views(be, [x, scale, shift, out]) as [Float32Array, Float32Array, Float32Array, Float32Array];
  for (let r = 0, i = 0; r < rows; r++) {
    for (let c = 0; c < channels; c++, i++) {
      const z = affine(xs[i]!, s[c]!, b[c]!);
      y[i] = z > 0 ? (z < maxValue ? z : maxValue) : 0;
    }
  }
  return out;
}

/**
 * From x and dy: dz = 0 < z <= maxValue ? dy : 0 with z the forward's pre-activation (the product of
 * tfjs's ReLU and clipByValue gradients), dx = dz*scale, and per channel sum(dz) and
 * sum(dz*(x - mean)) (float64 sums), from which the op makes beta's and gamma's gradients.
 */
function affineReluGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { x, dy, scale, shift, mean } = inputs as Record<'x' | 'dy' | 'scale' | 'shift' | 'mean', tf.TensorInfo>;
  const { maxValue } = attrs as unknown as AffineReluAttrs;
  const be = backend as BackendWasm;
  const { simd, channels, rows } = simdWithChannels(be, x);
  const dx = be.makeOutput(x.shape, 'float32');
  const dzSum = be.makeOutput([channels], 'float32');
  const dzCenteredSum = be.makeOutput([channels], 'float32');
  if (simd) {
    const ptrs = [x, dy, scale, shift, mean, dx, dzSum, dzCenteredSum].map((t) => heapPtr(be, t)) as [number, number, number, number, number, number, number, number];
    withScratch(be, 24 * channels, (scratch) => simd.affine_relu_grad(...ptrs, rows, channels, maxValue, scratch));
    return [dx, dzSum, dzCenteredSum];
  }
  const [xs, g, s, b, m, out, sum, centeredSum] = views(be, [x, dy, scale, shift, mean, dx, dzSum, dzCenteredSum]) as Float32Array[];
  const acc = new Float64Array(channels);
  const accCentered = new Float64Array(channels);
  for (let r = 0, i = 0; r < rows; r++) {
    for (let c = 0; c < channels; c++, i++) {
      const v = xs![i]!;
      const z = affine(v, s![c]!, b![c]!);
      const dz = z > 0 && z <= maxValue ? g![i]! : 0;
      out![i] = dz * s![c]!;
      acc[c] += dz;
      accCentered[c] += dz * (v - m![c]!);
    }
  }
  sum!.set(acc);
  centeredSum!.set(accCentered);
  return [dx, dzSum, dzCenteredSum];
}

export const affineReluKernels: tf.KernelConfig[] = [
  { kernelName: AFFINE_RELU, backendName: 'wasm', kernelFunc: affineRelu as tf.KernelFunc },
  { kernelName: AFFINE_RELU_GRAD, backendName: 'wasm', kernelFunc: affineReluGrad as unknown as tf.KernelFunc },
];

/** Whether the running backend has the fused BN(inference) + ReLU kernels. */
export function hasAffineRelu(): boolean {
  return tf.getKernel(AFFINE_RELU, tf.getBackend()) !== undefined;
}

/** A channels-last BatchNormalization with gamma and beta, followed by a rectifier: what the fused op computes. */
export function affineReluSupports(bn: { scale: boolean; center: boolean; channelsLast: boolean }, reluCap: number | undefined): boolean {
  return hasAffineRelu() && bn.scale && bn.center && bn.channelsLast && reluCap !== undefined;
}

/** A BatchNormalization layer's frozen statistics and epsilon. */
export interface FrozenBatchNorm {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  epsilon: number;
}

/**
 * min(max(BN(x), 0), maxValue) with BN on frozen statistics, differentiable in x, gamma and beta:
 * dgamma = sum(dz*(x - mean))*rstd and dbeta = sum(dz) (the statistics get no gradient: they do
 * not train). NHWC; wasm only (see hasAffineRelu).
 */
export function batchNormRelu(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, stats: FrozenBatchNorm, maxValue: number): tf.Tensor {
  const attrs = { maxValue };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, g, b] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D];
    const rstd = tf.rsqrt(tf.add(stats.variance, stats.epsilon));
    const scale = tf.mul(g, rstd);
    const shift = tf.sub(b, tf.mul(stats.mean, scale));
    save([xIn, scale, shift, rstd]);
    return {
      value: tf.engine().runKernel(AFFINE_RELU, { x: xIn, scale, shift }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, sc, sh, r] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const inputs = { x: xs, dy, scale: sc, shift: sh, mean: stats.mean };
        const [dx, dzSum, dzCenteredSum] = tf.engine().runKernel(AFFINE_RELU_GRAD, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        return [dx!, tf.mul(dzCenteredSum!, r), dzSum!];
      },
    };
  });
  return op(x, gamma, beta);
}
