import * as tf from '@tensorflow/tfjs';
import type { EpochRecord } from '../artifacts/run.js';
import { saveLayersModelToDir } from '../artifacts/layers-io.js';
import { writeDirAtomic } from '../util/atomic.js';
import { createProgress, logEvent } from '../reporting/progress.js';
import { adam, sparseCrossEntropy } from './optimizers.js';
import { scoreSamples } from './metrics.js';
import { withBatchNormInference, withFusedConvolutions } from './layer-patches.js';

/** One mini-batch: x ready for the model, y the class indices (int32, [B]). The loop disposes both. */
export interface Batch {
  x: tf.Tensor;
  y: tf.Tensor1D;
}

/**
 * Anything that yields mini-batches: in-memory arrays, streamed image folders, cached features.
 * `epochSeed` undefined means the original order (evaluation); a number means a seeded shuffle.
 */
export interface BatchSource {
  readonly size: number;
  batches(batchSize: number, epochSeed?: number): AsyncIterable<Batch>;
}

export interface EarlyStopping {
  patience: number;
  monitor: 'val_loss' | 'val_acc';
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  validation?: BatchSource;
  /** Stop when `monitor` has not improved for `patience` epochs, and restore the best weights. */
  earlyStopping?: EarlyStopping;
  /** Where the last good (best so far) model is kept while training runs. */
  checkpointDir?: string;
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
  label?: string;
}

export interface FitResult {
  history: EpochRecord[];
  bestEpoch: number;
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

/** Stop after the current batch on the first Ctrl-C; a second one exits at once. */
function interruptFlag(): { readonly stop: boolean; release(): void } {
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    process.stderr.write('\ninterrupted: finishing this batch and keeping the last good checkpoint (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  return {
    get stop() {
      return stop;
    },
    release: () => process.off('SIGINT', onSigint),
  };
}

async function trainEpoch(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  source: BatchSource,
  opts: FitOptions,
  epoch: number,
  interrupt: { readonly stop: boolean },
): Promise<{ loss: number; acc: number; seen: number; complete: boolean }> {
  const batchesTotal = Math.ceil(source.size / opts.batchSize);
  const progress = createProgress({ label: `${opts.label ?? 'epoch'} ${epoch}/${(opts.epochOffset ?? 0) + opts.epochs}`, total: batchesTotal, unit: 'batches' });
  const regularized = model.losses.length > 0;
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let complete = true;
  for await (const { x, y } of source.batches(opts.batchSize, opts.seed * 100003 + epoch)) {
    if (interrupt.stop) {
      tf.dispose([x, y]);
      complete = false;
      break;
    }
    let c = 0;
    const lossT = optimizer.minimize(() => {
      const scored = sparseCrossEntropy(model.apply(x, { training: true }) as tf.Tensor, y);
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
  }
  progress.done();
  return { loss: lossSum / Math.max(seen, 1), acc: correct / Math.max(seen, 1), seen, complete };
}

/** tfjs optimizers keep their rate in a protected field; Adam, SGD and RMSProp all call it learningRate. */
function learningRate(optimizer: tf.Optimizer): number | undefined {
  const lr = (optimizer as unknown as { learningRate?: number }).learningRate;
  return typeof lr === 'number' ? lr : undefined;
}

/** Keras's ReduceLROnPlateau on validation (else training) loss. */
function lrScheduler(config: FitOptions['reduceLrOnPlateau']) {
  let bestLoss = Infinity;
  let wait = 0;
  return {
    observe(record: EpochRecord, optimizer: tf.Optimizer): void {
      if (!config) return;
      const loss = record.val_loss ?? record.loss;
      if (loss < bestLoss) {
        bestLoss = loss;
        wait = 0;
        return;
      }
      const lr = learningRate(optimizer);
      if (++wait < config.patience || lr === undefined) return;
      const next = Math.max(lr * config.factor, config.minLr ?? 0);
      (optimizer as unknown as { learningRate: number }).learningRate = next;
      wait = 0;
      process.stderr.write(`learning rate ${lr.toExponential(2)} -> ${next.toExponential(2)} (validation loss did not improve)\n`);
    },
  };
}

function improved(record: EpochRecord, best: EpochRecord | undefined, monitor: EarlyStopping['monitor']): boolean {
  if (!best) return true;
  const value = monitor === 'val_acc' ? record.val_acc ?? record.acc : record.val_loss ?? record.loss;
  const bestValue = monitor === 'val_acc' ? best.val_acc ?? best.acc : best.val_loss ?? best.loss;
  return monitor === 'val_acc' ? value > bestValue : value < bestValue;
}

/**
 * Train `model` on `train`: seeded shuffles, per-epoch validation, early stopping with restore-best,
 * an atomic checkpoint of the best model so far after every epoch, and Ctrl-C that stops cleanly.
 * Only the model's trainable weights change (plus BN statistics when batchNorm is 'train').
 */
export async function fit(model: tf.LayersModel, train: BatchSource, opts: FitOptions): Promise<FitResult> {
  const optimizer = opts.optimizer ?? adam(opts.lr);
  const monitor = opts.earlyStopping?.monitor ?? 'val_loss';
  const history: EpochRecord[] = [];
  const interrupt = interruptFlag();
  const started = Date.now();
  let best: EpochRecord | undefined;
  let bestWeights: tf.Tensor[] | undefined;
  let sinceBest = 0;
  let stoppedEarly = false;
  const plateau = lrScheduler(opts.reduceLrOnPlateau);

  const run = async () => {
    for (let i = 1; i <= opts.epochs; i++) {
      const epoch = (opts.epochOffset ?? 0) + i;
      const t0 = Date.now();
      const result = await trainEpoch(model, optimizer, train, opts, epoch, interrupt);
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
      history.push(record);
      logEvent({ event: 'epoch', ...record });
      process.stderr.write(
        `epoch ${epoch}: loss ${record.loss.toFixed(4)} acc ${record.acc.toFixed(4)}` +
          (val ? ` val_loss ${val.loss.toFixed(4)} val_acc ${val.acc.toFixed(4)}` : '') +
          ` (${seconds.toFixed(1)}s, ${record.imagesPerSecond.toFixed(0)} img/s)\n`,
      );
      if (opts.reduceLrOnPlateau) plateau.observe(record, optimizer);
      if (improved(record, best, monitor)) {
        best = record;
        sinceBest = 0;
        tf.dispose(bestWeights ?? []);
        bestWeights = snapshot(model);
        if (opts.checkpointDir) await writeDirAtomic(opts.checkpointDir, (dir) => saveLayersModelToDir(model, dir));
      } else if (opts.earlyStopping && ++sinceBest >= opts.earlyStopping.patience) {
        stoppedEarly = true;
        break;
      }
      if (interrupt.stop) break;
    }
  };

  try {
    await withFusedConvolutions(model, () => (opts.batchNorm === 'inference' ? withBatchNormInference(model, run) : run()));
  } finally {
    interrupt.release();
  }
  // Restore the best epoch's weights: after early stopping, after an interruption, or when a
  // later epoch overfit. With no completed epoch the initial weights stay.
  if (bestWeights) {
    restore(model, bestWeights);
    tf.dispose(bestWeights);
  }
  return {
    history,
    bestEpoch: best?.epoch ?? 0,
    stoppedEarly,
    interrupted: interrupt.stop,
    seconds: (Date.now() - started) / 1000,
  };
}
