import tf from '../runtime/tf.cjs';
import { checkInputShape, SeededGlorot } from './layers.js';
import type { BackboneSpec, BuildOptions } from './types.js';

/**
 * VGG16 (Simonyan & Zisserman 2014), layer for layer as keras.applications.VGG16 builds it:
 * five blocks of 3x3 'same' ReLU convolutions, each closed by a 2x2 max pool.
 */

/** Filters of each conv in blocks 1..5. */
const BLOCKS: readonly number[][] = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]];

function buildVgg16(opts: BuildOptions): tf.LayersModel {
  const shape = checkInputShape(vgg16, opts);
  const init = new SeededGlorot(opts.seed);
  const input = tf.input({ shape, name: 'input_1' });
  let x: tf.SymbolicTensor = input;
  BLOCKS.forEach((convs, b) => {
    convs.forEach((filters, c) => {
      x = tf.layers
        .conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init.next(), name: `block${b + 1}_conv${c + 1}` })
        .apply(x) as tf.SymbolicTensor;
    });
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  if (opts.includeTop) {
    x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
    for (const name of ['fc1', 'fc2']) {
      x = tf.layers.dense({ units: 4096, activation: 'relu', kernelInitializer: init.next(), name }).apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers
      .dense({ units: opts.classes ?? 1000, activation: 'softmax', kernelInitializer: init.next(), name: 'predictions' })
      .apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: x, name: 'vgg16' });
}

export const vgg16: BackboneSpec = {
  name: 'vgg16',
  description: 'VGG16 (keras.applications.VGG16), 13 conv layers, caffe preprocessing',
  // keras.applications.vgg16.preprocess_input, mode "caffe": RGB -> BGR, minus the ImageNet BGR mean, no scaling.
  preprocessing: { mode: 'caffe', mean: [103.939, 116.779, 123.68], bgr: true },
  defaultInputShape: [150, 150, 3],
  minInputSize: 32,
  topInputSize: 224,
  featureLayer: 'block5_pool',
  transferScales: '1',
  weights: {},
  build: buildVgg16,
};
