import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openImageFolder } from '../src/data/image-folder.js';
import { trainTransfer } from '../src/training/transfer.js';
import { evaluateRun, openRun, usesTta } from '../src/training/predict.js';
import * as tf from '@tensorflow/tfjs';
import { wilsonInterval, summarize } from '../src/training/metrics.js';
import { balancedClassWeights, imbalanceWarning } from '../src/training/run-facts.js';
import { sparseCrossEntropy } from '../src/training/optimizers.js';
import { initBackend } from '../src/runtime/backend.js';
import { buildHead, foldStandardization } from '../src/models/head.js';
import { standardizeChannels } from '../src/training/feature-cache.js';
import type { EpochRecord, PredictionRecord, RunConfig, RunMetrics } from '../src/artifacts/run.js';
import { runFacts } from '../src/reporting/facts.js';
import { tempDir, tlBin } from './helpers.js';
import { flowerSubset, mobilenet025 } from './transfer-fixtures.js';

process.env.TL_HOME = tempDir('tl-home-');
const env = { ...process.env, TL_QUIET: '1', TL_BACKEND: 'wasm' };

async function readJson<T>(dir: string, name: string): Promise<T> {
  return JSON.parse(await fs.readFile(path.join(dir, name), 'utf8')) as T;
}

const files = (samples: { file: string }[]) => new Set(samples.map((s) => s.file));

test('a folder without test/: the held-out test images are never trained on or used to choose the epoch', async () => {
  const data = await flowerSubset('train', 12);
  const runs = tempDir('tl-runs-');
  const split = await openImageFolder(data, { valSplit: 0.2, testSplit: 0.2, seed: 3 });
  const [train, val, test] = [files(split.train), files(split.val), files(split.test)];
  assert.equal(train.size + val.size + test.size, 60);
  assert.ok([...test].every((f) => !train.has(f) && !val.has(f)));

  const result = await trainTransfer({ dataDir: data, backbone: 'mobilenet', weights: mobilenet025(), epochs: 3, valSplit: 0.2, testSplit: 0.2, seed: 3, out: path.join(runs, 'run') });
  const metrics = await readJson<RunMetrics>(result.runDir, 'metrics.json');
  assert.equal(metrics.evaluatedOn, 'test');
  assert.deepEqual([metrics.dataset.trainCount, metrics.dataset.valCount, metrics.dataset.testCount], [train.size, val.size, test.size]);
  // The scored files are exactly the held-out split: the same one the run trained and validated without.
  const predictions = await readJson<PredictionRecord[]>(result.runDir, 'predictions.json');
  assert.deepEqual(new Set(predictions.map((p) => (p.source as { path: string }).path)), test);
  assert.equal(metrics.restoredBest, true);
  assert.equal(metrics.keptEpoch, metrics.bestEpoch);
  const [low, high] = metrics.test.accuracyCI95!;
  assert.ok(low <= metrics.test.accuracy && metrics.test.accuracy <= high);
  assert.ok(metrics.warnings?.some((w) => /the test set has only 10 images/.test(w)), 'a 10-image test set is called small');
  // The report's run facts say the same.
  const facts = new Map(runFacts(await readJson<RunConfig>(result.runDir, 'run.json'), metrics));
  assert.match(facts.get('measured on')!, /^the test set: accuracy \d+\.\d% \(95% CI /);
  assert.match(facts.get('kept epoch')!, /the best validation loss, restored/);
  assert.match(facts.get('warning')!, /only 10 images/);

  // --test-split 0: the figure is the validation split's, and says so.
  const onVal = await trainTransfer({ dataDir: data, backbone: 'mobilenet', weights: mobilenet025(), epochs: 2, testSplit: 0, restoreBest: false, out: path.join(runs, 'val') });
  assert.equal(onVal.metrics.evaluatedOn, 'validation');
  assert.ok(onVal.metrics.warnings?.some((w) => /measured on the validation split that chose the epoch/.test(w)));
  assert.equal(onVal.metrics.restoredBest, false);
  assert.equal(onVal.metrics.keptEpoch, 2, '--no-restore-best keeps the last epoch');
});

test('tl train --patience stops when validation loss stops improving; augmented copies are cached once', async () => {
  const data = await flowerSubset('train', 8);
  const runs = tempDir('tl-runs-');
  process.env.TL_HOME = tempDir('tl-home-'); // a cache of its own, to count its files
  const first = await trainTransfer({ dataDir: data, backbone: 'mobilenet', weights: mobilenet025(), epochs: 40, lr: 1e-2, patience: 1, augment: 'flip,zoom=0.1', augmentCopies: 2, out: path.join(runs, 'a') });
  const history = await readJson<EpochRecord[]>(first.runDir, 'history.json');
  assert.equal(first.metrics.stoppedEarly, true);
  assert.ok(history.length < 40);
  assert.equal(history.length, first.metrics.bestEpoch! + 1, 'one epoch without improvement, then stop');
  const trainCount = first.metrics.dataset.trainCount;
  assert.equal(first.features.computed, 40, 'the base ran once per image');
  const second = await trainTransfer({ dataDir: data, backbone: 'mobilenet', weights: mobilenet025(), epochs: 1, augment: 'flip,zoom=0.1', augmentCopies: 2, out: path.join(runs, 'b') });
  assert.equal(second.features.computed, 0, 'originals and their augmented copies all come from the cache');
  const cacheFiles = await countFiles(path.join(process.env.TL_HOME!, 'features'));
  assert.equal(cacheFiles, 40 + 2 * trainCount + first.metrics.dataset.testCount, 'one feature vector per image, two more per training image, and a mirror per test image (--tta)');
});

async function countFiles(dir: string): Promise<number> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.f32')).length;
}

test('--augment with an unknown or out-of-range option fails with one line listing the valid ones', () => {
  for (const bad of ['flip,spin=3', 'rotate=500']) {
    const r = spawnSync(process.execPath, [tlBin, 'train', '--backbone', 'mobilenet', '--augment', bad, 'x'], { encoding: 'utf8', env });
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0]!, new RegExp(`'${bad}' is invalid`));
    assert.match(lines[0]!, /--augment .*must be a comma-separated list of flip, rotate=DEGREES \(0-180\), zoom=F.*brightness=F \(0-1\), fill=reflect\|constant, or none/);
    assert.ok(lines.length <= 2, r.stderr);
  }
});

test('accuracy carries a Wilson 95% interval; balanced and top-k accuracy', () => {
  const [low, high] = wilsonInterval(2, 2);
  assert.ok(Math.abs(low - 0.3424) < 1e-3 && high === 1, `2 of 2 right is [34%, 100%], got [${low}, ${high}]`);
  const [l2, h2] = wilsonInterval(80, 100);
  assert.ok(Math.abs(l2 - 0.7112) < 1e-3 && Math.abs(h2 - 0.8667) < 1e-3);
  // 6 of class 0 all right, 2 of class 1 both wrong (ranked 2nd and 4th of 4).
  const samples = [
    ...Array.from({ length: 6 }, () => ({ label: 0, predicted: 0, confidence: 0.9, rank: 1 })),
    { label: 1, predicted: 0, confidence: 0.6, rank: 2 },
    { label: 1, predicted: 2, confidence: 0.5, rank: 4 },
  ];
  const e = summarize(samples, 0, ['a', 'b', 'c', 'd']);
  assert.equal(e.accuracy, 0.75);
  assert.equal(e.balancedAccuracy, 0.5, 'mean recall over the classes present: (1 + 0) / 2');
  assert.deepEqual(e.topK, [{ k: 3, accuracy: 7 / 8 }], 'top-5 needs more than 5 classes');
});

test('an imbalanced folder is called out, and --class-weight balanced weights each class by n / (classes * n_k)', async () => {
  const dir = await flowerSubset('train', 3);
  await flowerSubset('train', 10, 3, dir); // daisy & co. get 13 each...
  for (const label of ['bluebell', 'pansy', 'sunflower', 'tigerlily']) {
    const names = (await fs.readdir(path.join(dir, label))).sort();
    for (const name of names.slice(3)) await fs.rm(path.join(dir, label, name)); // ...then all but daisy go back to 3
  }
  const data = await openImageFolder(dir, { valSplit: 0, testSplit: 0, seed: 1 });
  assert.match(imbalanceWarning(data.train, data.classNames)!, /class counts differ by more than 3x \(daisy: 13, bluebell: 3\).*--class-weight balanced/);
  assert.deepEqual(balancedClassWeights(data.train, 5).map((w) => +w.toFixed(4)), [25 / 15, 25 / 65, 25 / 15, 25 / 15, 25 / 15].map((w) => +w.toFixed(4)));
  const balanced = await openImageFolder(await flowerSubset('train', 4), { valSplit: 0, testSplit: 0, seed: 1 });
  assert.equal(imbalanceWarning(balanced.train, balanced.classNames), undefined);

  await initBackend();
  // A class weight scales that row's loss and gradient: weight 3 on class 1 triples a class-1 batch's loss.
  const probs = tf.tensor2d([[0.2, 0.8], [0.6, 0.4]]);
  const labels = tf.tensor1d([1, 1], 'int32');
  const plain = sparseCrossEntropy(probs, labels).loss.dataSync()[0]!;
  const weighted = sparseCrossEntropy(probs, labels, 0, [1, 3]).loss.dataSync()[0]!;
  assert.ok(Math.abs(weighted - 3 * plain) < 1e-6);
});

test('a standardized head folds mean and std into its first Dense layer: the same outputs on raw features', async () => {
  await initBackend();
  for (const units of [0, 16]) {
    const head = buildHead({ featureShape: [2, 2, 6], classes: 3, units, seed: 5 });
    const x = tf.randomUniform([4, 2, 2, 6], 0, 6, 'float32', 9);
    const stats = { mean: Float32Array.from([0.5, 1, 2, 0, 3, 1.5]), std: Float32Array.from([1, 2, 0.5, 1, 4, 1.5]) };
    const standardized = Float32Array.from(x.dataSync());
    standardizeChannels(standardized, stats);
    const before = (head.predict(tf.tensor(standardized, x.shape)) as tf.Tensor).dataSync();
    foldStandardization(head, stats.mean, stats.std);
    const after = (head.predict(x) as tf.Tensor).dataSync();
    for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i]! - after[i]!) < 1e-5, `units ${units}: ${before[i]} vs ${after[i]}`);
  }
});

test('tl train --finetune-epochs: the head run in OUT-head, then a fine-tuned run in OUT that names it as its parent', async () => {
  process.env.TL_HOME = tempDir('tl-home-');
  const data = await flowerSubset('train', 6);
  const out = path.join(tempDir('tl-runs-'), 'flowers');
  const result = await trainTransfer({ dataDir: data, backbone: 'mobilenet', weights: mobilenet025(), epochs: 2, finetuneEpochs: 1, batchSize: 8, out });
  assert.equal(result.runDir, out);
  assert.equal(result.headRunDir, `${out}-head`);
  const config = await readJson<{ kind: string; parent: string }>(out, 'run.json');
  assert.deepEqual([config.kind, config.parent], ['finetune', `${out}-head`]);
  const history = await readJson<EpochRecord[]>(out, 'history.json');
  assert.deepEqual(history.map((h) => h.phase), ['transfer', 'transfer', 'finetune']);
  assert.equal(result.metrics.evaluatedOn, 'test');
  const head = await readJson<RunMetrics>(`${out}-head`, 'metrics.json');
  const tuned = await readJson<PredictionRecord[]>(out, 'predictions.json');
  assert.equal(tuned.length, head.dataset.testCount, 'the fine-tuned run is scored on the same held-out test split');
});

test('--tta: the run scores each test photo with its mirror, and tl evaluate of the saved run gives the same figures', async () => {
  process.env.TL_HOME = tempDir('tl-home-');
  const root = tempDir('tl-flowers-');
  await flowerSubset('train', 6, 0, path.join(root, 'train'));
  await flowerSubset('test', 4, 0, path.join(root, 'test'));
  const result = await trainTransfer({ dataDir: root, backbone: 'mobilenet', weights: mobilenet025(), epochs: 3, tta: true, out: path.join(tempDir('tl-runs-'), 'tta') });
  const run = await openRun(result.runDir);
  try {
    assert.equal(usesTta(run.config), true);
    const again = await evaluateRun(run, root);
    assert.equal(again.count, 20);
    assert.equal(again.evaluation.accuracy, result.metrics.test.accuracy);
    assert.ok(Math.abs(again.evaluation.loss - result.metrics.test.loss) < 1e-4, `${again.evaluation.loss} vs ${result.metrics.test.loss}`);
  } finally {
    run.model.dispose();
  }
});
