import tf from '../runtime/tf.cjs';
import { batchNorm, checkInputShape, SCALE_TO_PLUS_MINUS_ONE, SeededGlorot } from './layers.js';
import type { BackboneSpec, BuildOptions } from './types.js';

/**
 * Xception (Chollet 2017), layer for layer as keras.applications.Xception builds it: entry flow
 * (blocks 1-4), middle flow (blocks 5-12, residual), exit flow (blocks 13-14).
 *
 * Keras leaves the four residual 1x1 convolutions and their BatchNorms unnamed. They are named
 * here as a fresh tf.keras session names them (conv2d, conv2d_1, ...; batch_normalization, ...);
 * weight files that number them differently (Keras 2.0: conv2d_1..conv2d_4) still load, because
 * the spec lists them in `autoNamedLayerBases` and the loader pairs them by order.
 */

type T = tf.SymbolicTensor;

class XceptionBuilder {
  private residuals = 0;
  private adds = 0;

  constructor(readonly init: SeededGlorot) {}

  apply(layer: tf.layers.Layer, x: T | T[]): T {
    return layer.apply(x) as T;
  }

  relu(x: T, name: string): T {
    return this.apply(tf.layers.activation({ activation: 'relu', name }), x);
  }

  /** SeparableConv2D 3x3 'same' without bias, then BatchNorm: the `<name>` / `<name>_bn` pair. */
  sepconvBn(x: T, filters: number, name: string): T {
    const conv = tf.layers.separableConv2d({
      filters,
      kernelSize: 3,
      padding: 'same',
      useBias: false,
      depthwiseInitializer: this.init.next(),
      pointwiseInitializer: this.init.next(),
      name,
    });
    return this.apply(batchNorm(`${name}_bn`), this.apply(conv, x));
  }

  convBn(x: T, filters: number, kernel: number, strides: number, name: string): T {
    const conv = tf.layers.conv2d({ filters, kernelSize: kernel, strides, useBias: false, kernelInitializer: this.init.next(), name });
    return this.apply(batchNorm(`${name}_bn`), this.apply(conv, x));
  }

  /** The unnamed strided 1x1 conv + BatchNorm shortcut of blocks 2, 3, 4 and 13. */
  shortcut(x: T, filters: number): T {
    const suffix = this.residuals === 0 ? '' : `_${this.residuals}`;
    this.residuals++;
    const conv = tf.layers.conv2d({
      filters,
      kernelSize: 1,
      strides: 2,
      padding: 'same',
      useBias: false,
      kernelInitializer: this.init.next(),
      name: `conv2d${suffix}`,
    });
    return this.apply(batchNorm(`batch_normalization${suffix}`), this.apply(conv, x));
  }

  /** Blocks 2-4 and 13: two separable convs, a strided max pool, plus the 1x1 shortcut. */
  downsamplingBlock(x: T, block: number, filters: [number, number], preActivate: boolean): T {
    const residual = this.shortcut(x, filters[1]);
    const p = `block${block}`;
    let y = preActivate ? this.relu(x, `${p}_sepconv1_act`) : x;
    y = this.sepconvBn(y, filters[0], `${p}_sepconv1`);
    y = this.relu(y, `${p}_sepconv2_act`);
    y = this.sepconvBn(y, filters[1], `${p}_sepconv2`);
    y = this.apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: `${p}_pool` }), y);
    return this.apply(tf.layers.add({ name: this.addName() }), [y, residual]);
  }

  /** Blocks 5-12: three relu + separable conv 728, added to the block's input. */
  middleBlock(x: T, block: number): T {
    const p = `block${block}`;
    let y = x;
    for (let i = 1; i <= 3; i++) y = this.sepconvBn(this.relu(y, `${p}_sepconv${i}_act`), 728, `${p}_sepconv${i}`);
    return this.apply(tf.layers.add({ name: this.addName() }), [y, x]);
  }

  private addName(): string {
    const name = this.adds === 0 ? 'add' : `add_${this.adds}`;
    this.adds++;
    return name;
  }
}

function buildXception(opts: BuildOptions): tf.LayersModel {
  const shape = checkInputShape(xception, opts);
  const b = new XceptionBuilder(new SeededGlorot(opts.seed));
  const input = tf.input({ shape, name: 'input_1' });
  let x = b.relu(b.convBn(input, 32, 3, 2, 'block1_conv1'), 'block1_conv1_act');
  x = b.relu(b.convBn(x, 64, 3, 1, 'block1_conv2'), 'block1_conv2_act');
  // Block 2 starts from an activated tensor, so its first separable conv has no relu before it.
  x = b.downsamplingBlock(x, 2, [128, 128], false);
  x = b.downsamplingBlock(x, 3, [256, 256], true);
  x = b.downsamplingBlock(x, 4, [728, 728], true);
  for (let block = 5; block <= 12; block++) x = b.middleBlock(x, block);
  x = b.downsamplingBlock(x, 13, [728, 1024], true);
  x = b.relu(b.sepconvBn(x, 1536, 'block14_sepconv1'), 'block14_sepconv1_act');
  x = b.relu(b.sepconvBn(x, 2048, 'block14_sepconv2'), 'block14_sepconv2_act');
  if (opts.includeTop) {
    x = b.apply(tf.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
    x = b.apply(tf.layers.dense({ units: opts.classes ?? 1000, activation: 'softmax', kernelInitializer: b.init.next(), name: 'predictions' }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: 'xception' });
}

export const xception: BackboneSpec = {
  name: 'xception',
  description: 'Xception (keras.applications.Xception), depthwise-separable convolutions with residuals',
  preprocessing: SCALE_TO_PLUS_MINUS_ONE,
  defaultInputShape: [150, 150, 3],
  minInputSize: 71,
  topInputSize: 299,
  featureLayer: 'block14_sepconv2_act',
  transferScales: '1',
  autoNamedLayerBases: ['conv2d', 'batch_normalization'],
  weights: {},
  build: buildXception,
};
