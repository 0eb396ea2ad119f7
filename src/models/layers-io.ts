import tf from '../runtime/tf.cjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileError, TlError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';

type ModelJson = {
  modelTopology: unknown;
  weightsManifest: tf.io.WeightsManifestConfig;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  trainingConfig?: tf.io.TrainingConfig;
  userDefinedMetadata?: { [key: string]: {} };
};

/** Reads model.json (any converter version, with or without "format") and its shards. */
export async function readModelArtifacts(modelJsonPath: string): Promise<tf.io.ModelArtifacts> {
  let json: ModelJson;
  try {
    json = JSON.parse(await fs.readFile(modelJsonPath, 'utf8')) as ModelJson;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'is not valid JSON';
    throw fileError(modelJsonPath, why, 'point at the model.json of a TensorFlow.js layers model');
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw fileError(modelJsonPath, 'has no modelTopology/weightsManifest', 'this is not a TensorFlow.js layers model.json');
  }
  const dir = path.dirname(modelJsonPath);
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) {
      const file = path.join(dir, shard);
      try {
        buffers.push(await fs.readFile(file));
      } catch {
        throw fileError(file, 'weight shard listed in model.json is missing', 'copy every shard beside model.json');
      }
    }
  }
  const all = Buffer.concat(buffers);
  const expected = weightSpecs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * bytesPerElement(w), 0);
  if (all.byteLength < expected) {
    throw fileError(dir, `weight shards hold ${all.byteLength} bytes, model.json needs ${expected}`, 'the shards are truncated; fetch them again');
  }
  return {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? undefined,
    trainingConfig: json.trainingConfig,
    userDefinedMetadata: json.userDefinedMetadata,
  };
}

function bytesPerElement(w: tf.io.WeightsManifestEntry): number {
  if (w.quantization) return w.quantization.dtype === 'uint8' ? 1 : w.quantization.dtype === 'float16' ? 2 : 2;
  return w.dtype === 'bool' ? 1 : 4;
}

/** An IOHandler for `tf.loadLayersModel` that reads from the local filesystem. */
export function fileLoader(modelJsonPath: string): tf.io.IOHandler {
  return { load: () => readModelArtifacts(modelJsonPath) };
}

/**
 * An IOHandler for `model.save` writing model.json + one weights.bin, each atomically.
 * The output is what stock `tf.loadLayersModel` (tfjs-node's file://, or a browser over http) loads.
 */
export function fileSaver(dir: string): tf.io.IOHandler {
  return {
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      const weightData = artifacts.weightData
        ? tf.io.CompositeArrayBuffer.join(artifacts.weightData as ArrayBuffer | ArrayBuffer[])
        : new ArrayBuffer(0);
      await writeFileAtomic(path.join(dir, 'weights.bin'), new Uint8Array(weightData));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeJsonAtomic(path.join(dir, 'model.json'), modelJson);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** The gist of a tfjs loading error: its first line, without tfjs' list of possible causes. */
function loadFailureReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.replace(/\. This may be due to .*$/, '').trim();
}

/**
 * Load a layers model; a model.json tfjs cannot build (an unknown layer class, a weight whose
 * manifest shape or name no longer fits its layer) fails with one line naming the file.
 */
export async function loadLayersModelFromDir(dirOrModelJson: string): Promise<tf.LayersModel> {
  const modelJson = dirOrModelJson.endsWith('.json') ? dirOrModelJson : path.join(dirOrModelJson, 'model.json');
  try {
    return await tf.loadLayersModel(fileLoader(modelJson));
  } catch (err) {
    if (err instanceof TlError) throw err;
    throw fileError(modelJson, `cannot be loaded as a TensorFlow.js layers model (${loadFailureReason(err)})`, 'the model files are damaged; restore them or train again');
  }
}

export async function saveLayersModelToDir(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fileSaver(dir));
}
