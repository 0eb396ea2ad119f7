import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { filterGradAxis, phaseTaps } from './geometry.js';
import { type ConvGeometry, type InputGradPlan, convGeometry, inputGradPlan, inputGradient } from './input-gradient.js';
import { type KernelArgs, type KernelScope, scoped } from './scope.js';

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
  const th = plan.rows.taps;
  const tw = plan.cols.taps;
  const taps = phaseTaps(g.rows, g.cols, th, tw);
  const out = s.alloc([th, tw, channels, plan.phases]);
  const w = s.view(filter);
  const dst = s.view(out);
  let o = 0;
  for (let t = 0; t < th * tw; t++) {
    for (let ch = 0; ch < channels; ch++) {
      for (let p = 0; p < plan.phases; p++) {
        const k = taps[t * plan.phases + p]!;
        dst[o++] = k < 0 ? 0 : w[k * channels + ch]!;
      }
    }
  }
  return out;
}

/**
 * dx: a depthwise convolution of dy with the phase filter gives, per input channel c and
 * multiplier m, [B, Mh, Mw, (c*M+m)*phases + phase]; summing over m leaves channel-major phases.
 */
function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = depthwiseInfo(a.inputShape, filter.shape, a);
  const g = convGeometry(info, dy.shape);
  const m = filter.shape[3]!;
  return scoped(backend as BackendWasm, (s) => {
    const plan = inputGradPlan(g);
    const phaseFilter = depthwisePhaseFilter(s, filter, g, plan);
    return inputGradient(s, dy, g, plan, 'channel-major', (d, pad, dilations) => {
      const y = s.depthwise(d, phaseFilter, pad, [1, 1], dilations);
      if (m === 1) return y;
      const [b, mh, mw] = y.shape as [number, number, number];
      const perMultiplier = s.reshape(y, [b, mh, mw, g.inChannels, m, plan.phases]);
      return s.reshape(s.sum(s.transpose(perMultiplier, [0, 1, 2, 3, 5, 4]), [5]), [b, mh, mw, g.inChannels * plan.phases]);
    });
  });
}

/**
 * dW[kh,kw,c,m] = sum over b,oh,ow of x[b, oh*s+kh*d-pt, ow*s+kw*d-pl, c] * dy[b,oh,ow,c*M+m].
 * With the batch folded into the channels (x -> [1,H,W,B*C], dy -> filter [OH,OW,B*C,M]) this
 * is one depthwise convolution (stride = forward dilation, dilation = forward stride) giving
 * [1,KH,KW,B*C*M]; a sum over B finishes it.
 */
function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = depthwiseInfo(x.shape, a.filterShape, a);
  const g = convGeometry(info, dy.shape);
  const [kh, kw, c, m] = a.filterShape;
  const [b, h, w] = x.shape as [number, number, number];
  const [, oh, ow] = dy.shape as [number, number, number];
  return scoped(backend as BackendWasm, (s) => {
    const rows = filterGradAxis(g.rows);
    const cols = filterGradAxis(g.cols);
    const xT = s.reshape(s.transpose(x, [1, 2, 0, 3]), [1, h, w, b * c]);
    const dyT = s.reshape(s.transpose(dy, [1, 2, 0, 3]), [oh, ow, b * c, m]);
    const pads = [[0, 0], [g.rows.padBefore, rows.padAfter], [g.cols.padBefore, cols.padAfter], [0, 0]];
    const full = s.depthwise(xT, dyT, pads, [g.rows.dilation, g.cols.dilation], [g.rows.stride, g.cols.stride]);
    const cut = s.slice(full, [0, 0, 0, 0], [1, kh, kw, b * c * m]);
    const perBatch = s.reshape(cut, [kh * kw, b, c * m]);
    return s.reshape(b === 1 ? perBatch : s.sum(perBatch, [1]), [kh, kw, c, m]);
  });
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
