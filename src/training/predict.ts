import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { glob } from 'glob';
import { RunDir, type Evaluation, type RunConfig } from '../artifacts/run.js';
import { loadLayersModelFromDir } from '../artifacts/layers-io.js';
import { decodeSamples, ImageBatchSource, scanClassFolders, type ImageSample, type SkippedFile } from '../data/image-folder.js';
import { isImageFile } from '../data/images.js';
import { imagesToTensor } from '../data/preprocess.js';
import { initBackend } from '../runtime/backend.js';
import { fileError } from '../util/errors.js';
import { evaluateModel } from './metrics.js';

/** A trained run ready to score images: its model plus how it wants its pixels. */
export interface LoadedRun {
  dir: string;
  config: RunConfig;
  labels: string[];
  model: tf.LayersModel;
}

/** Open any tl run (transfer, finetune or custom). Input shape and preprocessing come from run.json. */
export async function openRun(dir: string): Promise<LoadedRun> {
  const run = await RunDir.open(dir);
  const [config, labels] = await Promise.all([run.config(), run.labels()]);
  await initBackend();
  const model = await loadLayersModelFromDir(run.dir);
  const units = model.outputs[0]!.shape[model.outputs[0]!.shape.length - 1];
  if (units !== labels.length) {
    throw fileError(run.file('labels'), `lists ${labels.length} classes but the model has ${units} outputs`, 'the run is damaged; train it again');
  }
  return { dir: run.dir, config, labels, model };
}

/**
 * The image files named on a command line: files as given, folders searched recursively for
 * images (sorted). A path that does not exist is an error; a folder without images too.
 */
export async function expandImagePaths(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const stat = await fs.stat(p).catch(() => undefined);
    if (!stat) throw fileError(p, 'does not exist', 'pass image files or folders of images');
    if (stat.isDirectory()) {
      const found = (await glob('**/*', { cwd: p, nodir: true, absolute: true })).filter(isImageFile).sort();
      if (found.length === 0) throw fileError(p, 'holds no image files', 'pass .jpg/.png/.webp/.gif/.tiff/.avif files or a folder of them');
      files.push(...found);
    } else {
      files.push(path.resolve(p));
    }
  }
  return files;
}

export interface RankedClass {
  rank: number;
  label: string;
  index: number;
  probability: number;
}

export interface FilePrediction {
  file: string;
  top: RankedClass[];
}

/** The k most probable classes, highest first. */
export function topK(probs: ArrayLike<number>, labels: readonly string[], k: number): RankedClass[] {
  return Array.from(probs, (p, index) => ({ index, p }))
    .sort((a, b) => b.p - a.p || a.index - b.index)
    .slice(0, Math.max(1, Math.min(k, labels.length)))
    .map(({ index, p }, i) => ({ rank: i + 1, label: labels[index]!, index, probability: p }));
}

/** Class probabilities for each file, in batches; unreadable files are returned as skipped. */
export async function predictFiles(
  run: LoadedRun,
  files: readonly string[],
  opts: { topK: number; batchSize?: number },
): Promise<{ predictions: FilePrediction[]; skipped: SkippedFile[] }> {
  const skipped = new Map<string, string>();
  const predictions: FilePrediction[] = [];
  const batchSize = opts.batchSize ?? 32;
  const samples: ImageSample[] = files.map((file) => ({ file, label: -1 }));
  for (let start = 0; start < samples.length; start += batchSize) {
    const decoded = await decodeSamples(samples.slice(start, start + batchSize), run.config.inputShape, skipped);
    if (decoded.length === 0) continue;
    const probs = tf.tidy(() => run.model.predict(imagesToTensor(decoded.map((d) => d.image), run.config.preprocessing)) as tf.Tensor2D);
    const values = await probs.data();
    probs.dispose();
    const k = run.labels.length;
    decoded.forEach((d, i) => predictions.push({ file: d.sample.file, top: topK(values.subarray(i * k, (i + 1) * k), run.labels, opts.topK) }));
  }
  return { predictions, skipped: [...skipped].map(([file, reason]) => ({ file, reason })) };
}

/** `#1 daisy @ 99.14%` */
export function formatRanked(r: RankedClass): string {
  return `#${r.rank} ${r.label} @ ${(r.probability * 100).toFixed(2)}%`;
}

export interface Misclassified {
  file: string;
  label: string;
  predicted: string;
  confidence: number;
}

export interface RunEvaluation {
  evaluation: Evaluation;
  misclassified: Misclassified[];
  skipped: SkippedFile[];
  count: number;
}

/**
 * Where the labelled images of `dataDir` are: its class sub-folders, or its test/ sub-tree
 * when it is a whole dataset (train/ + test/) rather than one split.
 */
async function evaluationFolder(dataDir: string, labels: readonly string[]): Promise<string> {
  const test = path.join(dataDir, 'test');
  const isDir = (await fs.stat(test).catch(() => undefined))?.isDirectory() ?? false;
  return isDir && !labels.includes('test') ? test : dataDir;
}

/** Score a run on a folder of class sub-folders (named like the run's classes). */
export async function evaluateRun(run: LoadedRun, dataDir: string, batchSize = 32): Promise<RunEvaluation> {
  const folder = await evaluationFolder(dataDir, run.labels);
  const scanned = await scanClassFolders(folder, run.labels);
  const skipped = new Map(scanned.skipped.map((s) => [s.file, s.reason]));
  const source = new ImageBatchSource(scanned.samples, run.config.inputShape, run.config.preprocessing, skipped);
  const { evaluation, samples: scored } = await evaluateModel(run.model, source, run.labels, batchSize);
  const used = scanned.samples.filter((s) => !skipped.has(s.file));
  const misclassified = scored
    .map((s, i) => ({ file: used[i]!.file, label: run.labels[s.label]!, predicted: run.labels[s.predicted]!, confidence: s.confidence, wrong: s.label !== s.predicted }))
    .filter((m) => m.wrong)
    .map(({ wrong: _, ...m }) => m);
  return { evaluation, misclassified, skipped: [...skipped].map(([file, reason]) => ({ file, reason })), count: used.length };
}
