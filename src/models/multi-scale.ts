import tf from '../runtime/tf.cjs';
import { TlError } from '../util/errors.js';
import type { ValueType } from '../util/options.js';
import { layerGraph } from './fused.js';

/**
 * Multi-scale pooling of a frozen base: the same image seen at several sizes, each view's feature
 * map pooled to a vector, the vectors concatenated.
 *
 *   input [S, S, 3] -> base -> GlobalAveragePooling2D ------------------------------\
 *   input -> UpSampling2D(k, bilinear) -> base copy (its own names) -> GAP ----------- Concatenate -> [C * n]
 *
 * Why: the ImageNet weights were trained on objects about 224 px across; a 150 px image seen
 * only at 150 leaves the deeper layers' receptive fields mostly on background; seen at 300 too, the
 * pooled features carry both. The README has the clothing-10 measurements. The images stay
 * 150 px; the upscaling is bilinear, inside the model, so `tl predict` and ONNX exports do it too.
 * Scales are whole numbers because UpSampling2D is the stock layer that upscales (tfjs's Resizing
 * layer reports a rank-3 output shape for a batch, so a model holding it does not load again).
 *
 * Each further scale gets its own copy of the base's layers (prefix `scale2_`, ...) holding the
 * same weights, so every layer is called once and the fused inference plan, the ONNX exporter and
 * the fine-tuning patches see an ordinary single-path-per-layer graph. Fine-tuning then trains the
 * copies separately; the saved model holds the base's weights once per scale.
 */

/** The scale of the base itself; listed first in every scale list. */
const BASE_SCALE = 1;

/** The layer-name prefix of the base copy that sees scale number `index` (0 is the base itself). */
export function scalePrefix(index: number): string {
  return index === 0 ? '' : `scale${index + 1}_`;
}

/** A new layer of `layer`'s class and config under another name (unbuilt, no weights yet). */
function renamedCopy(layer: tf.layers.Layer, name: string): tf.layers.Layer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[layer.getClassName()];
  if (!entry) throw new TlError(`layer ${layer.name} (${layer.getClassName()}) cannot be copied for multi-scale features: its class is not registered`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, { ...layer.getConfig(), name } as tf.serialization.ConfigDict) as tf.layers.Layer;
}

/** `base`'s layers again, under `prefix` + their names, applied to `input`, with the same weights and trainability. */
function copyOfBase(base: tf.LayersModel, input: tf.SymbolicTensor, prefix: string): tf.SymbolicTensor {
  const values = new Map<number, tf.SymbolicTensor>([[base.inputs[0]!.id, input]]);
  for (const { layer, node } of layerGraph(base, 'multi-scale features').layerNodes) {
    const copy = renamedCopy(layer, prefix + layer.name);
    const inputs = node.inputTensors.map((t) => values.get(t.id)!);
    const output = copy.apply(inputs.length === 1 ? inputs[0]! : inputs) as tf.SymbolicTensor;
    copy.setWeights(layer.getWeights());
    copy.trainable = layer.trainable;
    values.set(node.outputTensors[0]!.id, output);
  }
  return values.get(base.outputs[0]!.id)!;
}

/** The largest upscaling: 4x a 150 px image is 600 px, already 16x the work of the base alone. */
export const MAX_SCALE = 4;

const GLUE = /^(scale\d+_(upsample|pool)|scales_concat)$/;
const COPY = /^scale(\d+)_/;

/**
 * The layers of each copy of the base among `layers` (a model's, in its order), without the
 * upscaling, pooling and concatenation around them: one list per scale, or one list for a model
 * without multi-scale pooling. Fine-tuning's "the last N layers" means N of each copy.
 */
export function baseCopies(layers: readonly tf.layers.Layer[]): tf.layers.Layer[][] {
  const copies = new Map<string, tf.layers.Layer[]>();
  for (const layer of layers) {
    if (GLUE.test(layer.name)) continue;
    const copy = COPY.exec(layer.name)?.[1] ?? '1';
    copies.set(copy, [...(copies.get(copy) ?? []), layer]);
  }
  return [...copies.values()];
}

/** A scale list such as "1,2": whole numbers from 1 to MAX_SCALE, 1 first, none repeated; undefined if not. */
export function parseScales(text: string): number[] | undefined {
  const scales = text.split(',').map((s) => Number(s.trim()));
  const valid = scales[0] === BASE_SCALE && scales.every((s) => Number.isInteger(s) && s >= 1 && s <= MAX_SCALE) && new Set(scales).size === scales.length;
  return valid ? scales : undefined;
}

export const scalesType: ValueType<string> = {
  expected: `whole numbers from 1 to ${MAX_SCALE}, comma-separated, 1 first (e.g. 1,2)`,
  placeholder: '<list>',
  fromText: (t) => (parseScales(t) ? t : undefined),
  accepts: (v) => typeof v === 'string' && parseScales(v) !== undefined,
};

/**
 * The multi-scale feature model of `base` (input [S, S, C], output its feature map): output
 * [C_features * scales.length], one pooled vector per scale. With the single scale 1 it is `base`
 * itself (the feature map; the head pools it).
 */
export function multiScaleFeatures(base: tf.LayersModel, scales: readonly number[]): tf.LayersModel {
  if (scales.length === 1 && scales[0] === BASE_SCALE) return base;
  const input = base.inputs[0]!;
  const pooled = scales.map((scale, i) => {
    const upscaled = () => tf.layers.upSampling2d({ size: [scale, scale], interpolation: 'bilinear', name: `${scalePrefix(i)}upsample` }).apply(input) as tf.SymbolicTensor;
    const seen = i === 0 ? base.outputs[0]! : copyOfBase(base, upscaled(), scalePrefix(i));
    return tf.layers.globalAveragePooling2d({ name: `${scalePrefix(i) || 'scale1_'}pool` }).apply(seen) as tf.SymbolicTensor;
  });
  const output = tf.layers.concatenate({ axis: -1, name: 'scales_concat' }).apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: base.inputs, outputs: output, name: `${base.name}_multiscale` });
}
