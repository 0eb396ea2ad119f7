import tf from '../runtime/tf.cjs';
import path from 'node:path';
import { RunDir, requireRunKind } from '../artifacts/run.js';
import { loadBackbone, parseWeightsSource } from '../backbones/index.js';
import { openImageFolder } from '../data/image-folder.js';
import { buildHead } from '../models/head.js';
import { initBackend } from '../runtime/backend.js';
import { Rng } from '../util/rng.js';
import { TlError } from '../util/errors.js';
import { OUT_OPTION, positiveInteger, positiveNumber, resolveOptions, TEST_SPLIT_OPTION, VAL_SPLIT_OPTION, type OptionTable } from '../util/options.js';
import { cachedFeatureSource } from './feature-cache.js';
import { adam, sparseCrossEntropy } from './optimizers.js';
import { cacheFeatures, TRANSFER_OPTIONS } from './transfer.js';

/**
 * fastai's learning-rate range test for `tl train`'s head: one mini-batch per step with the rate
 * growing exponentially from `startLr` to `endLr`, the loss smoothed (exponential moving average,
 * bias-corrected), stopped once it exceeds 4x its minimum. The suggestion is the rate where the
 * smoothed loss falls fastest (fastai's "steep"), which lies below the minimum's rate.
 */
export const LR_FIND_OPTIONS = {
  backbone: { ...TRANSFER_OPTIONS.backbone, required: false, help: 'base network, for a data folder (a run says its own)' },
  alpha: TRANSFER_OPTIONS.alpha,
  weights: TRANSFER_OPTIONS.weights,
  size: TRANSFER_OPTIONS.size,
  scales: TRANSFER_OPTIONS.scales,
  batchSize: TRANSFER_OPTIONS.batchSize,
  startLr: { type: positiveNumber, default: 1e-7, help: 'first learning rate' },
  endLr: { type: positiveNumber, default: 10, help: 'last learning rate' },
  steps: { type: positiveInteger, default: 100, help: 'mini-batches, one per rate' },
  seed: TRANSFER_OPTIONS.seed,
  out: { ...OUT_OPTION, placeholder: '<file>', help: 'the plot, PNG (default RUN/lr-find.png for a run, lr-find.png here for a folder)' },
} satisfies OptionTable;

export interface LrFindOptions {
  /** A `tl train` run (its data, backbone and head settings) or an image folder. */
  source: string;
  backbone?: string;
  alpha?: number;
  weights?: string;
  size?: number;
  scales?: string;
  batchSize?: number;
  startLr?: number;
  endLr?: number;
  steps?: number;
  seed?: number;
}

export interface LrFindResult {
  points: { lr: number; loss: number; smoothed: number }[];
  suggestedLr: number;
  /** The rate of the lowest smoothed loss. */
  minLossLr: number;
  /** The folder whose training split was used, and the run it came from (when given one). */
  dataDir: string;
  run?: string;
}

/** What to test: a run's own data and backbone, or a folder with the options given. */
async function settings(o: ReturnType<typeof resolveOptions<typeof LR_FIND_OPTIONS>>, source: string) {
  const run = await RunDir.open(source).catch(() => undefined);
  if (!run) {
    if (!o.backbone) throw new TlError('--backbone is required for a data folder (a tl train run names its own)');
    return { dataDir: source, backbone: o.backbone, alpha: o.alpha, weights: o.weights, size: o.size, scales: o.scales, valSplit: VAL_SPLIT_OPTION.default, testSplit: TEST_SPLIT_OPTION.default };
  }
  const config = await run.config();
  requireRunKind(run.dir, config, ['transfer'], 'lr-find takes a tl train run (or an image folder)');
  const hp = config.hyperparameters as { alpha?: number; scales?: string; valSplit?: number; testSplit?: number };
  return {
    dataDir: config.dataset.source!,
    backbone: config.backbone!.name,
    alpha: hp.alpha,
    weights: config.backbone!.weights,
    size: config.inputShape[0],
    // Runs from before multi-scale pooling saw the image at one scale.
    scales: hp.scales ?? '1',
    valSplit: hp.valSplit ?? VAL_SPLIT_OPTION.default,
    testSplit: hp.testSplit ?? 0,
    run: run.dir,
  };
}

/** fastai skips the first steps: the moving average is still settling there. */
const SKIP_START = 10;

/** Where the smoothed loss drops fastest per decade of rate (over a 5-step span), before its minimum. */
function steepest(points: LrFindResult['points'], upTo: number): number {
  const span = 5;
  let best = Math.min(SKIP_START, upTo);
  let slope = Infinity;
  for (let i = SKIP_START + span; i <= upTo; i++) {
    const [a, b] = [points[i - span]!, points[i]!];
    const s = (b.smoothed - a.smoothed) / (Math.log10(b.lr) - Math.log10(a.lr));
    if (s < slope) [slope, best] = [s, i - Math.floor(span / 2)];
  }
  return points[best]!.lr;
}

export async function lrFind(opts: LrFindOptions): Promise<LrFindResult> {
  const o = resolveOptions(LR_FIND_OPTIONS, opts);
  const s = await settings(o, path.resolve(opts.source));
  await initBackend();
  const data = await openImageFolder(s.dataDir, { valSplit: s.valSplit, testSplit: s.testSplit, seed: o.seed });
  const inputShape: [number, number, number] = [s.size, s.size, 3];
  const backbone = await loadBackbone({ name: s.backbone, alpha: s.alpha, inputShape, weights: await parseWeightsSource(s.weights), seed: o.seed });
  const skipped = new Map(data.skipped.map((f) => [f.file, f.reason]));
  const { cache, featureShape, extraction } = await cacheFeatures(data, backbone, inputShape, skipped, { augment: 'none', copies: 0, seed: o.seed, tta: false, scales: s.scales });
  const head = buildHead({ featureShape, classes: data.classNames.length, seed: o.seed });
  const train = cachedFeatureSource(data.train, extraction.hashes, cache);
  const optimizer = adam(o.startLr);
  const points: LrFindResult['points'] = [];
  let average = 0;
  let epoch = 0;
  const rng = new Rng(o.seed);
  outer: while (points.length < o.steps) {
    for await (const { x, y } of train.batches(o.batchSize, rng.int(2 ** 31) + epoch++)) {
      const lr = o.startLr * (o.endLr / o.startLr) ** (points.length / Math.max(o.steps - 1, 1));
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const loss = optimizer.minimize(() => sparseCrossEntropy(head.apply(x, { training: true }) as tf.Tensor, y as tf.Tensor1D).loss, true) as tf.Scalar;
      const value = (await loss.data())[0]!;
      tf.dispose([x, y, loss]);
      average = 0.98 * average + 0.02 * value;
      const smoothed = average / (1 - 0.98 ** (points.length + 1));
      points.push({ lr, loss: value, smoothed });
      const min = Math.min(...points.map((p) => p.smoothed));
      if (points.length >= o.steps || smoothed > 4 * min || !Number.isFinite(smoothed)) break outer;
    }
  }
  head.dispose();
  optimizer.dispose();
  const minIndex = points.reduce((m, p, i) => (p.smoothed < points[m]!.smoothed ? i : m), 0);
  return { points, suggestedLr: steepest(points, minIndex), minLossLr: points[minIndex]!.lr, dataDir: data.root, ...(s.run ? { run: s.run } : {}) };
}
