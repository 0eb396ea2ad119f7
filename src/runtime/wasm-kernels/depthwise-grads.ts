import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { filterGradAxis, tapTable } from './geometry.js';
import { type ConvGeometry, type InputGradPlan, convGeometry, inputGradPlan, inputGradient, phaseFilter } from './input-gradient.js';
import { type KernelArgs, type KernelScope, scoped } from './scope.js';
import { heapPtr, type SimdKernels, simdFor, withInt32Arrays } from './simd.js';

type TensorInfo = tf.TensorInfo;

function depthwiseInfo(xShape: number[], filterShape: number[], attrs: tf.DepthwiseConv2dNativeBackpropInputAttrs | tf.DepthwiseConv2dNativeBackpropFilterAttrs): tf.backend_util.Conv2DInfo {
  const { strides, pad, dimRoundingMode } = attrs;
  const dilations = attrs.dilations ?? [1, 1];
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
}

/**
 * Filter of the depthwise phase convolution for dx: [tapsRows, tapsCols, C*M, phases], each
 * channel's forward filter flipped and split into stride phases.
 */
function depthwisePhaseFilter(s: KernelScope, filter: TensorInfo, g: ConvGeometry, plan: InputGradPlan): TensorInfo {
  const [, , c, m] = filter.shape as [number, number, number, number];
  const channels = c * m;
  const { phases } = plan;
  return phaseFilter(s, filter, g, plan, [channels, phases], (dst, w, taps) => {
    let o = 0;
    for (let t = 0; t < plan.rows.taps * plan.cols.taps; t++) {
      for (let ch = 0; ch < channels; ch++) {
        for (let p = 0; p < phases; p++) {
          const k = taps[t * phases + p]!;
          dst[o++] = k < 0 ? 0 : w[k * channels + ch]!;
        }
      }
    }
  });
}

/** dx by simd.wat's gather loop: each input pixel sums its taps, found through tap tables. */
function gatherInputGrad(be: BackendWasm, simd: SimdKernels, dy: TensorInfo, filter: TensorInfo, g: ConvGeometry): TensorInfo {
  const { rows: r, cols: q } = g;
  const dx = be.makeOutput([g.batch, r.inSize, q.inSize, g.inChannels], 'float32');
  withInt32Arrays(be, [tapTable(r), tapTable(q)], ([rowTaps, colTaps]) =>
    simd.depthwise_input_grad(
      heapPtr(be, dy), heapPtr(be, filter), heapPtr(be, dx), rowTaps!, colTaps!, g.batch, r.inSize, q.inSize, g.inChannels,
      r.outSize, q.outSize, r.kernel, q.kernel,
    ),
  );
  return dx;
}

/**
 * dx. With SIMD (multiplier 1, channels % 4 == 0) for strided or wide layers: the gather loop,
 * ~5x faster than the phase convolution at stride 2, where XNNPACK runs a multiplier-4 depthwise
 * slowly; at stride 1 with few channels XNNPACK is a little faster. Otherwise a depthwise
 * convolution of dy with the phase filter gives, per input channel c and multiplier m,
 * [B, Mh, Mw, (c*M+m)*phases + phase]; summing over m leaves channel-major phases.
 */
function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const g = convGeometry(depthwiseInfo(a.inputShape, filter.shape, a), dy.shape);
  const [, , c, m] = filter.shape as [number, number, number, number];
  const be = backend as BackendWasm;
  const simd = simdFor(be);
  const strided = g.rows.stride > 1 || g.cols.stride > 1;
  if (simd && m === 1 && c % 4 === 0 && (strided || c >= 64)) return gatherInputGrad(be, simd, dy, filter, g);
  return scoped(be, (s) => {
    const plan = inputGradPlan(g);
    const phased = depthwisePhaseFilter(s, filter, g, plan);
    return inputGradient(s, dy, g, plan, 'channel-major', (d, pad, dilations) => {
      const y = s.depthwise(d, phased, pad, [1, 1], dilations);
      if (m === 1) return y;
      const [b, mh, mw] = y.shape as [number, number, number];
      const perMultiplier = s.reshape(y, [b, mh, mw, g.inChannels, m, plan.phases]);
      return s.reshape(s.sum(s.transpose(perMultiplier, [0, 1, 2, 3, 5, 4]), [5]), [b, mh, mw, g.inChannels * plan.phases]);
    });
  });
}

/**
 * x [B,H,W,C] -> [B,H,W,C*M] with every channel repeated M times, as a broadcasting multiply by
 * ones (XNNPACK; the stock Tile kernel is ~100x slower).
 */
function repeatChannels(s: KernelScope, x: TensorInfo, m: number): TensorInfo {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const ones = s.alloc([1, 1, 1, 1, m]);
  s.view(ones).fill(1);
  return s.reshape(s.run('Multiply', { a: s.reshape(x, [b, h, w, c, 1]), b: ones }), [b, h, w, c * m]);
}

/**
 * dW[kh,kw,c,m] = sum over b,oh,ow of x[b, oh*s+kh*d-pt, ow*s+kw*d-pl, c] * dy[b,oh,ow,c*M+m].
 * With SIMD: one pass of simd.wat's loop (x repeated M times along channels first, so that
 * every dy channel has its own x channel). Otherwise, with the batch folded into the channels
 * (x -> [1,H,W,B*C], dy -> filter [OH,OW,B*C,M]), one XNNPACK depthwise convolution (stride =
 * forward dilation, dilation = forward stride) gives [1,KH,KW,B*C*M] and a sum over B finishes
 * it; XNNPACK runs such huge kernels slowly (~20x the forward pass on MobileNet layers).
 */
export function depthwiseFilterGrad(s: KernelScope, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  const [kh, kw, c, m] = filterShape as [number, number, number, number];
  const [b, h, w] = x.shape as [number, number, number];
  const [, oh, ow] = dy.shape as [number, number, number];
  const simd = simdFor(s.backend);
  if (simd && (c * m) % 4 === 0) {
    const xm = m === 1 ? x : repeatChannels(s, x, m);
    const out = s.alloc([kh, kw, c, m]);
    const { rows: r, cols: q } = g;
    simd.depthwise_filter_grad(
      heapPtr(s.backend, xm), heapPtr(s.backend, dy), heapPtr(s.backend, out), b, h, w, c * m, oh, ow, kh, kw,
      r.stride, q.stride, r.dilation, q.dilation, r.padBefore, q.padBefore,
    );
    return out;
  }
  const rows = filterGradAxis(g.rows);
  const cols = filterGradAxis(g.cols);
  const xT = s.reshape(s.transpose(x, [1, 2, 0, 3]), [1, h, w, b * c]);
  const dyT = s.reshape(s.transpose(dy, [1, 2, 0, 3]), [oh, ow, b * c, m]);
  const pads = [[0, 0], [g.rows.padBefore, rows.padAfter], [g.cols.padBefore, cols.padAfter], [0, 0]];
  const full = s.depthwise(xT, dyT, pads, [g.rows.dilation, g.cols.dilation], [g.rows.stride, g.cols.stride]);
  const cut = s.slice(full, [0, 0, 0, 0], [1, kh, kw, b * c * m]);
  const perBatch = s.reshape(cut, [kh * kw, b, c * m]);
  return s.reshape(b === 1 ? perBatch : s.sum(perBatch, [1]), [kh, kw, c, m]);
}

function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const g = convGeometry(depthwiseInfo(x.shape, a.filterShape, a), dy.shape);
  return scoped(backend as BackendWasm, (s) => depthwiseFilterGrad(s, x, dy, g, a.filterShape));
}

export const depthwiseGradKernels: tf.KernelConfig[] = [
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    backendName: 'wasm',
    kernelFunc: depthwiseBackpropInput as tf.KernelFunc,
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    backendName: 'wasm',
    kernelFunc: depthwiseBackpropFilter as tf.KernelFunc,
  },
];
