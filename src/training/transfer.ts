import path from 'node:path';
import { type RunConfig, type RunMetrics } from '../artifacts/run.js';
import { getBackbone, loadBackbone, parseWeightsSource, type LoadedBackbone, type WeightsSource } from '../backbones/index.js';
import { DECODER_ID } from '../data/images.js';
import { DecodedImageMemo, openImageFolder, requireEveryClass, type ImageFolderData, type ImageSample } from '../data/image-folder.js';
import { joinBaseAndHead, buildHead, foldStandardization, HEAD_UNITS } from '../models/head.js';
import { engineForModel } from '../models/engine.js';
import { multiScaleFeatures, parseScales, scalesType } from '../models/multi-scale.js';
import { initBackend } from '../runtime/backend.js';
import { TlError } from '../util/errors.js';
import { cachedFeatureSource, computeViews, extractFeatures, FeatureCache, pooledChannelStats, type ExtractionResult } from './feature-cache.js';
import { fit, type TrainingCallbacks } from './loop.js';
import { runFingerprint } from './checkpoint.js';
import type { RunWorkspace } from '../artifacts/workspace.js';
import { buildRun, fitSummary, defaultRunDir, type TrainedRun } from './run-writer.js';
import { evaluateOnEngine } from './run-engine.js';
import {
  ADAM_LR_OPTION,
  OUT_OPTION,
  PATIENCE_OPTION,
  RESTORE_BEST_OPTION,
  SEED_OPTION,
  TEST_SPLIT_OPTION,
  TRANSFER_BATCH_SIZE_OPTION,
  VAL_SPLIT_OPTION,
  flag,
  integerType,
  nonNegativeInteger,
  numberType,
  oneOf,
  positiveInteger,
  resolveOptions,
  text,
  type OptionTable,
} from '../util/options.js';
import { augmentType } from '../data/augment.js';
import { augmentedViews, mirrorKeys, mirroredViews, viewKeys } from './feature-views.js';
import { balancedClassWeights, datasetInfo, datasetNameOf, filePredictions, heldOutFacts } from './run-facts.js';
import { finetune } from './finetune.js';
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
  // 20 epochs with L2 1e-3 (the best epoch is kept): on clothing-10 test/ +1.6 points (MobileNet 0.25) and +2.2 (0.75)
  // over 5 epochs without L2; every other head change measured moved less or not the same way at both widths (README).
  epochs: { type: positiveInteger, default: 20, help: 'epochs of head training (the epoch with the best validation loss is kept)' },
  batchSize: TRANSFER_BATCH_SIZE_OPTION,
  lr: ADAM_LR_OPTION,
  size: { type: integerType(`an integer number of pixels up to ${MAX_INPUT_SIZE}`, { min: 1, max: MAX_INPUT_SIZE }), default: 150, placeholder: '<px>', help: 'square input size the images are resized to (at least the backbone\'s minimum)' },
  // Multi-scale pooling (models/multi-scale.ts): see the README's clothing-10 table for why 1,2.
  scales: { type: scalesType, help: 'the frozen base also sees each image upscaled by these whole factors (bilinear, inside the model); the pooled features of every scale are concatenated (1: the image alone; default: the backbone\'s, 1,2 for MobileNets, 1 for VGG16 and Xception)' },
  valSplit: VAL_SPLIT_OPTION,
  testSplit: TEST_SPLIT_OPTION,
  patience: PATIENCE_OPTION,
  restoreBest: RESTORE_BEST_OPTION,
  // Defaults from the clothing-10 study (README): multi-scale features, standardized, a mirrored view
  // per training image and mirrored test-time predictions together beat every single change.
  augment: { type: augmentType, default: 'flip', help: 'augmentation of the training images (flip,rotate=DEG,zoom=F,translate=F,contrast=F,brightness=F, or none), as Keras\' Random* layers' },
  augmentCopies: { type: nonNegativeInteger, default: 1, help: 'augmented views per training image, computed once through the frozen base and cached; each epoch draws one view per image' },
  tta: { type: flag, default: true, help: 'test-time augmentation: average the predictions for each image and its mirror (--no-tta: the image alone)' },
  headUnits: { type: nonNegativeInteger, default: HEAD_UNITS, help: 'units of the head\'s hidden Dense ReLU layer (0: a linear softmax on the pooled features)' },
  dropout: { type: numberType('in [0, 1)', { min: 0, below: 1 }), default: 0, help: 'dropout rate before the head\'s softmax layer' },
  l2: { type: numberType('at least 0', { min: 0 }), default: 1e-3, help: 'L2 penalty on the head\'s Dense kernels' },
  standardize: { type: flag, default: true, help: 'train the head on features standardized per channel (mean and std of the training images), folded into its first Dense layer afterwards (--no-standardize: raw features)' },
  labelSmoothing: { type: numberType('in [0, 1)', { min: 0, below: 1 }), default: 0, help: 'label smoothing of the training loss' },
  classWeight: { type: oneOf(['none', 'balanced'] as const), default: 'none' as 'none' | 'balanced', help: 'balanced: weight each class\'s loss by n / (classes * n_class), for imbalanced folders' },
  finetuneEpochs: { type: nonNegativeInteger, default: 0, help: 'then fine-tune the whole model for this many epochs (as fastai\'s fine_tune); the head-only run is kept in OUT-head' },
  finetuneLr: { ...ADAM_LR_OPTION, default: 1e-5, help: 'Adam learning rate of --finetune-epochs' },
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
  /** Multi-scale pooling: "1,2" (see models/multi-scale.ts). */
  scales?: string;
  valSplit?: number;
  /** Held out as the test set when the folder has no test/ tree. */
  testSplit?: number;
  patience?: number;
  restoreBest?: boolean;
  /** `flip,rotate=15,zoom=0.1` (see data/augment.ts). */
  augment?: string;
  augmentCopies?: number;
  tta?: boolean;
  /** Hidden units of the head; 0 is a linear head. */
  headUnits?: number;
  dropout?: number;
  l2?: number;
  labelSmoothing?: number;
  /** Standardize the pooled features per channel while the head trains (folded into it afterwards). */
  standardize?: boolean;
  classWeight?: 'none' | 'balanced';
  /** Fine-tune end to end after the head (the head-only run goes to `OUT-head`). */
  finetuneEpochs?: number;
  finetuneLr?: number;
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
  /** With --finetune-epochs: the head-only run `runDir` was fine-tuned from. */
  headRunDir?: string;
}

export function modelLabel(backbone: string, alpha: number | undefined): string {
  return alpha === undefined ? backbone : `${backbone}-${alpha}`;
}

/** Every file the run touches, each once (test may be the validation split). */
function allSamples(data: ImageFolderData): ImageSample[] {
  return [...new Map([...data.train, ...data.val, ...data.test].map((s) => [s.file, s])).values()];
}

/**
 * The features of every image in the cache, from the base at `views.scales` (default: the
 * backbone's own; its feature map for the single scale 1, else the pooled vectors of every
 * scale); returns how each file is keyed, the scales used and the feature model the head goes on.
 */
export async function cacheFeatures(
  data: ImageFolderData,
  backbone: LoadedBackbone,
  inputShape: [number, number, number],
  skipped: Map<string, string>,
  views: { augment: string; copies: number; seed: number; tta: boolean; scales?: string },
) {
  const scalesText = views.scales ?? backbone.spec.transferScales;
  const scales = parseScales(scalesText)!;
  const features = multiScaleFeatures(backbone.model, scales);
  const featureShape = features.outputs[0]!.shape.slice(1) as number[];
  const engine = await engineForModel(features);
  const cache = await FeatureCache.open(
    {
      backbone: backbone.spec.name,
      alpha: backbone.alpha,
      weightsSha256: backbone.weightsSha256,
      ...(backbone.weightsSha256 ? {} : { weightsSource: backbone.weightsSource }),
      featureLayer: backbone.spec.featureLayer,
      inputShape,
      // Absent for the single scale 1, so caches written before multi-scale pooling still match.
      ...(scales.length > 1 ? { scales } : {}),
      preprocessing: backbone.spec.preprocessing,
      decoder: DECODER_ID,
      engine: engine.name,
    },
    featureShape,
  );
  try {
    const extractOptions = { inputShape, preprocessing: backbone.spec.preprocessing, skipped, decoded: new DecodedImageMemo() };
    const extraction = await extractFeatures(allSamples(data), engine, cache, { ...extractOptions, label: 'base features' });
    const augmented = augmentedViews(data.train, extraction.hashes, views);
    if (augmented.length) await computeViews(augmented, engine, cache, { ...extractOptions, label: 'augmented features' });
    if (views.tta) await computeViews(mirroredViews(data.test, extraction.hashes), engine, cache, { ...extractOptions, label: 'mirrored test features' });
    return { cache, features, featureShape, scales: scalesText, extraction, engine: engine.name };
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
  if (o.finetuneEpochs === 0) return buildRun(out, { resume: opts.resume }, (ws) => trainTransferInto(ws, opts, o, weights, label));
  const head = await buildRun(`${out}-head`, { resume: opts.resume }, (ws) => trainTransferInto(ws, opts, o, weights, label));
  const tuned = await finetune({ run: head.runDir, epochs: o.finetuneEpochs, lr: o.finetuneLr, patience: o.patience, restoreBest: o.restoreBest, out, resume: opts.resume, signal: opts.signal, callbacks: opts.callbacks, command: opts.command });
  return { ...tuned, features: head.features, headRunDir: head.runDir };
}

type ResolvedTransferOptions = ReturnType<typeof resolveOptions<typeof TRANSFER_OPTIONS>>;

async function trainTransferInto(ws: RunWorkspace, opts: TransferTrainOptions, o: ResolvedTransferOptions, weights: WeightsSource, label: string): Promise<TrainedRun<TransferTrainResult>> {
  const backend = await initBackend();
  const data = await openImageFolder(opts.dataDir, { valSplit: o.valSplit, testSplit: o.testSplit, seed: o.seed });
  const inputShape: [number, number, number] = [o.size, o.size, 3];
  const backbone = await loadBackbone({ name: o.backbone, alpha: o.alpha, inputShape, weights, seed: o.seed });

  const skipped = new Map(data.skipped.map((s) => [s.file, s.reason]));
  const views = { augment: o.augment, copies: o.augmentCopies, seed: o.seed, tta: o.tta, scales: o.scales };
  const { cache, features, featureShape, scales, extraction, engine } = await cacheFeatures(data, backbone, inputShape, skipped, views);
  requireEveryClass(data.train, skipped, data.classNames, data.root);

  const head = buildHead({ featureShape, classes: data.classNames.length, seed: o.seed, units: o.headUnits, dropout: o.dropout, l2: o.l2 });
  const stats = o.standardize ? await pooledChannelStats(cachedFeatureSource(data.train, extraction.hashes, cache), featureShape[featureShape.length - 1]!) : undefined;
  const train = cachedFeatureSource(data.train, viewKeys(data.train, extraction.hashes, views), cache, stats);
  const val = data.val.length ? cachedFeatureSource(data.val, extraction.hashes, cache, stats) : undefined;
  const hyperparameters = {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    optimizer: 'adam',
    size: o.size,
    scales,
    valSplit: o.valSplit,
    testSplit: o.testSplit,
    patience: o.patience,
    restoreBest: o.restoreBest,
    augment: o.augment,
    augmentCopies: o.augmentCopies,
    tta: o.tta,
    headUnits: o.headUnits,
    dropout: o.dropout,
    l2: o.l2,
    labelSmoothing: o.labelSmoothing,
    classWeight: o.classWeight,
    standardize: o.standardize,
    ...(backbone.alpha !== undefined ? { alpha: backbone.alpha } : {}),
  };
  const result = await fit(head, train, {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    seed: o.seed,
    validation: val,
    earlyStopping: o.patience > 0 && val ? { patience: o.patience, monitor: 'val_loss' } : undefined,
    restoreBest: o.restoreBest,
    labelSmoothing: o.labelSmoothing,
    classWeights: o.classWeight === 'balanced' ? balancedClassWeights(data.train, data.classNames.length) : undefined,
    checkpoint: { dir: ws.checkpointDir, fingerprint: runFingerprint({ data: data.root, backbone: backbone.spec.name, weights: backbone.weightsSource, seed: o.seed }, hyperparameters) },
    resume: ws.resuming,
    signal: opts.signal,
    callbacks: opts.callbacks,
    phase: 'transfer',
    label: 'head epoch',
  });
  if (stats) foldStandardization(head, stats.mean, stats.std);
  const test = cachedFeatureSource(data.test, extraction.hashes, cache);
  const mirrored = o.tta ? [cachedFeatureSource(data.test, mirrorKeys(data.test, extraction.hashes), cache)] : [];
  const { evaluation, samples } = await evaluateOnEngine(head, test, data.classNames, undefined, mirrored);

  const metrics: RunMetrics = {
    test: evaluation,
    ...heldOutFacts(data, evaluation, result, o.restoreBest),
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
  const whole = joinBaseAndHead(features, head, `${label.replace(/[^A-Za-z0-9_]/g, '_')}_transfer`);
  return {
    model: whole,
    contents: { config, labels: data.classNames, history: result.history, metrics, predictions: filePredictions(test.samples, samples) },
    value: { runDir: ws.out, metrics, features: extraction },
  };
}
