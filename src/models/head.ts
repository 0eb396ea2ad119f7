import tf from '../runtime/tf.cjs';

/**
 * The transfer-learning classifier put on a frozen base's feature map:
 * GlobalAveragePooling2D -> Dense(units, ReLU) -> Dense(classes, softmax), as in the Keras
 * transfer-learning guide. It is trained alone on cached features, then joined to the base.
 */
export interface HeadOptions {
  /** [height, width, channels] of the base's feature map, or [features] when they arrive pooled. */
  featureShape: number[];
  classes: number;
  /** Units of the hidden Dense ReLU layer; 0 puts the softmax straight on the pooled features. */
  units?: number;
  /** Dropout rate before the softmax layer (0: none). */
  dropout?: number;
  /** L2 penalty on the Dense kernels (0: none). */
  l2?: number;
  seed?: number;
}

export const HEAD_UNITS = 1024;

/** Layer names in the joined model; `head_` keeps them apart from any backbone's names. */
const NAMES = { pool: 'head_pool', hidden: 'head_dense', dropout: 'head_dropout', output: 'head_predictions' } as const;

/** Whether a layer of a joined model belongs to the head (fine-tuning always trains those). */
export function isHeadLayer(layer: tf.layers.Layer): boolean {
  return Object.values(NAMES).includes(layer.name as (typeof NAMES)[keyof typeof NAMES]);
}

export function buildHead(opts: HeadOptions): tf.LayersModel {
  const seed = opts.seed ?? 1;
  const input = tf.input({ shape: opts.featureShape, name: 'head_input' });
  const units = opts.units ?? HEAD_UNITS;
  const kernelRegularizer = opts.l2 ? tf.regularizers.l2({ l2: opts.l2 }) : undefined;
  // Multi-scale features (models/multi-scale.ts) arrive pooled; a single feature map is pooled here.
  let x = opts.featureShape.length === 1 ? input : (tf.layers.globalAveragePooling2d({ name: NAMES.pool }).apply(input) as tf.SymbolicTensor);
  if (units > 0) {
    x = tf.layers
      .dense({ units, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }), kernelRegularizer, name: NAMES.hidden })
      .apply(x) as tf.SymbolicTensor;
  }
  if (opts.dropout) x = tf.layers.dropout({ rate: opts.dropout, name: NAMES.dropout }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({
      units: opts.classes,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      kernelRegularizer,
      name: NAMES.output,
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'head' });
}

/**
 * One flat layers model: the base's layers followed by the head's (sharing their weights), so
 * stock `tf.loadLayersModel` reads the saved run without knowing about heads. The base layers
 * keep `trainable = false` in the saved topology; fine-tuning turns them back on.
 */
export function joinBaseAndHead(base: tf.LayersModel, head: tf.LayersModel, name: string): tf.LayersModel {
  for (const layer of base.layers) layer.trainable = false;
  let x = base.outputs[0]!;
  for (const layer of head.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    x = layer.apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: base.inputs, outputs: x, name });
}

/**
 * Fold a per-channel standardization of the pooled features, (p - mean) / std, into the head's
 * first Dense layer, so the trained head takes raw features: W'[c] = W[c] / std[c] and
 * b' = b - sum_c mean[c] / std[c] * W[c]. The model computes exactly what it computed on
 * standardized input, with no extra layer to save or export.
 */
export function foldStandardization(head: tf.LayersModel, mean: Float32Array, std: Float32Array): void {
  const dense = head.layers.find((l) => l.name === NAMES.hidden) ?? head.getLayer(NAMES.output);
  const [kernel, bias] = dense.getWeights() as [tf.Tensor2D, tf.Tensor1D];
  const folded = tf.tidy(() => {
    const scale = tf.tensor2d(Float32Array.from(std, (s) => 1 / s), [std.length, 1]);
    const w = tf.mul(kernel, scale) as tf.Tensor2D;
    const shift = tf.matMul(tf.tensor2d(mean, [1, mean.length]), w).reshape([-1]);
    return [w, tf.sub(bias, shift)];
  });
  dense.setWeights(folded);
  tf.dispose(folded);
}
