import type * as tf from '@tensorflow/tfjs';
import { RunDir, type EpochRecord, type PredictionRecord, type RunConfig, type RunMetrics } from '../artifacts/run.js';
import { saveLayersModelToDir } from '../artifacts/layers-io.js';
import { writeDirAtomic } from '../util/atomic.js';
import { reportOrWarn } from '../reporting/report.js';
import type { FitResult } from './loop.js';

export interface RunContents {
  config: RunConfig;
  labels: string[];
  history: EpochRecord[];
  metrics: RunMetrics;
  predictions: PredictionRecord[];
}

/** Model and JSON files of a run into `dir`; run.json last, since its presence marks a run. */
export async function writeRunFiles(dir: string, model: tf.LayersModel, contents: RunContents): Promise<void> {
  const run = new RunDir(dir);
  await saveLayersModelToDir(model, dir);
  await run.write('labels', contents.labels);
  await run.write('history', contents.history);
  await run.write('predictions', contents.predictions);
  await run.write('metrics', contents.metrics);
  await run.write('config', contents.config);
}

/** The whole run directory, built aside and renamed into place, then its report. */
export async function writeRun(out: string, model: tf.LayersModel, contents: RunContents): Promise<void> {
  await writeDirAtomic(out, (dir) => writeRunFiles(dir, model, contents));
  await reportOrWarn(out);
}

/** The part of metrics.json every training command takes from its `fit` result. */
export function fitSummary(result: FitResult): Pick<RunMetrics, 'imagesPerSecond' | 'bestEpoch' | 'stoppedEarly' | 'interrupted'> {
  const h = result.history;
  return {
    imagesPerSecond: h.length ? h.reduce((a, r) => a + r.imagesPerSecond, 0) / h.length : undefined,
    bestEpoch: result.bestEpoch,
    stoppedEarly: result.stoppedEarly,
    interrupted: result.interrupted,
  };
}
