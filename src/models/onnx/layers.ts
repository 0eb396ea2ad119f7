import tf from '../../runtime/tf.cjs';
import { TlError } from '../../util/errors.js';
import { layerConfig } from '../graph-patterns.js';
import { float, GraphBuilder, int, ints } from './graph.js';

/**
 * One converter per tfjs layer class. Keras is channels-last; ONNX's Conv and pooling are
 * channels-first. Rank-4 values therefore live in NCHW inside the graph and are transposed back
 * only where Keras order matters (Flatten, Reshape, Dense, Softmax, the model output).
 */

export type Layout = 'nchw' | 'keras';

/** A tensor of the ONNX graph standing for one tfjs tensor. */
export interface Value {
  name: string;
  rank: number;
  /** 'nchw' only for rank 4: [N, C, H, W] here for Keras' [N, H, W, C]. */
  layout: Layout;
}

/** The graph plus the layout conversions already made (each tensor is transposed at most once each way). */
export class ExportGraph extends GraphBuilder {
  private readonly converted = new Map<string, Value>();
  private readonly scalars = new Map<number, string>();

  /** A float32 scalar initializer, one per value (Clip bounds). */
  scalar(value: number): string {
    let name = this.scalars.get(value);
    if (!name) {
      name = this.floats(`const_${String(value).replace(/\W/g, '_')}`, new Float32Array([value]), []);
      this.scalars.set(value, name);
    }
    return name;
  }

  private transpose(v: Value, perm: number[], layout: Layout): Value {
    const key = `${v.name}->${layout}`;
    let out = this.converted.get(key);
    if (!out) {
      out = { name: this.node('Transpose', [v.name], `${v.name}_${layout}`, { perm: ints(perm) }), rank: v.rank, layout };
      this.converted.set(key, out);
    }
    return out;
  }

  /** `v` in Keras (channels-last) order. */
  keras(v: Value): Value {
    return v.layout === 'nchw' ? this.transpose(v, [0, 2, 3, 1], 'keras') : v;
  }

  /** `v` (rank 4) in NCHW order. */
  nchw(v: Value): Value {
    return v.layout === 'keras' ? this.transpose(v, [0, 3, 1, 2], 'nchw') : v;
  }
}

/** One call of a layer, as the exporter sees it. */
export interface LayerCall {
  layer: tf.layers.Layer;
  cls: string;
  cfg: Record<string, unknown>;
  inputs: Value[];
  /** Keras shape of the first input ([batch, ...]; null where it varies). */
  inputShape: (number | null)[];
  /** Keras shape of the output. */
  outputShape: (number | null)[];
  /** A BatchNormalization that directly follows this conv and is folded into it. */
  batchNorm?: tf.layers.Layer;
}

export type Converter = (g: ExportGraph, call: LayerCall) => Value;

/** The one-line error for what the exporter cannot express. */
export function unsupported(layer: tf.layers.Layer, what: string): TlError {
  return new TlError(`layer ${layer.name} (${layer.getClassName()}): ${what} cannot be exported to ONNX; rebuild the model without it or use --engine tfjs`);
}

/** A layer's weights as float arrays with their shapes (getWeights hands out the variables' own tensors: not disposed). */
function weightsOf(layer: tf.layers.Layer): { data: Float32Array; shape: number[] }[] {
  return layer.getWeights().map((t) => ({ data: t.dataSync() as Float32Array, shape: t.shape }));
}

/** y = x * scale + shift, per channel, for an inference-mode BatchNormalization. */
export function batchNormScaleShift(bn: tf.layers.Layer): { scale: Float32Array; shift: Float32Array } {
  const cfg = layerConfig(bn);
  const weights = weightsOf(bn).map((w) => w.data);
  let i = 0;
  const gamma = cfg.scale === false ? undefined : weights[i++]!;
  const beta = cfg.center === false ? undefined : weights[i++]!;
  const mean = weights[i++]!;
  const variance = weights[i++]!;
  const epsilon = (cfg.epsilon as number | undefined) ?? 1e-3;
  const scale = new Float32Array(mean.length);
  const shift = new Float32Array(mean.length);
  for (let c = 0; c < mean.length; c++) {
    scale[c] = (gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + epsilon);
    shift[c] = (beta ? beta[c]! : 0) - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number];
}

function requireChannelsLast(call: LayerCall): void {
  if (call.cfg.dataFormat === 'channelsFirst') throw unsupported(call.layer, 'dataFormat channelsFirst');
}

/**
 * ONNX pads [top, left, bottom, right] for TF padding over a known input size: 'same' puts the
 * odd pixel at the end (bottom/right), as ONNX's SAME_UPPER does.
 */
function spatialPads(call: LayerCall, kernel: [number, number], strides: [number, number], dilations: [number, number]): number[] {
  const padding = call.cfg.padding;
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw unsupported(call.layer, `padding '${String(padding)}'`);
  const sizes = [call.inputShape[1], call.inputShape[2]];
  const before: number[] = [];
  const after: number[] = [];
  for (let d = 0; d < 2; d++) {
    const size = sizes[d];
    if (size == null) throw unsupported(call.layer, "'same' padding on an input of unknown size");
    const out = Math.ceil(size / strides[d]!);
    const total = Math.max((out - 1) * strides[d]! + (kernel[d]! - 1) * dilations[d]! + 1 - size, 0);
    before.push(Math.floor(total / 2));
    after.push(total - Math.floor(total / 2));
  }
  return [...before, ...after];
}

/** The activations a Keras `activation` string names. */
export function applyActivation(g: ExportGraph, v: Value, activation: unknown, layer: tf.layers.Layer): Value {
  const base = `${layer.name}_${String(activation)}`;
  const same = (name: string): Value => ({ ...v, name });
  switch (activation ?? 'linear') {
    case 'linear':
      return v;
    case 'relu':
      return same(g.node('Relu', [v.name], base));
    case 'relu6':
      return same(g.node('Clip', [v.name, g.scalar(0), g.scalar(6)], base));
    case 'sigmoid':
      return same(g.node('Sigmoid', [v.name], base));
    case 'tanh':
      return same(g.node('Tanh', [v.name], base));
    case 'elu':
      return same(g.node('Elu', [v.name], base, { alpha: float(1) }));
    case 'softplus':
      return same(g.node('Softplus', [v.name], base));
    case 'softmax': {
      const k = g.keras(v);
      return { ...k, name: g.node('Softmax', [k.name], base, { axis: int(-1) }) };
    }
    default:
      throw unsupported(layer, `activation '${String(activation)}'`);
  }
}

interface ConvGeometry {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  pads: number[];
}

function convGeometry(call: LayerCall): ConvGeometry {
  requireChannelsLast(call);
  const kernel = pair(call.cfg.kernelSize);
  const strides = pair(call.cfg.strides ?? 1);
  const dilations = pair(call.cfg.dilationRate ?? 1);
  if ((strides[0] > 1 || strides[1] > 1) && (dilations[0] > 1 || dilations[1] > 1)) throw unsupported(call.layer, 'strides and dilation together');
  return { kernel, strides, dilations, pads: spatialPads(call, kernel, strides, dilations) };
}

/**
 * One ONNX Conv over NCHW `x`. `weight` is OIHW ([out, in/group, kh, kw]); a following
 * BatchNormalization is folded in: W' = W * s per output channel, b' = b * s + shift.
 */
function convNode(
  g: ExportGraph,
  x: Value,
  name: string,
  weight: { data: Float32Array; dims: [number, number, number, number] },
  bias: Float32Array | undefined,
  geometry: Omit<ConvGeometry, 'pads'> & { pads: number[] },
  group: number,
  batchNorm?: tf.layers.Layer,
): Value {
  const [out, , kh, kw] = weight.dims;
  let w = weight.data;
  let b = bias;
  if (batchNorm) {
    const { scale, shift } = batchNormScaleShift(batchNorm);
    const per = w.length / out;
    w = w.map((v, i) => v * scale[Math.floor(i / per)]!);
    b = shift.map((s, o) => s + (bias ? bias[o]! * scale[o]! : 0));
  }
  const inputs = [x.name, g.floats(`${name}_W`, w, weight.dims)];
  if (b) inputs.push(g.floats(`${name}_B`, b, [out]));
  const y = g.node('Conv', inputs, name, {
    kernel_shape: ints([kh, kw]),
    strides: ints(geometry.strides),
    dilations: ints(geometry.dilations),
    pads: ints(geometry.pads),
    group: int(group),
  });
  return { name: y, rank: 4, layout: 'nchw' };
}

/** HWIO (tfjs Conv2D kernel) to OIHW. */
function hwioToOihw(data: Float32Array, [kh, kw, ci, co]: number[]): { data: Float32Array; dims: [number, number, number, number] } {
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let i = 0; i < ci!; i++)
        for (let o = 0; o < co!; o++) out[((o * ci! + i) * kh! + y) * kw! + x] = data[((y * kw! + x) * ci! + i) * co! + o]!;
  return { data: out, dims: [co!, ci!, kh!, kw!] };
}

/**
 * A depthwise kernel [kh, kw, channels, multiplier] as a grouped conv weight [channels*multiplier, 1, kh, kw]:
 * both number output channel c*multiplier + m.
 */
function depthwiseToGrouped(data: Float32Array, [kh, kw, ci, m]: number[]): { data: Float32Array; dims: [number, number, number, number] } {
  const converted = hwioToOihw(data, [kh!, kw!, 1, ci! * m!]);
  return { data: converted.data, dims: [ci! * m!, 1, kh!, kw!] };
}

const conv2d: Converter = (g, call) => {
  const geometry = convGeometry(call);
  const [kernel, bias] = weightsOf(call.layer);
  const y = convNode(g, g.nchw(call.inputs[0]!), call.layer.name, hwioToOihw(kernel!.data, kernel!.shape), bias?.data, geometry, 1, call.batchNorm);
  return applyActivation(g, y, call.cfg.activation, call.layer);
};

const depthwiseConv2d: Converter = (g, call) => {
  const geometry = convGeometry(call);
  const [kernel, bias] = weightsOf(call.layer);
  const channels = kernel!.shape[2]!;
  const y = convNode(g, g.nchw(call.inputs[0]!), call.layer.name, depthwiseToGrouped(kernel!.data, kernel!.shape), bias?.data, geometry, channels, call.batchNorm);
  return applyActivation(g, y, call.cfg.activation, call.layer);
};

/** Depthwise then pointwise; a following BatchNormalization folds into the pointwise conv. */
const separableConv2d: Converter = (g, call) => {
  const geometry = convGeometry(call);
  const [depthwise, pointwise, bias] = weightsOf(call.layer);
  const channels = depthwise!.shape[2]!;
  const dw = convNode(g, g.nchw(call.inputs[0]!), `${call.layer.name}_depthwise`, depthwiseToGrouped(depthwise!.data, depthwise!.shape), undefined, geometry, channels);
  const unit = { kernel: [1, 1] as [number, number], strides: [1, 1] as [number, number], dilations: [1, 1] as [number, number], pads: [0, 0, 0, 0] };
  const y = convNode(g, dw, call.layer.name, hwioToOihw(pointwise!.data, pointwise!.shape), bias?.data, unit, 1, call.batchNorm);
  return applyActivation(g, y, call.cfg.activation, call.layer);
};

/** A BatchNormalization that follows no conv: one multiply and one add per channel. */
const batchNormalization: Converter = (g, call) => {
  const x = call.inputs[0]!;
  const axis = call.cfg.axis as number;
  if (axis !== -1 && axis !== x.rank - 1) throw unsupported(call.layer, `axis ${axis} (only the channel axis, -1)`);
  const { scale, shift } = batchNormScaleShift(call.layer);
  const dims = x.layout === 'nchw' ? [scale.length, 1, 1] : [scale.length];
  const name = call.layer.name;
  const scaled = g.node('Mul', [x.name, g.floats(`${name}_scale`, scale, dims)], `${name}_mul`);
  return { ...x, name: g.node('Add', [scaled, g.floats(`${name}_shift`, shift, dims)], name) };
};

const activation: Converter = (g, call) => applyActivation(g, call.inputs[0]!, call.cfg.activation, call.layer);

/** ReLU(maxValue): Relu, or Clip(0, maxValue). */
const relu: Converter = (g, call) => {
  const { maxValue, negativeSlope, threshold } = call.cfg as { maxValue?: number | null; negativeSlope?: number; threshold?: number };
  if (negativeSlope) throw unsupported(call.layer, `negativeSlope ${negativeSlope}`);
  if (threshold) throw unsupported(call.layer, `threshold ${threshold}`);
  const x = call.inputs[0]!;
  const name = call.layer.name;
  if (maxValue == null) return { ...x, name: g.node('Relu', [x.name], name) };
  return { ...x, name: g.node('Clip', [x.name, g.scalar(0), g.scalar(maxValue)], name) };
};

const leakyRelu: Converter = (g, call) => {
  const x = call.inputs[0]!;
  return { ...x, name: g.node('LeakyRelu', [x.name], call.layer.name, { alpha: float((call.cfg.alpha as number | undefined) ?? 0.3) }) };
};

const softmax: Converter = (g, call) => {
  if (call.cfg.axis !== undefined && call.cfg.axis !== -1) throw unsupported(call.layer, `axis ${String(call.cfg.axis)}`);
  return applyActivation(g, call.inputs[0]!, 'softmax', call.layer);
};

function pooling(op: 'MaxPool' | 'AveragePool'): Converter {
  return (g, call) => {
    requireChannelsLast(call);
    const kernel = pair(call.cfg.poolSize);
    const strides = pair(call.cfg.strides ?? kernel);
    const pads = spatialPads(call, kernel, strides, [1, 1]);
    // TF's padded average counts only real pixels: ONNX count_include_pad=0 (the default).
    const y = g.node(op, [g.nchw(call.inputs[0]!).name], call.layer.name, { kernel_shape: ints(kernel), strides: ints(strides), pads: ints(pads) });
    return { name: y, rank: 4, layout: 'nchw' };
  };
}

/** Global pooling to [N, C] (Keras drops the pooled dimensions). */
function globalPooling(op: 'GlobalAveragePool' | 'GlobalMaxPool'): Converter {
  return (g, call) => {
    requireChannelsLast(call);
    if (call.cfg.keepDims) throw unsupported(call.layer, 'keepDims');
    const pooled = g.node(op, [g.nchw(call.inputs[0]!).name], `${call.layer.name}_pool`);
    return { name: g.node('Flatten', [pooled], call.layer.name, { axis: int(1) }), rank: 2, layout: 'keras' };
  };
}

const zeroPadding2d: Converter = (g, call) => {
  requireChannelsLast(call);
  const [[top, bottom], [left, right]] = call.cfg.padding as [[number, number], [number, number]];
  const pads = g.int64s(`${call.layer.name}_pads`, [0, 0, top, left, 0, 0, bottom, right]);
  return { name: g.node('Pad', [g.nchw(call.inputs[0]!).name, pads], call.layer.name), rank: 4, layout: 'nchw' };
};

/** Elementwise merges: every input brought to the first one's layout. */
function merge(op: 'Add' | 'Mul' | 'Max' | 'Min'): Converter {
  return (g, call) => {
    const first = call.inputs[0]!;
    const same = call.inputs.map((v) => (first.layout === 'nchw' ? g.nchw(v) : g.keras(v)));
    let acc = same[0]!.name;
    for (let i = 1; i < same.length; i++) acc = g.node(op, [acc, same[i]!.name], i === same.length - 1 ? call.layer.name : `${call.layer.name}_${i}`);
    return { ...first, name: acc };
  };
}

const concatenate: Converter = (g, call) => {
  const axis = call.cfg.axis as number;
  const rank = call.inputs[0]!.rank;
  if (axis !== -1 && axis !== rank - 1) throw unsupported(call.layer, `axis ${axis} (only the last axis)`);
  const nchw = rank === 4;
  const inputs = call.inputs.map((v) => (nchw ? g.nchw(v) : g.keras(v)).name);
  return { name: g.node('Concat', inputs, call.layer.name, { axis: int(nchw ? 1 : -1) }), rank, layout: nchw ? 'nchw' : 'keras' };
};

/** Keras flattens in channels-last order, so the NCHW value goes back to NHWC first. */
const flatten: Converter = (g, call) => {
  const x = g.keras(call.inputs[0]!);
  return { name: g.node('Flatten', [x.name], call.layer.name, { axis: int(1) }), rank: 2, layout: 'keras' };
};

const reshape: Converter = (g, call) => {
  const x = g.keras(call.inputs[0]!);
  const target = call.cfg.targetShape as number[];
  const shape = g.int64s(`${call.layer.name}_shape`, [-1, ...target]);
  return { name: g.node('Reshape', [x.name, shape], call.layer.name), rank: target.length + 1, layout: 'keras' };
};

/** Dense on the last axis: Gemm for [N, in], MatMul + Add for higher ranks (as Keras does). */
const dense: Converter = (g, call) => {
  const x = g.keras(call.inputs[0]!);
  const [kernel, bias] = weightsOf(call.layer);
  const name = call.layer.name;
  const w = g.floats(`${name}_W`, kernel!.data, kernel!.shape);
  let y: string;
  if (x.rank === 2) {
    y = g.node('Gemm', bias ? [x.name, w, g.floats(`${name}_B`, bias.data, bias.shape)] : [x.name, w], name);
  } else {
    y = g.node('MatMul', [x.name, w], bias ? `${name}_matmul` : name);
    if (bias) y = g.node('Add', [y, g.floats(`${name}_B`, bias.data, bias.shape)], name);
  }
  return applyActivation(g, { name: y, rank: x.rank, layout: 'keras' }, call.cfg.activation, call.layer);
};

/**
 * UpSampling2D by whole factors, as tfjs runs it: resizeBilinear / resizeNearestNeighbor without
 * aligned corners or half-pixel centres, i.e. source = destination / factor ('asymmetric'), and
 * nearest rounds down.
 */
const upSampling2d: Converter = (g, call) => {
  requireChannelsLast(call);
  const [sh, sw] = pair(call.cfg.size);
  const linear = call.cfg.interpolation === 'bilinear';
  const scales = g.floats(`${call.layer.name}_scales`, Float32Array.from([1, 1, sh, sw]), [4]);
  const attributes = { mode: { string: linear ? 'linear' : 'nearest' }, coordinate_transformation_mode: { string: 'asymmetric' }, ...(linear ? {} : { nearest_mode: { string: 'floor' } }) };
  return { name: g.node('Resize', [g.nchw(call.inputs[0]!).name, '', scales], call.layer.name, attributes), rank: 4, layout: 'nchw' };
};

/** Inference ignores dropout. */
const identity: Converter = (_g, call) => call.inputs[0]!;

export const CONVERTERS: Record<string, Converter> = {
  Conv2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  SeparableConv2D: separableConv2d,
  BatchNormalization: batchNormalization,
  Activation: activation,
  ReLU: relu,
  LeakyReLU: leakyRelu,
  Softmax: softmax,
  MaxPooling2D: pooling('MaxPool'),
  AveragePooling2D: pooling('AveragePool'),
  GlobalAveragePooling2D: globalPooling('GlobalAveragePool'),
  GlobalMaxPooling2D: globalPooling('GlobalMaxPool'),
  ZeroPadding2D: zeroPadding2d,
  Add: merge('Add'),
  Multiply: merge('Mul'),
  Maximum: merge('Max'),
  Minimum: merge('Min'),
  Concatenate: concatenate,
  UpSampling2D: upSampling2d,
  Flatten: flatten,
  Reshape: reshape,
  Dense: dense,
  Dropout: identity,
  SpatialDropout1D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
};

/** Conv classes a following BatchNormalization can be folded into. */
export const FOLDS_BATCH_NORM = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D']);
