import path from 'node:path';
import { loadDataset, stratifiedSplit, type LoadedDataset } from '../data/datasets.js';
import { catalogEntry } from '../data/catalog.js';
import { allRows, byteImageSource, type PixelScaling } from '../data/array-source.js';
import { ACTIVATIONS, CUSTOM_MODELS, buildCustomModel, type CustomModelName, type MlpOptions, type CnnOptions } from '../models/custom.js';
import { initBackend } from '../runtime/backend.js';
import { requireRunKind, type DatasetInfo, type PredictionRecord, type RunConfig, type RunMetrics } from '../artifacts/run.js';
import { Rng } from '../util/rng.js';
import { augmentImage, augmentText, augmentType, isAugmenting, parseAugment } from '../data/augment.js';
import { fit, type TrainingCallbacks } from './loop.js';
import { runFingerprint } from './checkpoint.js';
import type { RunWorkspace } from '../artifacts/workspace.js';
import { buildRun, fitSummary, defaultRunDir, type TrainedRun } from './run-writer.js';
import { evaluateModel, type ScoredSample } from './metrics.js';
import { openRun } from './predict.js';
import { evaluateOnEngine, runInference } from './run-engine.js';
import {
  ADAM_LR_OPTION, OUT_OPTION, SEED_OPTION, VAL_SPLIT_OPTION, flag, integerList, nonNegativeInteger, numberType, oneOf, positiveInteger, resolveOptions, text, type OptionTable,
} from '../util/options.js';

/** `tl custom train`'s options, one definition each: CLI flags, sweep keys and the defaults below. */
export const CUSTOM_OPTIONS = {
  dataset: { type: text, required: true, placeholder: '<name>', help: 'dataset name (see tl datasets list)' },
  model: { type: oneOf(CUSTOM_MODELS), default: 'cnn' as CustomModelName, help: CUSTOM_MODELS.join(' | ') },
  // 15, not 10: the cnn on Fashion-MNIST reached 92.86% in 10 epochs and 93.13% in 15 (issue 10); early stopping ends runs that stall.
  epochs: { type: positiveInteger, default: 15, help: 'maximum epochs (early stopping may end sooner)' },
  batchSize: { type: positiveInteger, help: 'mini-batch size (default: per model)' },
  lr: ADAM_LR_OPTION,
  valSplit: VAL_SPLIT_OPTION,
  seed: SEED_OPTION,
  resplit: { type: numberType('a fraction in (0, 1)', { above: 0, below: 1 }), help: 'derive a stratified train/test split with this test fraction from the one split available' },
  trainLimit: { type: positiveInteger, help: 'train on at most N images (stratified)' },
  patience: { type: nonNegativeInteger, default: 3, help: 'early-stopping patience on val loss (0 = off); the best epoch is restored' },
  lrPatience: { type: nonNegativeInteger, default: 1, help: 'halve the learning rate after N epochs without a better val loss (0 = constant rate)' },
  normalize: { type: flag, default: true, help: 'feed raw 0..255 pixels instead of [0,1]' },
  augment: { type: augmentType, default: 'none', help: 'online augmentation of the training images each epoch, as Keras\' Random* layers (glyphs: small shifts and rotations, no flips, e.g. rotate=10,translate=0.08)' },
  out: { ...OUT_OPTION, help: 'run directory (default runs/<dataset>-<model>-<time>)' },
} satisfies OptionTable;

const dropoutRate = numberType('a rate in [0, 1)', { min: 0, below: 1 });
const positiveIntegers = integerList('a list of positive integers like 32,64', positiveInteger);

/**
 * Flags that set one field of the mlp or cnn architecture (`--dropout` sets both); unset ones keep
 * the model's defaults (DEFAULT_MLP, DEFAULT_CNN), which the sweep reaches as `mlp.*` / `cnn.*`.
 */
export const CUSTOM_ARCHITECTURE_OPTIONS = {
  hidden: { type: integerList('a list of positive integers like 512,512, or none', positiveInteger), help: 'mlp: hidden layer sizes, e.g. 512,512 (or "none")' },
  activation: { type: oneOf(ACTIVATIONS), help: `mlp: ${ACTIVATIONS.join(', ')}` },
  l2: { type: numberType('an L2 penalty of at least 0', { min: 0 }), help: 'mlp: L2 penalty on dense kernels' },
  dropout: { type: dropoutRate, help: 'mlp/cnn: dropout rate' },
  filters: { type: positiveIntegers, help: 'cnn: filters per conv stage, e.g. 32,64,128' },
  kernelSize: { type: positiveInteger, help: 'cnn: convolution size' },
  stride: { type: positiveInteger, help: 'cnn: stride of the first convolution' },
} satisfies OptionTable;

export interface CustomTrainOptions {
  dataset: string;
  model: CustomModelName;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  valSplit?: number;
  seed?: number;
  /** Derive a stratified train/test split from the one split a dataset has (EMNIST ByMerge here). */
  resplit?: number;
  /** Train on the first N (seeded, stratified) training images: learning curves, quick runs. */
  trainLimit?: number;
  /** Scale pixels to [0,1] (default) or feed raw 0..255. */
  normalize?: boolean;
  /** `rotate=10,translate=0.08` (see data/augment.ts); 'none' by default. */
  augment?: string;
  /** Early-stopping patience in epochs on validation loss; 0 turns it off. */
  patience?: number;
  /** Halve the learning rate after this many epochs without a better validation loss; 0 turns it off. */
  lrPatience?: number;
  mlp?: Partial<MlpOptions>;
  cnn?: Partial<CnnOptions>;
  out?: string;
  /** Continue the unfinished run in `OUT.partial` from its last checkpoint. */
  resume?: boolean;
  /** Aborting stops training after the current batch; the run is written marked interrupted. */
  signal?: AbortSignal;
  /** Called after every batch and epoch (Keras-style); see TrainingCallbacks. */
  callbacks?: TrainingCallbacks;
  command?: string;
}

export interface CustomTrainResult {
  runDir: string;
  metrics: RunMetrics;
}

/** Batch sizes of the reference runs for the seed models; the tuned models use what trains fastest here. */
const DEFAULT_BATCH: Record<CustomModelName, number> = {
  'seed-cnn': 32,
  'seed-emnist-cnn': 128,
  'seed-mlp': 256,
  mlp: 256,
  cnn: 64,
};

/**
 * Seeded, stratified subset of exactly `limit` rows. Stratification rounds each class's share, so
 * tiny limits (fewer than the classes) are topped up with seeded random rows rather than left empty.
 */
function limitRows(rows: Int32Array, labels: Uint8Array, limit: number | undefined, seed: number): Int32Array {
  if (!limit || limit >= rows.length) return rows;
  const sub = Uint8Array.from(rows, (r) => labels[r]!);
  const picked = Array.from(stratifiedSplit(sub, limit / rows.length, seed).test.slice(0, limit));
  if (picked.length < limit) {
    const taken = new Set(picked);
    const rest = new Rng(seed).permutation(rows.length).filter((i) => !taken.has(i));
    picked.push(...rest.slice(0, limit - picked.length));
  }
  return Int32Array.from(picked, (i) => rows[i]!);
}

function splitTrainVal(data: LoadedDataset, valSplit: number, seed: number, trainLimit?: number) {
  const all = allRows(data.train.count);
  const { train, test: val } = valSplit > 0 ? stratifiedSplit(data.train.labels, valSplit, seed) : { train: all, test: new Int32Array(0) };
  return { train: limitRows(Int32Array.from(train), data.train.labels, trainLimit, seed), val: Int32Array.from(val) };
}

function datasetInfo(data: LoadedDataset, trainCount: number, valCount: number, opts: CustomTrainOptions): DatasetInfo {
  return {
    name: data.name,
    split: data.splitDescription,
    seed: opts.seed,
    trainCount,
    valCount,
    testCount: data.test.count,
    classes: data.classNames.length,
    ...(data.resplit ? { resplit: data.resplit } : {}),
    ...(opts.trainLimit ? { trainLimit: opts.trainLimit } : {}),
  };
}

function predictionRecords(data: LoadedDataset, samples: ScoredSample[]): PredictionRecord[] {
  return samples.map((s, i) => ({
    source: { kind: 'dataset', dataset: data.name, split: data.test.split, index: data.test.sourceIndex[i]! },
    ...s,
  }));
}

/** Train one of the custom models on a cached dataset and write a complete run directory. */
export async function trainCustom(opts: CustomTrainOptions): Promise<CustomTrainResult> {
  const o = resolveOptions(CUSTOM_OPTIONS, opts);
  const batchSize = o.batchSize ?? DEFAULT_BATCH[o.model];
  const out = path.resolve(opts.out ?? defaultRunDir(opts.dataset, opts.model));
  catalogEntry(opts.dataset); // an unknown name fails here, before anything is created
  const resolved = { ...opts, ...o, batchSize };
  return buildRun(out, { resume: opts.resume }, (ws) => trainInto(ws, resolved));
}

type ResolvedOptions = CustomTrainOptions & Required<Pick<CustomTrainOptions, 'seed' | 'epochs' | 'batchSize' | 'lr' | 'valSplit' | 'patience' | 'lrPatience' | 'normalize' | 'augment'>>;

async function trainInto(ws: RunWorkspace, opts: ResolvedOptions): Promise<TrainedRun<CustomTrainResult>> {
  const { seed, epochs, batchSize, lr, valSplit, patience, lrPatience, normalize } = opts;
  const backend = await initBackend();
  const data = await loadDataset(opts.dataset, { resplit: opts.resplit, seed });

  const scaling: PixelScaling = { scale: normalize ? 1 / 255 : 1, offset: 0 };
  const augment = parseAugment(opts.augment)!;
  const { train, val } = splitTrainVal(data, valSplit, seed, opts.trainLimit);
  const inputShape: [number, number, number] = [data.train.height, data.train.width, 1];
  const model = buildCustomModel({ model: opts.model, mlp: opts.mlp, cnn: opts.cnn }, inputShape, data.classNames.length, seed);
  const hyperparameters = {
    epochs,
    batchSize,
    lr,
    optimizer: 'adam',
    valSplit,
    patience,
    lrPatience,
    normalize,
    augment: augmentText(augment),
    ...(opts.resplit ? { resplit: opts.resplit } : {}),
    ...(opts.trainLimit ? { trainLimit: opts.trainLimit } : {}),
    ...(opts.mlp ? { mlp: opts.mlp } : {}),
    ...(opts.cnn ? { cnn: opts.cnn } : {}),
  };

  const trainSource = byteImageSource(data.train, train, scaling, isAugmenting(augment) ? (img, rng) => augmentImage(img, augment, rng) : undefined);
  const result = await fit(model, trainSource, {
    epochs,
    batchSize,
    lr,
    seed,
    validation: val.length ? byteImageSource(data.train, val, scaling) : undefined,
    earlyStopping: patience > 0 && val.length ? { patience, monitor: 'val_loss' } : undefined,
    reduceLrOnPlateau: lrPatience > 0 ? { factor: 0.5, patience: lrPatience, minLr: lr / 64 } : undefined,
    checkpoint: { dir: ws.checkpointDir, fingerprint: runFingerprint({ dataset: data.name, model: opts.model, seed }, hyperparameters) },
    resume: ws.resuming,
    signal: opts.signal,
    callbacks: opts.callbacks,
    phase: 'train',
    label: `${opts.model} epoch`,
  });

  const { evaluation, samples, engine } = await evaluateOnEngine(model, byteImageSource(data.test, allRows(data.test.count), scaling), data.classNames);

  const metrics: RunMetrics = {
    test: evaluation,
    trainSeconds: result.seconds,
    backend,
    engine,
    dataset: datasetInfo(data, train.length, val.length, opts),
    ...fitSummary(result),
  };
  const config: RunConfig = {
    kind: 'custom',
    createdAt: new Date().toISOString(),
    model: opts.model,
    inputShape,
    preprocessing: { mode: 'scale', scale: scaling.scale, offset: 0, grayscale: true, invertLightBackground: true },
    hyperparameters: { ...hyperparameters, parameters: model.countParams() },
    seed,
    dataset: { name: data.name },
    command: opts.command ?? 'tl custom train',
  };

  return {
    model,
    contents: { config, labels: data.classNames, history: result.history, metrics, predictions: predictionRecords(data, samples) },
    value: { runDir: ws.out, metrics },
  };
}

/** Re-score a custom run on its dataset's test split (rebuilt from run.json: same resplit and seed). */
export async function evaluateCustomRun(runDirPath: string): Promise<{ metrics: RunMetrics['test']; labels: string[] }> {
  const run = await openRun(runDirPath);
  const { config, model } = run;
  try {
    requireRunKind(runDirPath, config, ['custom'], 'use tl evaluate RUN DATA_DIR for image-folder runs');
    const hp = config.hyperparameters as { resplit?: number };
    const data = await loadDataset(config.dataset.name, { resplit: hp.resplit, seed: config.seed });
    const { engine, preprocessing } = await runInference(run);
    // A graph with the preprocessing baked in takes the raw 0..255 bytes.
    const scaling = preprocessing.mode === 'scale' ? preprocessing : preprocessing.mode === 'none' ? { scale: 1, offset: 0 } : { scale: 1 / 255, offset: 0 };
    const { evaluation } = await evaluateModel(engine, byteImageSource(data.test, allRows(data.test.count), scaling), data.classNames).finally(() => engine.dispose());
    return { metrics: evaluation, labels: data.classNames };
  } finally {
    model.dispose();
  }
}
