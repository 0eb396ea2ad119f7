import tf from '../runtime/tf.cjs';
import path from 'node:path';
import { RunDir, requireRunKind, type RunConfig, type RunMetrics } from '../artifacts/run.js';
import { loadLayersModelFromDir } from '../models/layers-io.js';
import { ImageBatchSource, openImageFolder } from '../data/image-folder.js';
import { isHeadLayer } from '../models/head.js';
import { baseCopies } from '../models/multi-scale.js';
import { initBackend } from '../runtime/backend.js';
import { fileError } from '../util/errors.js';
import { fit, type TrainingCallbacks } from './loop.js';
import { runFingerprint } from './checkpoint.js';
import { evaluateOnEngine } from './run-engine.js';
import { INFERENCE_BATCH } from '../runtime/engine.js';
import { ADAM_LR_OPTION, OUT_OPTION, PATIENCE_OPTION, RESTORE_BEST_OPTION, TRANSFER_BATCH_SIZE_OPTION, VAL_SPLIT_OPTION, positiveInteger, resolveOptions, type OptionTable, type ValueType } from '../util/options.js';
import { augmentImage, augmentText, augmentType, mirrorImage, parseAugment, isAugmenting } from '../data/augment.js';
import { datasetInfo, filePredictions, heldOutFacts } from './run-facts.js';
import type { RunWorkspace } from '../artifacts/workspace.js';
import { buildRun, fitSummary, runTimestamp, type TrainedRun } from './run-writer.js';

export interface FinetuneOptions {
  /** The transfer (or earlier finetune) run to start from. */
  run: string;
  /** Defaults to the folder the parent run was trained on (run.json dataset.source). */
  dataDir?: string;
  /** 'all', or N: the last N layers of the base (as Keras' `base.layers[-N:]`). */
  unfreeze?: 'all' | number;
  lr?: number;
  epochs?: number;
  batchSize?: number;
  patience?: number;
  restoreBest?: boolean;
  augment?: string;
  out?: string;
  /** Continue the unfinished run in `OUT.partial` from its last checkpoint. */
  resume?: boolean;
  /** Aborting stops training after the current batch; the run is written marked interrupted. */
  signal?: AbortSignal;
  /** Called after every batch and epoch (Keras-style); see TrainingCallbacks. */
  callbacks?: TrainingCallbacks;
  command?: string;
}

export interface FinetuneResult {
  runDir: string;
  metrics: RunMetrics;
}

/**
 * Make the head and the chosen top of the base trainable, everything else frozen. Returns how
 * many base layers were unfrozen (of each scale's copy of the base). BatchNorm statistics stay frozen regardless (see fit's
 * batchNorm 'inference'): only kernels, biases, gamma and beta train.
 */
export function unfreeze(model: tf.LayersModel, which: 'all' | number): number {
  const copies = baseCopies(model.layers.filter((l) => !isHeadLayer(l) && l.getClassName() !== 'InputLayer'));
  const longest = Math.max(...copies.map((c) => c.length));
  const count = which === 'all' ? longest : Math.min(which, longest);
  for (const copy of copies) copy.forEach((layer, i) => (layer.trainable = i >= copy.length - count));
  for (const layer of model.layers) if (isHeadLayer(layer)) layer.trainable = true;
  return count;
}

/** `all`, or how many layers at the top of the base train. */
const unfreezeType: ValueType<'all' | number> = {
  expected: '"all" or a positive number of layers',
  placeholder: '<which>',
  fromText: (t) => (t === 'all' ? 'all' : positiveInteger.fromText(t)),
  accepts: (v) => v === 'all' || positiveInteger.accepts(v as number),
};

/** `tl finetune`'s options, one definition each (the CLI flags and the defaults below come from here). */
export const FINETUNE_OPTIONS = {
  unfreeze: { type: unfreezeType, default: 'all' as 'all' | number, help: '"all", or N: train the last N layers of the base, of each scale\'s copy (plus the head)' },
  lr: { ...ADAM_LR_OPTION, default: 1e-5, help: 'Adam learning rate (small: the base is pretrained)' },
  epochs: { type: positiveInteger, default: 3, help: 'epochs of fine-tuning' },
  batchSize: { type: positiveInteger, help: 'mini-batch size (default: the parent run\'s)' },
  patience: PATIENCE_OPTION,
  restoreBest: RESTORE_BEST_OPTION,
  augment: { type: augmentType, help: 'online augmentation of the training images each epoch (default: the parent run\'s --augment)' },
  out: { ...OUT_OPTION, help: 'new run directory (default RUN-finetune-<time>; the parent is never overwritten)' },
} satisfies OptionTable;

async function parentRun(dir: string): Promise<{ run: RunDir; config: RunConfig }> {
  const run = await RunDir.open(dir);
  const config = await run.config();
  requireRunKind(dir, config, ['transfer', 'finetune'], 'fine-tune a run written by tl train or tl finetune');
  return { run, config };
}

/**
 * Fine-tune a transfer run end to end on images (streamed and preprocessed as the run says),
 * with BatchNorm layers kept on their moving statistics, into a NEW run directory.
 */
export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const { lr, epochs, unfreeze: which, patience, restoreBest } = resolveOptions(FINETUNE_OPTIONS, opts);
  const { run: parent, config: parentConfig } = await parentRun(opts.run);
  const out = opts.out ? path.resolve(opts.out) : `${parent.dir}-finetune-${runTimestamp()}`;
  if (out === parent.dir) throw fileError(out, 'is the parent run', 'fine-tuning writes a new run; pass another --out');
  return buildRun(out, { resume: opts.resume }, (ws) => finetuneInto(ws, opts, parent, parentConfig, { lr, epochs, which, patience, restoreBest }));
}

async function finetuneInto(
  ws: RunWorkspace,
  opts: FinetuneOptions,
  parent: RunDir,
  parentConfig: RunConfig,
  { lr, epochs, which, patience, restoreBest }: { lr: number; epochs: number; which: 'all' | number; patience: number; restoreBest: boolean },
): Promise<TrainedRun<FinetuneResult>> {
  const dataDir = opts.dataDir ?? parentConfig.dataset.source;
  if (!dataDir) throw fileError(parent.file('config'), 'names no dataset folder', 'pass DATA_DIR');
  // Runs record their hyper-parameters; tl train's defaults stand in for any a run lacks.
  const hp = parentConfig.hyperparameters as { batchSize?: number; valSplit?: number; testSplit?: number; augment?: string; tta?: boolean };
  const batchSize = opts.batchSize ?? hp.batchSize ?? TRANSFER_BATCH_SIZE_OPTION.default;
  const seed = parentConfig.seed;

  const backend = await initBackend();
  const [labels, parentHistory] = await Promise.all([parent.labels(), parent.history()]);
  // The parent's split and seed: validation and test images stay out of training.
  // Runs from before --test-split held none out.
  const data = await openImageFolder(dataDir, { valSplit: hp.valSplit ?? VAL_SPLIT_OPTION.default, testSplit: hp.testSplit ?? 0, seed });
  if (JSON.stringify(data.classNames) !== JSON.stringify(labels)) {
    throw fileError(data.root, `has classes ${data.classNames.join(', ')}, the run has ${labels.join(', ')}`, 'fine-tune on a folder with the same classes');
  }
  const model = await loadLayersModelFromDir(parent.dir);
  const unfrozen = unfreeze(model, which);

  const skipped = new Map(data.skipped.map((s) => [s.file, s.reason]));
  const { inputShape, preprocessing } = parentConfig;
  const augment = parseAugment(opts.augment ?? hp.augment ?? 'none')!;
  const train = new ImageBatchSource(data.train, inputShape, preprocessing, skipped, isAugmenting(augment) ? (img, rng) => augmentImage(img, augment, rng) : undefined);
  const val = data.val.length ? new ImageBatchSource(data.val, inputShape, preprocessing, skipped) : undefined;
  const finetuneHyperparameters = { epochs, lr, batchSize, unfreeze: which, unfrozenLayers: unfrozen, batchNorm: 'inference', patience, restoreBest, augment: augmentText(augment) };
  const result = await fit(model, train, {
    epochs,
    batchSize,
    lr,
    seed,
    validation: val,
    earlyStopping: patience > 0 && val ? { patience, monitor: 'val_loss' } : undefined,
    restoreBest,
    phase: 'finetune',
    epochOffset: parentHistory.length ? parentHistory[parentHistory.length - 1]!.epoch : 0,
    batchNorm: 'inference',
    checkpoint: { dir: ws.checkpointDir, fingerprint: runFingerprint({ parent: parent.dir, data: data.root }, finetuneHyperparameters) },
    resume: ws.resuming,
    signal: opts.signal,
    callbacks: opts.callbacks,
    label: 'finetune epoch',
  });
  const test = new ImageBatchSource(data.test, inputShape, preprocessing, skipped);
  const mirrored = hp.tta ? [new ImageBatchSource(data.test, inputShape, preprocessing, skipped, mirrorImage)] : [];
  // Scored in inference batches, as tl evaluate scores the saved run (the mini-batch size is training's).
  const { evaluation, samples, engine } = await evaluateOnEngine(model, test, labels, INFERENCE_BATCH, mirrored);
  const testUsed = data.test.filter((s) => !skipped.has(s.file));

  const metrics: RunMetrics = {
    test: evaluation,
    ...heldOutFacts(data, evaluation, result, restoreBest),
    trainSeconds: result.seconds,
    backend,
    engine,
    dataset: datasetInfo(
      data,
      { train: data.train.filter((s) => !skipped.has(s.file)).length, val: val ? data.val.filter((s) => !skipped.has(s.file)).length : 0, test: testUsed.length },
      seed,
      skipped,
    ),
    ...fitSummary(result),
  };
  const config: RunConfig = {
    ...parentConfig,
    kind: 'finetune',
    createdAt: new Date().toISOString(),
    hyperparameters: { ...parentConfig.hyperparameters, finetune: finetuneHyperparameters },
    parent: parent.dir,
    dataset: { name: parentConfig.dataset.name, source: data.root },
    command: opts.command ?? 'tl finetune',
  };
  return {
    model,
    contents: { config, labels, history: [...parentHistory, ...result.history], metrics, predictions: filePredictions(testUsed, samples) },
    value: { runDir: ws.out, metrics },
  };
}
