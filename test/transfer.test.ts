import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { decodeImage } from '../src/data/images.js';
import { imagesToTensor } from '../src/data/preprocess.js';
import { initBackend } from '../src/runtime/backend.js';
import type { RunConfig, RunMetrics, EpochRecord, PredictionRecord } from '../src/artifacts/run.js';
import { tempDir, tlBin } from './helpers.js';
import { FLOWER_CLASSES, flowerSubset, mobilenet025 } from './transfer-fixtures.js';

const home = tempDir('tl-home-');
const env = { ...process.env, TL_HOME: home, TL_QUIET: '1', TL_BACKEND: 'wasm' };

function tl(...args: string[]): string {
  return execFileSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function readJson<T>(dir: string, name: string): Promise<T> {
  return JSON.parse(await fs.readFile(path.join(dir, name), 'utf8')) as T;
}

/** model.json + weights.bin through tf.io.fromMemory: nothing of tl's own loading code involved. */
async function loadStock(dir: string): Promise<tf.LayersModel> {
  const json = await readJson<{ modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] }>(dir, 'model.json');
  const buffers = await Promise.all(json.weightsManifest.flatMap((g) => g.paths).map((p) => fs.readFile(path.join(dir, p))));
  const all = Buffer.concat(buffers);
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  return tf.loadLayersModel(tf.io.fromMemory(json.modelTopology, weightSpecs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)));
}

test('tl train -> evaluate -> predict on real flower photos, with the feature cache reused by a second run', async () => {
  const train = await flowerSubset('train', 8);
  const testDir = await flowerSubset('test', 4);
  const runs = tempDir('tl-runs-');
  const run = path.join(runs, 'first');
  const out = tl('train', '--backbone', 'mobilenet', '--weights', mobilenet025(), '--epochs', '2', '--out', run, train);
  assert.match(out, /accuracy \d+\.\d\d%/);

  for (const f of ['model.json', 'weights.bin', 'labels.json', 'run.json', 'history.json', 'metrics.json', 'predictions.json']) {
    await fs.access(path.join(run, f));
  }
  const config = await readJson<RunConfig>(run, 'run.json');
  assert.equal(config.kind, 'transfer');
  assert.deepEqual(config.inputShape, [150, 150, 3]);
  assert.deepEqual(config.preprocessing, { mode: 'scale', scale: 1 / 127.5, offset: -1, grayscale: false });
  assert.equal(config.backbone?.name, 'mobilenet');
  assert.match(config.backbone?.weightsSha256 ?? '', /^[0-9a-f]{64}$/);
  assert.equal((config.hyperparameters as { alpha?: number }).alpha, 0.25, 'the width comes from the weights');
  assert.deepEqual(await readJson<string[]>(run, 'labels.json'), FLOWER_CLASSES);
  const history = await readJson<EpochRecord[]>(run, 'history.json');
  assert.deepEqual(history.map((h) => [h.epoch, h.phase]), [[1, 'transfer'], [2, 'transfer']]);
  const metrics = await readJson<RunMetrics>(run, 'metrics.json');
  assert.equal(metrics.dataset.trainCount + metrics.dataset.valCount + metrics.dataset.testCount, 40, 'three disjoint splits (no test/ tree: 10% held out as test)');
  assert.equal(metrics.evaluatedOn, 'test');
  assert.deepEqual(metrics.dataset.featureCache, { computed: 40, reused: 0, seconds: (metrics.dataset.featureCache as { seconds: number }).seconds });
  const predictions = await readJson<PredictionRecord[]>(run, 'predictions.json');
  assert.equal(predictions.length, metrics.dataset.testCount);
  assert.ok(predictions.every((p) => p.source.kind === 'file'));

  // Same data, same base: every feature comes from the cache, the base never runs.
  const second = path.join(runs, 'second');
  tl('train', '--backbone', 'mobilenet', '--weights', mobilenet025(), '--epochs', '1', '--out', second, train);
  const m2 = await readJson<RunMetrics>(second, 'metrics.json');
  assert.equal((m2.dataset.featureCache as { computed: number }).computed, 0);
  assert.equal((m2.dataset.featureCache as { reused: number }).reused, 40);

  const evaluation = JSON.parse(tl('evaluate', run, testDir, '--json')) as {
    images: number;
    evaluation: { accuracy: number; confusion: number[][]; perClass: { label: string; f1: number }[] };
    misclassified: { file: string; label: string; predicted: string }[];
  };
  assert.equal(evaluation.images, 20);
  assert.equal(evaluation.evaluation.confusion.flat().reduce((a, b) => a + b, 0), 20);
  assert.deepEqual(evaluation.evaluation.perClass.map((c) => c.label), FLOWER_CLASSES);
  assert.ok(evaluation.evaluation.accuracy > 0.6, `accuracy ${evaluation.evaluation.accuracy} on held-out photos (chance is 0.2)`);
  assert.equal(evaluation.misclassified.length, Math.round(20 * (1 - evaluation.evaluation.accuracy)));
  assert.match(tl('evaluate', run, testDir), /true\\pred/);

  const predicted = JSON.parse(tl('predict', run, testDir, '--top-k', '3', '--json')) as {
    predictions: { file: string; top: { rank: number; label: string; probability: number }[] }[];
  };
  assert.equal(predicted.predictions.length, 20);
  for (const p of predicted.predictions) {
    assert.deepEqual(p.top.map((t) => t.rank), [1, 2, 3]);
    assert.ok(p.top[0]!.probability >= p.top[1]!.probability && p.top[1]!.probability >= p.top[2]!.probability);
  }
  const text = tl('predict', run, path.join(testDir, 'daisy'), '--top-k', '2').trimEnd().split('\n');
  assert.equal(text.length, 4 * 3);
  assert.match(text[1]!, /^ {2}#1 (bluebell|daisy|pansy|sunflower|tigerlily) @ \d{1,3}\.\d\d%$/);

  // The exported model, loaded by stock tfjs, agrees with tl predict on every test image.
  await initBackend('wasm');
  const stock = await loadStock(run);
  for (const p of predicted.predictions) {
    const img = await decodeImage(p.file, { size: [150, 150], channels: 3 });
    const probs = tf.tidy(() => stock.predict(imagesToTensor([img], config.preprocessing)) as tf.Tensor);
    const top1 = (await probs.argMax(-1).data())[0]!;
    assert.equal(FLOWER_CLASSES[top1], p.top[0]!.label, p.file);
    probs.dispose();
  }
  stock.dispose();
});

test('bad inputs to train, predict and evaluate are one line each', async () => {
  const fail = (...args: string[]) => {
    const r = spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env });
    assert.notEqual(r.status, 0, args.join(' '));
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    return lines[0]!;
  };
  const empty = tempDir('tl-empty-');
  assert.match(fail('train', '--backbone', 'mobilenet', '--weights', mobilenet025(), empty), /^tl: .*is empty/);
  assert.match(fail('train', '--backbone', 'nonet', '--weights', 'none', await flowerSubset('train', 2)), /^tl: unknown backbone "nonet"/);
  assert.match(fail('train', '--backbone', 'mobilenet', '--weights', mobilenet025(), '--size', '8', empty), /^tl: --size must be/);
  assert.match(fail('predict', empty, 'x.jpg'), /^tl: .*is not a tl run/);
  assert.match(fail('evaluate', path.join(empty, 'nope'), empty), /^tl: .*is not a tl run/);
});
