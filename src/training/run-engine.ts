import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { RUN_FILES, type ExportRecord, type PreprocessingConfig, type RunConfig } from '../artifacts/run.js';
import { chooseEngine, engineForModel, onnxEngine, tfjsEngine, type InferenceEngine } from '../runtime/engine.js';
import { exists } from '../util/atomic.js';

/** A saved run ready for inference: the engine, and the preprocessing its input still needs. */
export interface RunInference {
  engine: InferenceEngine;
  /** What to apply to raw pixels before `engine.run` ('none' when the graph does it itself). */
  preprocessing: PreprocessingConfig;
}

/** The export record of the run's own model.onnx, if `tl export` wrote one. */
export function runOnnxRecord(config: RunConfig): ExportRecord | undefined {
  return config.exports?.find((e) => e.format === 'onnx' && e.file === RUN_FILES.onnx);
}

/**
 * How to run a saved run: its model.onnx on ONNX Runtime when present, else its layers model
 * exported in memory; tfjs when that engine is chosen.
 */
export async function runInference(run: { dir: string; config: RunConfig; model: tf.LayersModel }): Promise<RunInference> {
  const { config, model } = run;
  if ((await chooseEngine()) === 'tfjs') return { engine: await tfjsEngine(model), preprocessing: config.preprocessing };
  const onnxFile = path.join(run.dir, RUN_FILES.onnx);
  if (await exists(onnxFile)) {
    const baked = runOnnxRecord(config)?.withPreprocessing === true;
    return { engine: await onnxEngine(onnxFile, config.inputShape), preprocessing: baked ? { mode: 'none' } : config.preprocessing };
  }
  return { engine: await engineForModel(model), preprocessing: config.preprocessing };
}
