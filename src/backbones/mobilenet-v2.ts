import tf from '../runtime/tf.cjs';
import { batchNorm, checkInputShape, relu6, resolveWidth, SCALE_TO_PLUS_MINUS_ONE, SeededGlorot } from './layers.js';
import type { BackboneSpec, BuildOptions } from './types.js';

/**
 * MobileNetV2 (Sandler et al. 2018), layer for layer as keras.applications.MobileNetV2 builds it:
 * Conv1 (3x3, stride 2, 'same'), 17 inverted residual blocks (expanded_conv_, block_1_ ...
 * block_16_), Conv_1 (1x1) and out_relu. Strided depthwise convs are preceded by `block_N_pad`,
 * Keras' correct_pad of the map they see, then 'valid'. Older Keras also padded Conv1
 * (`Conv1_pad`, as in Teachable Machine exports); weightless, so such files load all the same.
 */

type T = tf.SymbolicTensor;

/** [output channels at alpha 1, stride, expansion] of blocks 0..16. */
const BLOCKS: readonly [number, number, number][] = [
  [16, 1, 1],
  [24, 2, 6], [24, 1, 6],
  [32, 2, 6], [32, 1, 6], [32, 1, 6],
  [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6],
  [96, 1, 6], [96, 1, 6], [96, 1, 6],
  [160, 2, 6], [160, 1, 6], [160, 1, 6],
  [320, 1, 6],
];

const ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;

/** Keras MobileNetV2 BatchNorms use momentum 0.999 (epsilon 1e-3, the default). */
const BN_MOMENTUM = 0.999;

/** Channel counts rounded to a multiple of 8, never more than 10% down (Keras' _make_divisible). */
function makeDivisible(value: number, divisor = 8): number {
  const rounded = Math.max(divisor, Math.floor(Math.trunc(value + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * value ? rounded + divisor : rounded;
}

function blockOutputChannels(filters: number, alpha: number): number {
  return makeDivisible(Math.trunc(filters * alpha));
}

/** Conv_1's width: 1280, widened (never narrowed) with alpha, as the paper says. */
function lastConvChannels(alpha: number): number {
  return alpha > 1 ? makeDivisible(1280 * alpha) : 1280;
}

/** Keras' correct_pad for a 3x3 kernel: (1,1) on an odd side, (0,1) on an even one, i.e. what 'same' would do. */
function correctPad(x: T): [[number, number], [number, number]] {
  const [, h, w] = x.shape as number[];
  return [[h! % 2, 1], [w! % 2, 1]];
}

class MobileNetV2Builder {
  constructor(
    readonly alpha: number,
    readonly init: SeededGlorot,
  ) {}

  apply(layer: tf.layers.Layer, x: T | T[]): T {
    return layer.apply(x) as T;
  }

  /** 1x1 (or 3x3 for Conv1) convolution without bias, then BatchNorm named `bnName`. */
  convBn(x: T, filters: number, name: string, bnName: string, kernelSize = 1, strides = 1): T {
    const conv = tf.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: this.init.next(), name });
    return this.apply(batchNorm(bnName, BN_MOMENTUM), this.apply(conv, x));
  }

  depthwiseBn(x: T, stride: number, prefix: string): T {
    let y = x;
    if (stride === 2) y = this.apply(tf.layers.zeroPadding2d({ padding: correctPad(y), name: `${prefix}pad` }), y);
    const conv = tf.layers.depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      padding: stride === 1 ? 'same' : 'valid',
      useBias: false,
      depthwiseInitializer: this.init.next(),
      name: `${prefix}depthwise`,
    });
    return this.apply(batchNorm(`${prefix}depthwise_BN`, BN_MOMENTUM), this.apply(conv, y));
  }

  /** Expand (1x1, except block 0), depthwise 3x3, linear 1x1 projection; added to the input where shapes allow. */
  invertedResidual(x: T, [filters, stride, expansion]: readonly [number, number, number], id: number): T {
    const inChannels = x.shape[3]!;
    const outChannels = blockOutputChannels(filters, this.alpha);
    // Keras names block 0 `expanded_conv_`, although it is the one block that does not expand.
    const prefix = id === 0 ? 'expanded_conv_' : `block_${id}_`;
    let y = x;
    if (id > 0) {
      y = this.convBn(y, expansion * inChannels, `${prefix}expand`, `${prefix}expand_BN`);
      y = this.apply(relu6(`${prefix}expand_relu`), y);
    }
    y = this.apply(relu6(`${prefix}depthwise_relu`), this.depthwiseBn(y, stride, prefix));
    y = this.convBn(y, outChannels, `${prefix}project`, `${prefix}project_BN`);
    return inChannels === outChannels && stride === 1 ? this.apply(tf.layers.add({ name: `${prefix}add` }), [x, y]) : y;
  }
}

function buildMobileNetV2(opts: BuildOptions): tf.LayersModel {
  const alpha = resolveWidth(mobilenetv2, opts.alpha)!;
  const shape = checkInputShape(mobilenetv2, opts);
  const b = new MobileNetV2Builder(alpha, new SeededGlorot(opts.seed));
  const input = tf.input({ shape, name: 'input_1' });
  let x = b.apply(relu6('Conv1_relu'), b.convBn(input, makeDivisible(32 * alpha), 'Conv1', 'bn_Conv1', 3, 2));
  BLOCKS.forEach((block, id) => {
    x = b.invertedResidual(x, block, id);
  });
  x = b.apply(relu6('out_relu'), b.convBn(x, lastConvChannels(alpha), 'Conv_1', 'Conv_1_bn'));
  if (opts.includeTop) {
    x = b.apply(tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
    x = b.apply(tf.layers.dense({ units: opts.classes ?? 1000, activation: 'softmax', kernelInitializer: b.init.next(), name: 'predictions' }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: `mobilenetv2_${alpha.toFixed(2)}_${shape[0]}` });
}

export const mobilenetv2: BackboneSpec = {
  name: 'mobilenetv2',
  description: 'MobileNetV2 (keras.applications.MobileNetV2), inverted residuals, width multiplier alpha 0.35/0.5/0.75/1.0/1.3/1.4',
  preprocessing: SCALE_TO_PLUS_MINUS_ONE,
  defaultInputShape: [150, 150, 3],
  minInputSize: 32,
  topInputSize: 224,
  featureLayer: 'out_relu',
  transferScales: '1,2',
  alphas: ALPHAS,
  defaultAlpha: 1.0,
  weights: {},
  build: buildMobileNetV2,
  // Conv1 is 16 wide at both 0.35 and 0.5; Conv_1's input (block 16's output) tells every width apart.
  widthOf: (file) => {
    const channels = file.layers.get('Conv_1')?.get('kernel')?.shape[2];
    return ALPHAS.find((alpha) => blockOutputChannels(BLOCKS.at(-1)![0], alpha) === channels);
  },
};
