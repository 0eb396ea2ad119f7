import tf from '../runtime/tf.cjs';
import { TlError } from '../util/errors.js';
import { weightBaseName, type StoredWeight, type WeightsFile } from './weights-read.js';

function autoNameIndex(name: string, base: string): number | null {
  if (name === base) return 0;
  const m = new RegExp(`^${base}_(\\d+)$`).exec(name);
  return m ? Number(m[1]) : null;
}

function byAutoNameIndex(names: string[], base: string): string[] {
  return names
    .map((n) => [n, autoNameIndex(n, base)] as const)
    .filter((e): e is readonly [string, number] => e[1] !== null)
    .sort((a, b) => a[1] - b[1])
    .map(([n]) => n);
}

/**
 * Model layer name -> file layer name. Names match one to one, except layers Keras leaves
 * unnamed (`conv2d`, `conv2d_1`, ... in one Keras version, `conv2d_1`, `conv2d_2`, ... in
 * another): those are paired by their order among layers of the same base name.
 */
export function layerNameMapping(modelLayers: string[], fileLayers: string[], autoNamedBases: readonly string[] = []): Map<string, string> {
  const mapping = new Map(modelLayers.map((n) => [n, n]));
  for (const base of autoNamedBases) {
    const ours = byAutoNameIndex(modelLayers, base);
    const theirs = byAutoNameIndex(fileLayers, base);
    if (ours.length === theirs.length) ours.forEach((n, i) => mapping.set(n, theirs[i]!));
  }
  return mapping;
}

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.join(',')}]`;
}

export interface WeightsFitOptions {
  autoNamedLayerBases?: readonly string[];
  /** What the file should hold, for the error message: `mobilenet alpha 0.5`. */
  fitsWhat: string;
}

/**
 * The stored values for every weight of `model`, layer by layer; throws one line naming the first
 * weight that is missing or has another shape. Extra layers in the file (a classifier top, a
 * user head) are ignored.
 */
export function matchWeights(model: tf.LayersModel, file: WeightsFile, opts: WeightsFitOptions): { layer: tf.layers.Layer; values: StoredWeight[] }[] {
  const withWeights = model.layers.filter((l) => l.weights.length > 0);
  const mapping = layerNameMapping(withWeights.map((l) => l.name), [...file.layers.keys()], opts.autoNamedLayerBases);
  return withWeights.map((layer) => {
    const stored = file.layers.get(mapping.get(layer.name)!);
    const values = layer.weights.map((w) => {
      const weightName = weightBaseName(w.originalName);
      const found = stored?.get(weightName);
      if (!found || found.shape.join(',') !== w.shape.join(',')) {
        throw new TlError(
          `${file.source}: layer ${layer.name} weight ${weightName} expected shape ${shapeText(w.shape)}, found ` +
            `${found ? shapeText(found.shape) : 'none'}; this file does not hold ${opts.fitsWhat} weights`,
        );
      }
      return found;
    });
    return { layer, values };
  });
}

/**
 * Every weight of `model` must be in `file` with the same shape (see matchWeights). Checks
 * everything before assigning anything, so a mismatch leaves the model untouched.
 */
export function assignWeights(model: tf.LayersModel, file: WeightsFile, opts: WeightsFitOptions): void {
  for (const { layer, values } of matchWeights(model, file, opts)) {
    const tensors = values.map((v) => tf.tensor(v.values, v.shape, 'float32'));
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}
