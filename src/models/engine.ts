import type * as tf from '@tensorflow/tfjs';
import { chooseEngine, onnxEngine, tfjsEngine, type InferenceEngine } from '../runtime/engine.js';
import { compileInference } from './fused.js';
import { exportOnnx } from './onnx/export.js';

function inputShapeOf(model: tf.LayersModel): number[] {
  return model.inputs[0]!.shape.slice(1) as number[];
}

/** tfjs running `model` through its fused inference plan (conv + BatchNorm + activation as one kernel). */
export function tfjsEngineForModel(model: tf.LayersModel): Promise<InferenceEngine> {
  return tfjsEngine(compileInference(model), inputShapeOf(model));
}

/** The chosen engine for an in-memory layers model (exported to ONNX on the fly for onnxruntime). */
export async function engineForModel(model: tf.LayersModel): Promise<InferenceEngine> {
  if ((await chooseEngine()) === 'tfjs') return tfjsEngineForModel(model);
  return onnxEngine(exportOnnx(model), inputShapeOf(model));
}
