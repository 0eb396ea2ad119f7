import type * as tf from '@tensorflow/tfjs';
import { RunDir, type EpochRecord, type PredictionRecord, type RunConfig, type RunMetrics } from '../artifacts/run.js';
import { saveLayersModelToDir } from '../models/layers-io.js';
import path from 'node:path';
import { RunWorkspace, type WorkspaceOptions } from '../artifacts/workspace.js';
import type { FitResult } from './loop.js';

/** `2026-01-31T12-00-00`: the time in a default run name, so a second run gets a new folder. */
export function runTimestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
}

/** `runs/<data>-<model>-<time>` under the working directory. */
export function defaultRunDir(dataset: string, model: string): string {
  return path.resolve('runs', `${dataset}-${model}-${runTimestamp()}`);
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

export interface TrainedRun<T> {
  model: tf.LayersModel;
  contents: RunContents;
  value: T;
}

/**
 * The skeleton every training command shares: a locked workspace beside `out` (checked writable
 * before any work), the trainer's work in it, the run files and the rename into place. The report
 * is a separate step (reporting/report.ts) that the CLI takes.
 */
export async function buildRun<T>(out: string, opts: WorkspaceOptions, train: (ws: RunWorkspace) => Promise<TrainedRun<T>>): Promise<T> {
  return RunWorkspace.run(out, opts, async (ws) => {
    const { model, contents, value } = await train(ws);
    try {
      await writeRunFiles(ws.dir, model, contents);
    } finally {
      model.dispose();
    }
    return value;
  });
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
