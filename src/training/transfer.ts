import path from 'node:path';
import { type DatasetInfo, type PredictionRecord, type RunConfig, type RunMetrics } from '../artifacts/run.js';
import { getBackbone, loadBackbone, parseWeightsSource, type LoadedBackbone, type WeightsSource } from '../backbones/index.js';
import { DECODER_ID } from '../data/images.js';
import { openImageFolder, requireEveryClass, type ImageFolderData, type ImageSample } from '../data/image-folder.js';
import { joinBaseAndHead, buildHead, HEAD_UNITS } from '../models/head.js';
import { engineForModel } from '../models/engine.js';
import { initBackend } from '../runtime/backend.js';
import { TlError } from '../util/errors.js';
import { cachedFeatureSource, extractFeatures, FeatureCache, type ExtractionResult } from './feature-cache.js';
import { fit, type TrainingCallbacks } from './loop.js';
import { runFingerprint } from './checkpoint.js';
import type { RunWorkspace } from '../artifacts/workspace.js';
import { buildRun, fitSummary, defaultRunDir, type TrainedRun } from './run-writer.js';
import type { ScoredSample } from './metrics.js';
import { evaluateOnEngine } from './run-engine.js';
import { ADAM_LR_OPTION, OUT_OPTION, SEED_OPTION, VAL_SPLIT_OPTION, integerType, numberType, positiveInteger, resolveOptions, text, type OptionTable } from '../util/options.js';
import { MAX_INPUT_SIZE } from '../backbones/layers.js';

/**
 * `tl train`'s options, one definition each: the CLI flags, the sweep keys and the defaults below
 * all come from here. The smallest `--size` is the backbone's (its spec's minInputSize), checked
 * once the backbone is known.
 */
export const TRANSFER_OPTIONS = {
  backbone: { type: text, required: true, placeholder: '<name>', help: 'base network (tl backbones list), e.g. mobilenet' },
  alpha: { type: numberType('a width multiplier like 0.25', { above: 0 }), help: 'width multiplier, for backbones that have one (mobilenet: 0.25, 0.5, 0.75, 1.0); default: the one the weights have' },
  weights: { type: text, default: 'imagenet', placeholder: '<src>', help: 'imagenet (from the cache), none (random), a catalog id, or a .h5 file / tfjs model folder' },
  epochs: { type: positiveInteger, default: 5, help: 'epochs of head training' },
  batchSize: { type: positiveInteger, default: 32, help: 'mini-batch size' },
  lr: ADAM_LR_OPTION,
  size: { type: integerType(`an integer number of pixels up to ${MAX_INPUT_SIZE}`, { min: 1, max: MAX_INPUT_SIZE }), default: 150, placeholder: '<px>', help: 'square input size the images are resized to (at least the backbone\'s minimum)' },
  valSplit: VAL_SPLIT_OPTION,
  seed: SEED_OPTION,
  out: { ...OUT_OPTION, help: 'run directory (default runs/<data>-<backbone>-<time>); never overwritten' },
} satisfies OptionTable;

export interface TransferTrainOptions {
  dataDir: string;
  backbone: string;
  alpha?: number;
  /** 'imagenet' (the default), 'none', a catalog id, or a path to a .h5 file / tfjs layers folder. */
  weights?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** Square input size in pixels. */
  size?: number;
  valSplit?: number;
  seed?: number;
  out?: string;
  /** Continue the unfinished run in `OUT.partial` from its last checkpoint. */
  resume?: boolean;
  /** Aborting stops training after the current batch; the run is written marked interrupted. */
  signal?: AbortSignal;
  /** Called after every batch and epoch (Keras-style); see TrainingCallbacks. */
  callbacks?: TrainingCallbacks;
  command?: string;
}

export interface TransferTrainResult {
  runDir: string;
  metrics: RunMetrics;
  /** What the feature pass did: `computed` is 0 when every feature came from the cache. */
  features: Pick<ExtractionResult, 'computed' | 'reused' | 'seconds'>;
}

/** `flowers` for .../flowers and for .../flowers/train: what a run and its metrics call the data. */
export function datasetNameOf(root: string): string {
  const base = path.basename(root);
  return ['train', 'training'].includes(base) ? path.basename(path.dirname(root)) : base;
}

export function modelLabel(backbone: string, alpha: number | undefined): string {
  return alpha === undefined ? backbone : `${backbone}-${alpha}`;
}

export function datasetInfo(data: ImageFolderData, counts: { train: number; val: number; test: number }, seed: number, skipped: Map<string, string>): DatasetInfo {
  return {
    name: datasetNameOf(data.root),
    split: data.split,
    seed,
    trainCount: counts.train,
    valCount: counts.val,
    testCount: counts.test,
    classes: data.classNames.length,
    source: data.root,
    skipped: [...skipped].map(([file, reason]) => ({ file, reason })),
  };
}

export function filePredictions(samples: readonly ImageSample[], scored: ScoredSample[]): PredictionRecord[] {
  return scored.map((s, i) => ({ source: { kind: 'file', path: samples[i]!.file }, ...s }));
}

/** Every file the run touches, each once (test may be the validation split). */
function allSamples(data: ImageFolderData): ImageSample[] {
  return [...new Map([...data.train, ...data.val, ...data.test].map((s) => [s.file, s])).values()];
}

/** Feature maps of every image in the cache; returns how each file is keyed. */
async function cacheFeatures(data: ImageFolderData, backbone: LoadedBackbone, inputShape: [number, number, number], skipped: Map<string, string>) {
  const featureShape = backbone.model.outputs[0]!.shape.slice(1) as number[];
  const engine = await engineForModel(backbone.model);
  const cache = await FeatureCache.open(
    {
      backbone: backbone.spec.name,
      alpha: backbone.alpha,
      weightsSha256: backbone.weightsSha256,
      ...(backbone.weightsSha256 ? {} : { weightsSource: backbone.weightsSource }),
      featureLayer: backbone.spec.featureLayer,
      inputShape,
      preprocessing: backbone.spec.preprocessing,
      decoder: DECODER_ID,
      engine: engine.name,
    },
    featureShape,
  );
  try {
    const extraction = await extractFeatures(allSamples(data), engine, cache, {
      inputShape,
      preprocessing: backbone.spec.preprocessing,
      skipped,
      label: 'base features',
    });
    return { cache, featureShape, extraction, engine: engine.name };
  } finally {
    await engine.dispose();
  }
}

/** The backbone's own limit on `--size`, before any image is decoded or weights read. */
function checkSizeFor(backbone: string, size: number): void {
  const { minInputSize } = getBackbone(backbone);
  if (size < minInputSize) throw new TlError(`--size must be at least ${minInputSize} for ${backbone} (got ${size})`);
}

/**
 * Transfer learning with a frozen base: features once (cached), a head trained on them, and a
 * run directory whose model.json is base + head as one stock tfjs layers model.
 */
export async function trainTransfer(opts: TransferTrainOptions): Promise<TransferTrainResult> {
  const o = resolveOptions(TRANSFER_OPTIONS, opts);
  checkSizeFor(o.backbone, o.size);
  // --weights is interpreted here, once: a missing path fails before any folder is created.
  const weights = await parseWeightsSource(o.weights);
  const label = modelLabel(opts.backbone, opts.alpha);
  const out = path.resolve(opts.out ?? defaultRunDir(datasetNameOf(path.resolve(opts.dataDir)), label));
  return buildRun(out, { resume: opts.resume }, (ws) => trainTransferInto(ws, opts, o, weights, label));
}

type ResolvedTransferOptions = ReturnType<typeof resolveOptions<typeof TRANSFER_OPTIONS>>;

async function trainTransferInto(ws: RunWorkspace, opts: TransferTrainOptions, o: ResolvedTransferOptions, weights: WeightsSource, label: string): Promise<TrainedRun<TransferTrainResult>> {
  const backend = await initBackend();
  const data = await openImageFolder(opts.dataDir, { valSplit: o.valSplit, seed: o.seed });
  const inputShape: [number, number, number] = [o.size, o.size, 3];
  const backbone = await loadBackbone({ name: o.backbone, alpha: o.alpha, inputShape, weights, seed: o.seed });

  const skipped = new Map(data.skipped.map((s) => [s.file, s.reason]));
  const { cache, featureShape, extraction, engine } = await cacheFeatures(data, backbone, inputShape, skipped);
  requireEveryClass(data.train, skipped, data.classNames, data.root);

  const head = buildHead({ featureShape, classes: data.classNames.length, seed: o.seed });
  const train = cachedFeatureSource(data.train, extraction.hashes, cache);
  const val = data.val.length ? cachedFeatureSource(data.val, extraction.hashes, cache) : undefined;
  const hyperparameters = {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    optimizer: 'adam',
    size: o.size,
    valSplit: o.valSplit,
    headUnits: HEAD_UNITS,
    ...(backbone.alpha !== undefined ? { alpha: backbone.alpha } : {}),
  };
  const result = await fit(head, train, {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    seed: o.seed,
    validation: val,
    checkpoint: { dir: ws.checkpointDir, fingerprint: runFingerprint({ data: data.root, backbone: backbone.spec.name, weights: backbone.weightsSource, seed: o.seed }, hyperparameters) },
    resume: ws.resuming,
    signal: opts.signal,
    callbacks: opts.callbacks,
    phase: 'transfer',
    label: 'head epoch',
  });
  const test = cachedFeatureSource(data.test, extraction.hashes, cache);
  const { evaluation, samples } = await evaluateOnEngine(head, test, data.classNames);

  const metrics: RunMetrics = {
    test: evaluation,
    trainSeconds: extraction.seconds + result.seconds,
    backend,
    engine,
    dataset: {
      ...datasetInfo(data, { train: train.size, val: val?.size ?? 0, test: test.size }, o.seed, skipped),
      featureCache: { computed: extraction.computed, reused: extraction.reused, seconds: extraction.seconds },
    },
    ...fitSummary(result),
  };
  const config: RunConfig = {
    kind: 'transfer',
    createdAt: new Date().toISOString(),
    model: `${label}+head`,
    inputShape,
    preprocessing: backbone.spec.preprocessing,
    hyperparameters,
    seed: o.seed,
    backbone: {
      name: backbone.spec.name,
      weights: backbone.weightsSource,
      ...(backbone.weightsSha256 ? { weightsSha256: backbone.weightsSha256 } : {}),
      featureLayer: backbone.spec.featureLayer,
    },
    dataset: { name: datasetNameOf(data.root), source: data.root },
    command: opts.command ?? 'tl train',
  };
  const whole = joinBaseAndHead(backbone.model, head, `${label.replace(/[^A-Za-z0-9_]/g, '_')}_transfer`);
  return {
    model: whole,
    contents: { config, labels: data.classNames, history: result.history, metrics, predictions: filePredictions(test.samples, samples) },
    value: { runDir: ws.out, metrics, features: extraction },
  };
}
