import tf from '../runtime/tf.cjs';
import { batchNorm, checkInputShape, relu6, resolveWidth, SCALE_TO_PLUS_MINUS_ONE, SeededGlorot } from './layers.js';
import type { BackboneSpec, BuildOptions } from './types.js';

/**
 * MobileNet v1 (Howard et al. 2017), layer for layer as keras.applications.MobileNet builds it
 * (Keras >= 2.2: strided depthwise convs are preceded by an explicit `conv_pad_N` ZeroPadding2D
 * ((0,1),(0,1)) and use 'valid'). Keras <= 2.1 used 'same' padding and had no conv_pad layers.
 * The two agree on even feature maps but not on odd ones (150 -> 75 -> 37 vs 38), so weights
 * saved by Keras 2.1 are run with the padding they were trained with (`legacyPadding`).
 */

/** Filters of the first convolution at alpha 1. */
const CONV1_FILTERS = 32;

/** [pointwise filters at alpha 1, stride] of depthwise blocks 1..13. */
const BLOCKS: readonly [number, number][] = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];

const ALPHAS = [0.25, 0.5, 0.75, 1.0] as const;

function depthwiseBlock(
  x: tf.SymbolicTensor,
  filters: number,
  stride: number,
  id: number,
  init: SeededGlorot,
  legacyPadding: boolean,
): tf.SymbolicTensor {
  let y = x;
  const explicitPad = stride !== 1 && !legacyPadding;
  if (explicitPad) y = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: `conv_pad_${id}` }).apply(y) as tf.SymbolicTensor;
  y = tf.layers
    .depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      padding: explicitPad ? 'valid' : 'same',
      depthMultiplier: 1,
      useBias: false,
      depthwiseInitializer: init.next(),
      name: `conv_dw_${id}`,
    })
    .apply(y) as tf.SymbolicTensor;
  y = batchNorm(`conv_dw_${id}_bn`).apply(y) as tf.SymbolicTensor;
  y = relu6(`conv_dw_${id}_relu`).apply(y) as tf.SymbolicTensor;
  y = tf.layers
    .conv2d({ filters, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: init.next(), name: `conv_pw_${id}` })
    .apply(y) as tf.SymbolicTensor;
  y = batchNorm(`conv_pw_${id}_bn`).apply(y) as tf.SymbolicTensor;
  return relu6(`conv_pw_${id}_relu`).apply(y) as tf.SymbolicTensor;
}

function classifierTop(x: tf.SymbolicTensor, channels: number, classes: number, init: SeededGlorot): tf.SymbolicTensor {
  // Keras keeps the pooled dims (GlobalAveragePooling2D(keepdims=True)); tfjs has no keepdims,
  // so a Reshape to [1,1,C] stands in for it (as Keras 2.2-2.5 did).
  let y = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as tf.SymbolicTensor;
  y = tf.layers.reshape({ targetShape: [1, 1, channels], name: 'reshape_1' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.dropout({ rate: 1e-3, name: 'dropout' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers
    .conv2d({ filters: classes, kernelSize: 1, padding: 'same', kernelInitializer: init.next(), name: 'conv_preds' })
    .apply(y) as tf.SymbolicTensor;
  y = tf.layers.reshape({ targetShape: [classes], name: 'reshape_2' }).apply(y) as tf.SymbolicTensor;
  return tf.layers.activation({ activation: 'softmax', name: 'predictions' }).apply(y) as tf.SymbolicTensor;
}

function buildMobileNet(opts: BuildOptions): tf.LayersModel {
  const alpha = resolveWidth(mobilenet, opts.alpha)!;
  const shape = checkInputShape(mobilenet, opts);
  const init = new SeededGlorot(opts.seed);
  const input = tf.input({ shape, name: 'input_1' });
  let x = tf.layers
    .conv2d({
      filters: Math.trunc(CONV1_FILTERS * alpha),
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      useBias: false,
      kernelInitializer: init.next(),
      name: 'conv1',
    })
    .apply(input) as tf.SymbolicTensor;
  x = batchNorm('conv1_bn').apply(x) as tf.SymbolicTensor;
  x = relu6('conv1_relu').apply(x) as tf.SymbolicTensor;
  BLOCKS.forEach(([filters, stride], i) => {
    x = depthwiseBlock(x, Math.trunc(filters * alpha), stride, i + 1, init, opts.legacyPadding ?? false);
  });
  if (opts.includeTop) x = classifierTop(x, Math.trunc(1024 * alpha), opts.classes ?? 1000, init);
  const rows = shape[0];
  return tf.model({ inputs: input, outputs: x, name: `mobilenet_${alpha.toFixed(2)}_${rows}` });
}

export const mobilenet: BackboneSpec = {
  name: 'mobilenet',
  description: 'MobileNet v1 (keras.applications.MobileNet), width multiplier alpha 0.25/0.5/0.75/1.0',
  preprocessing: SCALE_TO_PLUS_MINUS_ONE,
  defaultInputShape: [150, 150, 3],
  minInputSize: 32,
  topInputSize: 224,
  featureLayer: 'conv_pw_13_relu',
  transferScales: '1,2',
  alphas: ALPHAS,
  defaultAlpha: 1.0,
  weights: {},
  build: buildMobileNet,
  // conv1 is 3x3x3x(32 * alpha): the width is in the first kernel's shape.
  widthOf: (file) => {
    const filters = file.layers.get('conv1')?.get('kernel')?.shape[3];
    return filters === undefined ? undefined : filters / CONV1_FILTERS;
  },
  // A file that lists its layers but has no conv_pad_* among them was saved by Keras <= 2.1.
  buildOptionsFor: (layerNames) =>
    layerNames?.length && !layerNames.some((n) => n.startsWith('conv_pad_')) ? { legacyPadding: true } : {},
};
