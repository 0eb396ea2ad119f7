import tf from '../runtime/tf.cjs';
import type { BatchSource } from '../data/batch-source.js';
import type { EpochRecord } from '../artifacts/run.js';
import { createProgress, logEvent } from '../runtime/progress.js';
import { emitMessage } from '../runtime/context.js';
import { withTlKernels } from '../runtime/patches.js';
import { adam, sparseCrossEntropy } from './optimizers.js';
import { scoreSamples } from './metrics.js';
import { withBatchNormInference, withFastL2, withFusedConvolutions, withSeededDropout } from './layer-patches.js';
import { Rng } from '../util/rng.js';
import { yieldToEventLoop } from '../util/event-loop.js';
import { loadCheckpoint, saveCheckpoint, type Checkpoint, type LoopState } from './checkpoint.js';

export type { Batch, BatchSource } from '../data/batch-source.js';

export interface EarlyStopping {
  patience: number;
  monitor: 'val_loss' | 'val_acc';
}

/** What a batch's end reports to TrainingCallbacks.onBatchEnd. */
export interface BatchEnd {
  epoch: number;
  /** 1-based index of the batch within its epoch. */
  batch: number;
  batches: number;
  loss: number;
  acc: number;
}

/**
 * Keras-style callbacks, to watch or steer a training run from code. They run inside the loop
 * (awaited), so a slow callback slows training; to stop a run, abort its `signal`.
 */
export interface TrainingCallbacks {
  onBatchEnd?(info: BatchEnd): void | Promise<void>;
  /** After validation and the checkpoint of each completed epoch. */
  onEpochEnd?(record: EpochRecord): void | Promise<void>;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  validation?: BatchSource;
  /** Stop when `monitor` has not improved for `patience` epochs. */
  earlyStopping?: EarlyStopping;
  /** Keep the best epoch's weights at the end (default); false keeps the last epoch's. */
  restoreBest?: boolean;
  /** Where the loop's state is saved after every epoch, for --resume. */
  checkpoint?: Checkpoint;
  /** Continue from `checkpoint` when it holds a saved state (a resumed run). */
  resume?: boolean;
  /**
   * Stops training after the current batch: the best epoch so far is restored and the result is
   * marked interrupted. The CLI aborts it on Ctrl-C; the library never touches process signals.
   */
  signal?: AbortSignal;
  callbacks?: TrainingCallbacks;
  phase?: EpochRecord['phase'];
  /** Epoch numbers continue from here (fine-tuning continues a transfer run's history). */
  epochOffset?: number;
  /**
   * 'inference' keeps every BatchNormalization layer on its moving statistics while its gamma/beta
   * still train: what Keras does for a frozen base, and what fine-tuning needs. tfjs's own `fit`
   * runs BN in training mode, which re-estimates the statistics from small batches.
   */
  batchNorm?: 'train' | 'inference';
  /** Multiply the learning rate by `factor` when validation loss has not improved for `patience` epochs. */
  reduceLrOnPlateau?: { factor: number; patience: number; minLr?: number };
  optimizer?: tf.Optimizer;
  /** Label smoothing of the training loss (0: plain cross-entropy); validation loss is never smoothed. */
  labelSmoothing?: number;
  /** Per-class weights of the training loss (Keras' class_weight), indexed by label. */
  classWeights?: readonly number[];
  label?: string;
}

export interface FitResult {
  history: EpochRecord[];
  bestEpoch: number;
  /** The epoch whose weights the model ends with: the best one, or the last with restoreBest false. */
  keptEpoch: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  seconds: number;
}

/** Loss and accuracy of `model` over `source`, in inference mode. */
export async function evaluateLoss(model: tf.LayersModel, source: BatchSource, batchSize: number): Promise<{ loss: number; acc: number }> {
  const { samples, lossSum } = await scoreSamples(model, source, batchSize);
  const n = Math.max(samples.length, 1);
  return { loss: lossSum / n, acc: samples.filter((s) => s.label === s.predicted).length / n };
}

function snapshot(model: tf.LayersModel): tf.Tensor[] {
  return model.getWeights().map((w) => w.clone());
}

function restore(model: tf.LayersModel, weights: tf.Tensor[]): void {
  model.setWeights(weights);
}

async function trainEpoch(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  source: BatchSource,
  opts: FitOptions,
  epoch: number,
): Promise<{ loss: number; acc: number; seen: number; complete: boolean }> {
  const batchesTotal = Math.ceil(source.size / opts.batchSize);
  const progress = createProgress({ label: `${opts.label ?? 'epoch'} ${epoch}/${(opts.epochOffset ?? 0) + opts.epochs}`, total: batchesTotal, unit: 'batches' });
  // A functional model's `losses` stays empty; its layers' regularizers show up in calculateLosses().
  const regularized = tf.tidy(() => model.calculateLosses().length > 0);
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let batch = 0;
  let complete = true;
  for await (const { x, y } of source.batches(opts.batchSize, opts.seed * 100003 + epoch)) {
    await yieldToEventLoop();
    if (opts.signal?.aborted) {
      tf.dispose([x, y]);
      complete = false;
      break;
    }
    let c = 0;
    const lossT = optimizer.minimize(() => {
      const scored = sparseCrossEntropy(model.apply(x, { training: true }) as tf.Tensor, y, opts.labelSmoothing, opts.classWeights);
      c = scored.correct;
      return regularized ? (tf.addN([scored.loss, ...model.calculateLosses()]) as tf.Scalar) : scored.loss;
    }, true) as tf.Scalar;
    const b = y.shape[0];
    const l = (await lossT.data())[0]!;
    tf.dispose([x, y, lossT]);
    lossSum += l * b;
    correct += c;
    seen += b;
    progress.tick(1, { loss: lossSum / seen, acc: correct / seen });
    logEvent({ event: 'batch', phase: opts.phase ?? 'train', epoch, loss: l, acc: c / b });
    await opts.callbacks?.onBatchEnd?.({ epoch, batch: ++batch, batches: batchesTotal, loss: l, acc: c / b });
  }
  progress.done();
  return { loss: lossSum / Math.max(seen, 1), acc: correct / Math.max(seen, 1), seen, complete };
}

/** tfjs optimizers keep their rate in a protected field; Adam, SGD and RMSProp all call it learningRate. */
function learningRate(optimizer: tf.Optimizer): number | undefined {
  const lr = (optimizer as unknown as { learningRate?: number }).learningRate;
  return typeof lr === 'number' ? lr : undefined;
}

function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = lr;
}

/** Keras's ReduceLROnPlateau on validation (else training) loss; `state` is kept in checkpoints. */
function observePlateau(config: FitOptions['reduceLrOnPlateau'], state: LoopState['plateau'], record: EpochRecord, optimizer: tf.Optimizer): void {
  if (!config) return;
  const loss = record.val_loss ?? record.loss;
  if (loss < state.bestLoss) {
    state.bestLoss = loss;
    state.wait = 0;
    return;
  }
  const lr = learningRate(optimizer);
  if (++state.wait < config.patience || lr === undefined) return;
  const next = Math.max(lr * config.factor, config.minLr ?? 0);
  setLearningRate(optimizer, next);
  state.wait = 0;
  emitMessage(`learning rate ${lr.toExponential(2)} -> ${next.toExponential(2)} (validation loss did not improve)`);
}

function improved(record: EpochRecord, best: EpochRecord | undefined, monitor: EarlyStopping['monitor']): boolean {
  if (!best) return true;
  const value = monitor === 'val_acc' ? record.val_acc ?? record.acc : record.val_loss ?? record.loss;
  const bestValue = monitor === 'val_acc' ? best.val_acc ?? best.acc : best.val_loss ?? best.loss;
  return monitor === 'val_acc' ? value > bestValue : value < bestValue;
}

/** Where a run's dropout generator starts: from its seed, apart from the streams that shuffle and split. */
function dropoutSeed(seed: number): number {
  return (seed ^ 0x5eed) >>> 0;
}

/** The loop's state before its first epoch, or where a checkpoint left it. */
async function startingState(model: tf.LayersModel, optimizer: tf.Optimizer, opts: FitOptions): Promise<{ loop: LoopState; bestWeights?: tf.Tensor[] }> {
  const fresh: LoopState = { epochsDone: 0, history: [], sinceBest: 0, plateau: { bestLoss: Infinity, wait: 0 }, lr: opts.lr, random: dropoutSeed(opts.seed) };
  const saved = opts.resume && opts.checkpoint ? await loadCheckpoint(opts.checkpoint, model, optimizer) : undefined;
  if (!saved) return { loop: fresh };
  // JSON has no Infinity: a plateau that has seen no loss yet comes back as null.
  saved.loop.plateau.bestLoss ??= Infinity;
  setLearningRate(optimizer, saved.loop.lr);
  emitMessage(`resuming after epoch ${(opts.epochOffset ?? 0) + saved.loop.epochsDone} from ${opts.checkpoint!.dir}`);
  return saved;
}

/** How often, at most, the loop's state is checkpointed after the first epoch. */
const CHECKPOINT_INTERVAL_MS = 10_000;

/**
 * Train `model` on `train`: seeded shuffles, per-epoch validation, early stopping with restore-best,
 * an atomic checkpoint of the whole loop state after the first epoch and then at most every 10 s
 * (for --resume), and an abort signal that stops after the current batch.
 * Only the model's trainable weights change (plus BN statistics when batchNorm is 'train').
 */
export async function fit(model: tf.LayersModel, train: BatchSource, opts: FitOptions): Promise<FitResult> {
  if (opts.optimizer) return fitWith(model, train, opts, opts.optimizer);
  // An optimizer made here holds its moments (twice the trainable weights) until disposed.
  const optimizer = adam(opts.lr);
  try {
    return await fitWith(model, train, opts, optimizer);
  } finally {
    optimizer.dispose();
  }
}

async function fitWith(model: tf.LayersModel, train: BatchSource, opts: FitOptions, optimizer: tf.Optimizer): Promise<FitResult> {
  const monitor = opts.earlyStopping?.monitor ?? 'val_loss';
  const started = Date.now();
  const { loop, bestWeights: resumedBest } = await startingState(model, optimizer, opts);
  const dropoutRng = new Rng(0).restore(loop.random);
  let bestWeights = resumedBest;
  let stoppedEarly = false;
  let lastCheckpoint: number | undefined;
  // The first epoch's state is always kept; later ones at most every CHECKPOINT_INTERVAL_MS (a
  // head epoch takes a fraction of a second, its checkpoint about as long), and never after the
  // last epoch, whose state goes straight into the run.
  const checkpointDue = (epoch: number) =>
    epoch < opts.epochs && !stoppedEarly && (lastCheckpoint === undefined || Date.now() - lastCheckpoint >= CHECKPOINT_INTERVAL_MS);

  const run = async () => {
    for (let i = loop.epochsDone + 1; i <= opts.epochs; i++) {
      // A run killed after the checkpoint that ended it early has nothing left to train.
      if (opts.earlyStopping && loop.sinceBest >= opts.earlyStopping.patience) {
        stoppedEarly = true;
        break;
      }
      const epoch = (opts.epochOffset ?? 0) + i;
      const t0 = Date.now();
      const result = await trainEpoch(model, optimizer, train, opts, epoch);
      if (!result.complete) break;
      const val = opts.validation ? await evaluateLoss(model, opts.validation, Math.max(opts.batchSize, 256)) : undefined;
      const seconds = (Date.now() - t0) / 1000;
      const record: EpochRecord = {
        epoch,
        phase: opts.phase ?? 'train',
        loss: result.loss,
        acc: result.acc,
        ...(val ? { val_loss: val.loss, val_acc: val.acc } : {}),
        lr: learningRate(optimizer) ?? opts.lr,
        seconds,
        imagesPerSecond: result.seen / seconds,
      };
      loop.history.push(record);
      logEvent({ event: 'epoch', ...record });
      emitMessage(
        `epoch ${epoch}: loss ${record.loss.toFixed(4)} acc ${record.acc.toFixed(4)}` +
          (val ? ` val_loss ${val.loss.toFixed(4)} val_acc ${val.acc.toFixed(4)}` : '') +
          ` (${seconds.toFixed(1)}s, ${record.imagesPerSecond.toFixed(0)} img/s)`,
      );
      observePlateau(opts.reduceLrOnPlateau, loop.plateau, record, optimizer);
      if (improved(record, loop.best, monitor)) {
        loop.best = record;
        loop.sinceBest = 0;
        tf.dispose(bestWeights ?? []);
        bestWeights = snapshot(model);
      } else if (opts.earlyStopping && ++loop.sinceBest >= opts.earlyStopping.patience) {
        stoppedEarly = true;
      }
      loop.epochsDone = i;
      loop.lr = learningRate(optimizer) ?? opts.lr;
      loop.random = dropoutRng.position;
      if (opts.checkpoint && checkpointDue(i)) {
        await saveCheckpoint(opts.checkpoint, model, optimizer, bestWeights, loop);
        lastCheckpoint = Date.now();
      }
      await opts.callbacks?.onEpochEnd?.(record);
      if (stoppedEarly || opts.signal?.aborted) break;
    }
  };

  const patched = () => withSeededDropout(model, dropoutRng, () => (opts.batchNorm === 'inference' ? withBatchNormInference(model, run) : run()));
  await withTlKernels(() => withFusedConvolutions(model, () => withFastL2(model, patched)));
  // Restore the best epoch's weights: after early stopping, after an interruption, or when a
  // later epoch overfit. With no completed epoch the initial weights stay.
  if (bestWeights) {
    if (opts.restoreBest !== false) restore(model, bestWeights);
    tf.dispose(bestWeights);
  }
  const lastEpoch = loop.history[loop.history.length - 1]?.epoch ?? 0;
  return {
    history: loop.history,
    bestEpoch: loop.best?.epoch ?? 0,
    keptEpoch: opts.restoreBest === false ? lastEpoch : loop.best?.epoch ?? 0,
    stoppedEarly,
    interrupted: opts.signal?.aborted ?? false,
    seconds: (Date.now() - started) / 1000,
  };
}
