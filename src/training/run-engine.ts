import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { RUN_FILES, type Evaluation, type ExportRecord, type PreprocessingConfig, type RunConfig } from '../artifacts/run.js';
import { chooseEngine, onnxEngine, type EngineName, type InferenceEngine } from '../runtime/engine.js';
import { engineForModel, tfjsEngineForModel } from '../models/engine.js';
import { exists } from '../util/atomic.js';
import type { BatchSource } from '../data/batch-source.js';
import { evaluateModel, type ScoredSample } from './metrics.js';

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
  if ((await chooseEngine()) === 'tfjs') return { engine: await tfjsEngineForModel(model), preprocessing: config.preprocessing };
  const onnxFile = path.join(run.dir, RUN_FILES.onnx);
  if (await exists(onnxFile)) {
    const baked = runOnnxRecord(config)?.withPreprocessing === true;
    return { engine: await onnxEngine(onnxFile, config.inputShape), preprocessing: baked ? { mode: 'none' } : config.preprocessing };
  }
  return { engine: await engineForModel(model), preprocessing: config.preprocessing };
}

/**
 * Test predictions of a freshly trained model on the chosen engine (the same one `tl evaluate`
 * will use on the saved run, so the report and a later evaluation agree).
 */
export async function evaluateOnEngine(
  model: tf.LayersModel,
  source: BatchSource,
  classNames: string[],
  batchSize?: number,
  /** Test-time augmentation: the same samples, changed (mirrored); probabilities are averaged. */
  views: readonly BatchSource[] = [],
): Promise<{ evaluation: Evaluation; samples: ScoredSample[]; engine: EngineName }> {
  const engine = await engineForModel(model);
  try {
    return { ...(await evaluateModel(engine, source, classNames, batchSize, views)), engine: engine.name };
  } finally {
    await engine.dispose();
  }
}
