import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { PreprocessingConfig } from '../src/artifacts/run.js';
import { decodeImage } from '../src/data/images.js';
import { imagesToArray } from '../src/data/preprocess.js';
import { exportOnnx } from '../src/models/onnx/export.js';
import { onnxEngine, type InferenceEngine } from '../src/runtime/engine.js';
import { tfjsEngineForModel } from '../src/models/engine.js';
import { relativeError } from './helpers.js';
import { flowerFiles } from './transfer-fixtures.js';

/** `count` real flower photos at `size` x `size`, preprocessed as `preprocessing` says. */
export async function flowerBatch(count: number, size: number, preprocessing: PreprocessingConfig): Promise<Float32Array> {
  const files = flowerFiles('test', Math.ceil(count / 5)).slice(0, count);
  const images = await Promise.all(files.map(({ file }) => fs.readFile(file).then((b) => decodeImage(b, { size: [size, size], channels: 3 }))));
  return imagesToArray(images, preprocessing).data;
}

/** Deterministic values in [-1, 1] for models without real inputs. */
export function wave(length: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011));
}

async function runAndDispose(engine: InferenceEngine, x: Float32Array, batch: number): Promise<Float32Array> {
  try {
    return await engine.run(x, batch);
  } finally {
    await engine.dispose();
  }
}

/** Normwise relative error between ONNX Runtime on the exported model and tfjs on the model itself. */
export async function onnxVsTfjs(model: tf.LayersModel, x: Float32Array, batch: number): Promise<number> {
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const onnx = await runAndDispose(await onnxEngine(exportOnnx(model), inputShape), x, batch);
  const reference = await runAndDispose(await tfjsEngineForModel(model), x, batch);
  return relativeError(onnx, reference);
}

export async function writeOnnx(model: tf.LayersModel, dir: string, name: string, preprocessing?: PreprocessingConfig): Promise<string> {
  const file = path.join(dir, `${name}.onnx`);
  await fs.writeFile(file, exportOnnx(model, { preprocessing }));
  return file;
}
