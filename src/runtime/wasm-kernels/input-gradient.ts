import tf from '../tf.cjs';
import { type AxisConv, type InputGradAxis, inputGradAxis, phaseTaps } from './geometry.js';
import type { KernelScope } from './scope.js';

type TensorInfo = tf.TensorInfo;

/** Both spatial axes of a forward convolution, and its input/output sizes (NHWC). */
export interface ConvGeometry {
  batch: number;
  inChannels: number;
  rows: AxisConv;
  cols: AxisConv;
}

/** tfjs's Conv2DInfo of an NHWC convolution (the shapes as plain arrays). */
export function nhwcConv2DInfo(
  xShape: number[], filterShape: number[], strides: number | [number, number], dilations: number | [number, number],
  pad: tf.Conv2DAttrs['pad'], roundingMode?: 'floor' | 'round' | 'ceil',
): tf.backend_util.Conv2DInfo {
  const shape4 = (s: number[]) => s as [number, number, number, number];
  return tf.backend_util.computeConv2DInfo(shape4(xShape), shape4(filterShape), strides, dilations, pad, roundingMode);
}

export function convGeometry(info: tf.backend_util.Conv2DInfo, dyShape: number[]): ConvGeometry {
  const axis = (inSize: number, outSize: number, kernel: number, stride: number, dilation: number, padBefore: number): AxisConv => ({
    inSize,
    outSize,
    kernel,
    stride,
    dilation,
    padBefore,
  });
  return {
    batch: info.batchSize,
    inChannels: info.inChannels,
    rows: axis(info.inHeight, dyShape[1]!, info.filterHeight, info.strideHeight, info.dilationHeight, info.padInfo.top),
    cols: axis(info.inWidth, dyShape[2]!, info.filterWidth, info.strideWidth, info.dilationWidth, info.padInfo.left),
  };
}

export interface InputGradPlan {
  rows: InputGradAxis;
  cols: InputGradAxis;
  phases: number;
}

export function inputGradPlan(g: ConvGeometry): InputGradPlan {
  return { rows: inputGradAxis(g.rows), cols: inputGradAxis(g.cols), phases: g.rows.stride * g.cols.stride };
}

/**
 * Allocates a phase filter [tapsRows, tapsCols, ...inner] and lets `fill` write it from the
 * forward filter `w`; `taps` is phaseTaps' table (kernel tap per filter tap and phase, -1 = zero).
 */
export function phaseFilter(
  s: KernelScope,
  filter: TensorInfo,
  g: ConvGeometry,
  plan: InputGradPlan,
  inner: number[],
  fill: (dst: Float32Array, w: Float32Array, taps: Int32Array) => void,
): TensorInfo {
  const taps = phaseTaps(g.rows, g.cols, plan.rows.taps, plan.cols.taps);
  const out = s.alloc([plan.rows.taps, plan.cols.taps, ...inner]);
  fill(s.view(out), s.view(filter), taps);
  return out;
}

/**
 * How the phase convolution lays out its output channels: conv2d writes phase*C + c,
 * depthwise writes c*phases + phase.
 */
export type PhaseLayout = 'phase-major' | 'channel-major';

/**
 * dx of a convolution from a stride-1 "phase convolution" of dy (see geometry.ts):
 * crop/pad dy, convolve, interleave the stride phases, cut out the input window.
 * `phaseConv(dy, explicitPad, dilations)` returns [B, Mh, Mw, phases*C].
 */
export function inputGradient(
  s: KernelScope,
  dy: TensorInfo,
  g: ConvGeometry,
  plan: InputGradPlan,
  layout: PhaseLayout,
  phaseConv: (dy: TensorInfo, pad: number[][], dilations: number[]) => TensorInfo,
): TensorInfo {
  const [batch, outRows, outCols, dyChannels] = dy.shape as [number, number, number, number];
  const { rows, cols } = plan;
  const C = g.inChannels;
  const keptRows = outRows - rows.cropBefore - rows.cropAfter;
  const keptCols = outCols - cols.cropBefore - cols.cropAfter;
  if (keptRows <= 0 || keptCols <= 0) return zeros(s, [batch, g.rows.inSize, g.cols.inSize, C]);
  const cropped = s.slice(dy, [0, rows.cropBefore, cols.cropBefore, 0], [batch, keptRows, keptCols, dyChannels]);
  const pad = [[0, 0], [rows.padBefore, rows.padAfter], [cols.padBefore, cols.padAfter], [0, 0]];
  const y = phaseConv(cropped, pad, [g.rows.dilation, g.cols.dilation]);
  const sh = g.rows.stride;
  const sw = g.cols.stride;
  let full = y;
  if (plan.phases > 1) {
    const [, mh, mw] = y.shape as [number, number, number];
    const split = layout === 'phase-major' ? [batch, mh, mw, sh, sw, C] : [batch, mh, mw, C, sh, sw];
    const perm = layout === 'phase-major' ? [0, 1, 3, 2, 4, 5] : [0, 1, 4, 2, 5, 3];
    full = s.reshape(s.transpose(s.reshape(y, split), perm), [batch, mh * sh, mw * sw, C]);
  }
  return s.slice(full, [0, rows.offset, cols.offset, 0], [batch, g.rows.inSize, g.cols.inSize, C]);
}

function zeros(s: KernelScope, shape: number[]): TensorInfo {
  const out = s.alloc(shape);
  s.view(out).fill(0);
  return out;
}
