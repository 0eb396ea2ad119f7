import type * as tf from '@tensorflow/tfjs';
import { RunDir, type EpochRecord, type PredictionRecord, type RunConfig, type RunMetrics } from '../artifacts/run.js';
import { saveLayersModelToDir } from '../artifacts/layers-io.js';
import path from 'node:path';
import { exists, writeDirAtomic } from '../util/atomic.js';
import { fileError } from '../util/errors.js';
import { reportOrWarn } from '../reporting/report.js';
import type { FitResult } from './loop.js';

/** `runs/<data>-<model>-<time>` under the working directory. */
export function defaultRunDir(dataset: string, model: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return path.resolve('runs', `${dataset}-${model}-${stamp}`);
}

/** Runs are never overwritten: refuse an existing --out before any work is done. */
export async function requireNewRunDir(out: string): Promise<void> {
  if (await exists(out)) throw fileError(out, 'already exists', 'pass a new --out (runs are never overwritten)');
}

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
