import tf from '../runtime/tf.cjs';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { glob, hasMagic } from 'glob';
import { RunDir, type Evaluation, type PredictionRecord, type RunConfig } from '../artifacts/run.js';
import { loadLayersModelFromDir } from '../models/layers-io.js';
import { decodeSamples, ImageBatchSource, listFolder, scanClassFolders, type ImageSample, type SkippedFile } from '../data/image-folder.js';
import { isImageFile } from '../data/images.js';
import { mirrorImage } from '../data/augment.js';
import { imagesToArray, loadImageFor } from '../data/preprocess.js';
import type * as mobilenet from '@tensorflow-models/mobilenet';
import { IMAGENET_CLASSES } from '@tensorflow-models/mobilenet/dist/imagenet_classes.js';
import { fileLoader } from '../models/layers-io.js';
import { initBackend } from '../runtime/backend.js';
import { INFERENCE_BATCH } from '../runtime/engine.js';
import { errorLine, fileError, TlError } from '../util/errors.js';
import { evaluateModel } from './metrics.js';
import { runInference } from './run-engine.js';
import { filePredictions } from './run-facts.js';
import { positiveInteger, resolveOptions, type OptionTable, type ValueType } from '../util/options.js';

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
  const damaged = (file: string, problem: string) => fileError(file, problem, 'the run is damaged; train it again');
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw damaged(run.file('labels'), 'is not a list of class names');
  await initBackend();
  const model = await loadLayersModelFromDir(run.dir);
  const units = model.outputs[0]!.shape[model.outputs[0]!.shape.length - 1];
  const modelInput = model.inputs[0]!.shape.slice(1);
  const shape = config.inputShape as unknown;
  const mismatch =
    units !== labels.length
      ? damaged(run.file('labels'), `lists ${labels.length} classes but the model has ${units} outputs`)
      : !Array.isArray(shape) || shape.length !== modelInput.length || modelInput.some((d, i) => d !== null && d !== shape[i])
        ? damaged(run.file('config'), `inputShape ${JSON.stringify(shape)} does not match the model's input [${modelInput.join(',')}]`)
        : undefined;
  if (mismatch) {
    model.dispose();
    throw mismatch;
  }
  return { dir: run.dir, config, labels, model };
}

/**
 * The image files named on a command line: files as given, folders searched recursively for
 * images (sorted), and quoted glob patterns (`'photos/**\/*.jpg'`, for shells that do not expand
 * them) expanded. A path that does not exist is an error; a folder or pattern without images too.
 */
export async function expandImagePaths(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const stat = await fs.stat(p).catch(() => undefined);
    if (!stat && hasMagic(p)) {
      const matched = (await glob(p, { nodir: true, absolute: true })).sort();
      if (matched.length === 0) throw fileError(p, 'matches no files', 'check the pattern, or pass image files or folders');
      files.push(...matched);
    } else if (!stat) {
      throw fileError(p, 'does not exist', 'pass image files or folders of images');
    } else if (stat.isDirectory()) {
      // The image-folder walker: symlinks followed, loops cut. Image-named entries it could not
      // take (a FIFO called x.jpg, an unreadable file) stay in, so decoding skips and lists them.
      const listing = await listFolder(path.resolve(p));
      const found = [...listing.files, ...listing.skipped.map((s) => s.file)].filter(isImageFile).sort();
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

/** Options of `tl predict` and `tl classify`, one definition each. */
export const PREDICT_OPTIONS = {
  topK: { type: positiveInteger, default: 3, help: 'how many classes to list per image' },
} satisfies OptionTable;

/** The k most probable classes, highest first. */
export function topK(probs: ArrayLike<number>, labels: readonly string[], k: number): RankedClass[] {
  return Array.from(probs, (p, index) => ({ index, p }))
    .sort((a, b) => b.p - a.p || a.index - b.index)
    .slice(0, Math.min(k, labels.length))
    .map(({ index, p }, i) => ({ rank: i + 1, label: labels[index]!, index, probability: p }));
}

/** Whether a run averages each image's prediction with its mirror's (`tl train --tta`); finetuned runs inherit it. */
export function usesTta(config: RunConfig): boolean {
  return (config.hyperparameters as { tta?: unknown }).tta === true;
}

function averageInto(values: Float32Array, other: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) values[i] = (values[i]! + other[i]!) / 2;
}

/** Class probabilities for each file, in batches (averaged with the mirror's for --tta runs); unreadable files are returned as skipped. */
export async function predictFiles(
  run: LoadedRun,
  files: readonly string[],
  opts: { topK?: number; batchSize?: number } = {},
): Promise<{ predictions: FilePrediction[]; skipped: SkippedFile[] }> {
  const { topK: k } = resolveOptions(PREDICT_OPTIONS, opts);
  const skipped = new Map<string, string>();
  const predictions: FilePrediction[] = [];
  const batchSize = opts.batchSize ?? INFERENCE_BATCH;
  const samples: ImageSample[] = files.map((file) => ({ file, label: -1 }));
  const { engine, preprocessing } = await runInference(run);
  try {
    for (let start = 0; start < samples.length; start += batchSize) {
      const decoded = await decodeSamples(samples.slice(start, start + batchSize), run.config.inputShape, skipped);
      if (decoded.length === 0) continue;
      const images = decoded.map((d) => d.image);
      const values = await engine.run(imagesToArray(images, preprocessing).data, decoded.length);
      if (usesTta(run.config)) averageInto(values, await engine.run(imagesToArray(images.map(mirrorImage), preprocessing).data, decoded.length));
      const classes = run.labels.length;
      decoded.forEach((d, i) => predictions.push({ file: d.sample.file, top: topK(values.subarray(i * classes, (i + 1) * classes), run.labels, k) }));
    }
  } finally {
    await engine.dispose();
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
  /** Every scored file with its true and predicted class, as a run's predictions.json holds them (for a report). */
  predictions: PredictionRecord[];
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
export async function evaluateRun(run: LoadedRun, dataDir: string, batchSize = INFERENCE_BATCH): Promise<RunEvaluation> {
  const folder = await evaluationFolder(dataDir, run.labels);
  const scanned = await scanClassFolders(folder, run.labels);
  const skipped = new Map(scanned.skipped.map((s) => [s.file, s.reason]));
  const { engine, preprocessing } = await runInference(run);
  const source = new ImageBatchSource(scanned.samples, run.config.inputShape, preprocessing, skipped);
  const mirrored = usesTta(run.config) ? [new ImageBatchSource(scanned.samples, run.config.inputShape, preprocessing, skipped, mirrorImage)] : [];
  const { evaluation, samples: scored } = await evaluateModel(engine, source, run.labels, batchSize, mirrored).finally(() => engine.dispose());
  const used = scanned.samples.filter((s) => !skipped.has(s.file));
  const misclassified = scored
    .map((s, i) => ({ file: used[i]!.file, label: run.labels[s.label]!, predicted: run.labels[s.predicted]!, confidence: s.confidence, wrong: s.label !== s.predicted }))
    .filter((m) => m.wrong)
    .map(({ wrong: _, ...m }) => m);
  return { evaluation, predictions: filePredictions(used, scored), misclassified, skipped: [...skipped].map(([file, reason]) => ({ file, reason })), count: used.length };
}

export interface ImageNetClassifierOptions {
  /** A tfjs graph-model folder or model.json path, or an http(s) URL; default: the package's hosted model. */
  model?: string;
  /** The value range the graph model expects its pixels in (TF-Hub MobileNets: [0, 1]). */
  inputRange?: [number, number];
}

/** `MIN,MAX` with MIN below MAX: `0,1`, `-1,1`. */
const pixelRange: ValueType<[number, number]> = {
  expected: 'MIN,MAX with MIN below MAX, e.g. 0,1 or -1,1',
  placeholder: '<min,max>',
  fromText(t) {
    const parts = t.split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v)));
    return parts.length === 2 ? [parts[0]!, parts[1]!] : undefined;
  },
  accepts: (v) => Array.isArray(v) && v.length === 2 && v.every(Number.isFinite) && v[0] < v[1],
};

/** Options of `tl classify` beyond PREDICT_OPTIONS, one definition each. */
export const CLASSIFY_OPTIONS = {
  inputRange: { type: pixelRange, default: [0, 1] as [number, number], help: 'pixel range the --model expects (TF-Hub MobileNets: 0,1)' },
} satisfies OptionTable;

/** The MobileNet classifier's input: 224x224 RGB (it rescales pixels to its input range itself). */
const IMAGENET_INPUT_SHAPE: [number, number, number] = [224, 224, 3];

/**
 * The 1000 ImageNet class names by index. Names repeat ('crane' is the bird 134 and the machine
 * 517), so classes are ranked by index and never looked up by name.
 */
export const IMAGENET_LABELS: readonly string[] = Array.from({ length: 1000 }, (_, i) => (IMAGENET_CLASSES as Record<number, string>)[i]!);

/** Where @tensorflow-models/mobilenet should load its graph model from. */
function graphModelSource(model: string): string | tf.io.IOHandler {
  if (/^https?:\/\//.test(model)) return model;
  const json = model.endsWith('.json') ? model : path.join(model, 'model.json');
  if (!existsSync(json)) throw fileError(json, 'not found', 'pass a TensorFlow.js graph model folder (model.json + weight shards) or its URL');
  return fileLoader(json);
}

/**
 * The ImageNet classifier of @tensorflow-models/mobilenet (MobileNet v1 0.25), which brings its
 * own 1000 labels. `model` points it at a local copy so it works offline.
 */
export async function loadImageNetClassifier(opts: ImageNetClassifierOptions = {}): Promise<mobilenet.MobileNet> {
  await initBackend();
  const { inputRange } = resolveOptions(CLASSIFY_OPTIONS, opts);
  try {
    // Loaded on first use: it brings tfjs's graph-model converter, which only tl classify needs.
    const { load } = await import('@tensorflow-models/mobilenet');
    return await load({
      version: 1,
      alpha: 0.25,
      ...(opts.model ? { modelUrl: graphModelSource(opts.model), inputRange } : {}),
    });
  } catch (err) {
    if (err instanceof TlError) throw err;
    const where = opts.model ?? 'the hosted MobileNet model';
    throw new TlError(`${where}: could not load the ImageNet classifier (${errorLine(err)}); pass --model DIR with a tfjs graph model folder`);
  }
}

/** Top-k ImageNet classes per file; unreadable files are returned as skipped. */
export async function classifyImageNet(
  classifier: mobilenet.MobileNet,
  files: readonly string[],
  opts: { topK?: number } = {},
): Promise<{ predictions: FilePrediction[]; skipped: SkippedFile[] }> {
  const { topK: k } = resolveOptions(PREDICT_OPTIONS, opts);
  const predictions: FilePrediction[] = [];
  const skipped: SkippedFile[] = [];
  for (const file of files) {
    const decoded = await loadImageFor(file, IMAGENET_INPUT_SHAPE);
    if (!decoded.ok) {
      skipped.push({ file, reason: decoded.reason });
      continue;
    }
    const { data, height, width } = decoded.image;
    const pixels = tf.tensor3d(data, [height, width, 3], 'int32');
    const probabilities = tf.tidy(() => tf.softmax(classifier.infer(pixels) as tf.Tensor2D));
    pixels.dispose();
    const values = await probabilities.data();
    probabilities.dispose();
    predictions.push({ file, top: topK(values, IMAGENET_LABELS, k) });
  }
  return { predictions, skipped };
}
