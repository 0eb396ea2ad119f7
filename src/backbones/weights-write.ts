import tf from '../runtime/tf.cjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { saveLayersModelToDir } from '../models/layers-io.js';
import { makeDirs, moveIntoPlace, tempSibling, writeDirAtomic } from '../util/atomic.js';
import { h5 } from './weights-read.js';
import { weightBaseName } from './weights-read.js';

/**
 * Save a model as a TensorFlow.js layers folder (model.json + weights.bin): a complete model
 * that stock `tf.loadLayersModel` reads, and a weights file `loadBackbone` accepts.
 */
export async function writeTfjsWeights(model: tf.LayersModel, dir: string): Promise<void> {
  await writeDirAtomic(dir, (tmp) => saveLayersModelToDir(model, tmp));
}

/** h5py stores Keras' name lists as fixed-length byte strings; h5wasm needs the width. */
function fixedStringType(values: string[]): string {
  return `S${Math.max(1, ...values.map((v) => Buffer.byteLength(v)))}`;
}

/**
 * Save a model's weights as Keras `save_weights` writes an .h5 (the keras.applications layout):
 * root attrs `backend`, `keras_version`, `layer_names` (every layer, in order); one group per
 * layer with attr `weight_names`; datasets at `<layer>/<layer>/<weight>:0`.
 */
export async function writeKerasH5Weights(model: tf.LayersModel, file: string): Promise<void> {
  const h5wasm = await h5();
  await makeDirs(path.dirname(path.resolve(file)));
  const tmp = tempSibling(path.resolve(file));
  const f = new h5wasm.File(tmp, 'w');
  try {
    const layerNames = model.layers.map((l) => l.name);
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('keras_version', '2.1.6');
    f.create_attribute('layer_names', layerNames, null, fixedStringType(layerNames));
    for (const layer of model.layers) {
      const group = f.create_group(layer.name);
      const names = layer.weights.map((w) => `${layer.name}/${weightBaseName(w.originalName)}:0`);
      if (names.length === 0) continue; // Keras readers treat a missing weight_names as "no weights"
      group.create_attribute('weight_names', names, null, fixedStringType(names));
      const inner = group.create_group(layer.name);
      layer.weights.forEach((w) => {
        const values = w.read().dataSync() as Float32Array;
        inner.create_dataset({ name: `${weightBaseName(w.originalName)}:0`, data: values, shape: w.shape as number[], dtype: '<f' });
      });
    }
  } catch (err) {
    f.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  f.close();
  await moveIntoPlace(tmp, file);
}
