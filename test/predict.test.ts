import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { saveLayersModelToDir } from '../src/models/layers-io.js';
import { RunDir, type RunConfig } from '../src/artifacts/run.js';
import { initBackend } from '../src/runtime/backend.js';
import { openRun, predictFiles, topK } from '../src/training/predict.js';
import { shared, tempDir, tlBin } from './helpers.js';
import { flowerFiles } from './transfer-fixtures.js';

/**
 * A custom-style run (28x28 grayscale, MNIST convention: light ink on black) whose model says
 * "ink" when the mean input is above 3% and "blank" otherwise. A sheet of white paper is blank
 * only if predict inverts light backgrounds as run.json asks.
 */
async function inkRun(dir: string): Promise<void> {
  const input = tf.input({ shape: [28, 28, 1] });
  const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ units: 2, activation: 'softmax' });
  const model = tf.model({ inputs: input, outputs: dense.apply(flat) as tf.SymbolicTensor });
  const kernel = tf.concat([tf.fill([784, 1], 100 / 784), tf.zeros([784, 1])], 1);
  dense.setWeights([kernel, tf.tensor1d([0, 3])]);
  await saveLayersModelToDir(model, dir);
  const config: RunConfig = {
    kind: 'custom',
    createdAt: new Date().toISOString(),
    model: 'ink-detector',
    inputShape: [28, 28, 1],
    preprocessing: { mode: 'scale', scale: 1 / 255, offset: 0, grayscale: true, invertLightBackground: true },
    hyperparameters: {},
    seed: 1,
    dataset: { name: 'synthetic' },
    command: 'test',
  };
  const run = new RunDir(dir);
  await run.write('config', config);
  await run.write('labels', ['ink', 'blank']);
}

async function sheet(file: string, background: number, ink: number | undefined, width = 200, height = 120): Promise<void> {
  const pixels = Buffer.alloc(width * height * 3, background);
  if (ink !== undefined) {
    for (let y = 30; y < 90; y++) for (let x = 90; x < 110; x++) pixels.fill(ink, (y * width + x) * 3, (y * width + x) * 3 + 3);
  }
  await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toFile(file);
}

test('predict on a custom run: 28x28 grayscale input, light backgrounds inverted, shape and preprocessing from run.json', async () => {
  await initBackend('wasm');
  const dir = tempDir('tl-custom-run-');
  await inkRun(dir);
  const images = tempDir('tl-sheets-');
  const files = {
    paper: path.join(images, 'paper.png'),
    pen: path.join(images, 'pen-on-paper.png'),
    chalk: path.join(images, 'chalk-on-slate.png'),
    night: path.join(images, 'night.png'),
  };
  await sheet(files.paper, 250, undefined);
  await sheet(files.pen, 245, 20);
  await sheet(files.chalk, 10, 240);
  await sheet(files.night, 0, undefined);
  const run = await openRun(dir);
  const { predictions, skipped } = await predictFiles(run, Object.values(files), { topK: 2 });
  assert.deepEqual(skipped, []);
  const top1 = Object.fromEntries(predictions.map((p) => [path.basename(p.file, '.png'), p.top[0]!.label]));
  assert.deepEqual(top1, { paper: 'blank', 'pen-on-paper': 'ink', 'chalk-on-slate': 'ink', night: 'blank' });
  run.model.dispose();

  const out = execFileSync(process.execPath, [tlBin, 'predict', dir, files.pen, '--top-k', '1'], { encoding: 'utf8', env: { ...process.env, TL_QUIET: '1' } });
  assert.match(out, /^\S+pen-on-paper\.png\n {2}#1 ink @ \d+\.\d\d%\n$/);
});

test('topK ranks highest first and never lists more classes than exist', () => {
  const ranked = topK([0.1, 0.6, 0.3], ['a', 'b', 'c'], 5);
  assert.deepEqual(ranked.map((r) => [r.rank, r.label]), [[1, 'b'], [2, 'c'], [3, 'a']]);
  assert.equal(topK([0.1, 0.6, 0.3], ['a', 'b', 'c'], 1).length, 1);
});

test('tl classify: ImageNet labels from @tensorflow-models/mobilenet with the local graph model', async () => {
  const daisies = flowerFiles('test', 4).filter((f) => f.label === 'daisy').map((f) => f.file);
  const broken = path.join(tempDir('tl-broken-'), 'broken.jpg');
  await fs.writeFile(broken, 'not a jpeg');
  const out = execFileSync(
    process.execPath,
    [tlBin, 'classify', '--model', shared('backbones', 'mobilenet_v1_0.25_224_graph_tfhub'), '--top-k', '5', '--json', ...daisies, broken],
    { encoding: 'utf8', env: { ...process.env, TL_QUIET: '1' } },
  );
  const result = JSON.parse(out) as { predictions: { top: { label: string; index: number; probability: number }[] }[]; skipped: { file: string }[] };
  assert.equal(result.predictions.length, 4);
  assert.deepEqual(result.skipped.map((s) => s.file), [broken]);
  for (const p of result.predictions) {
    assert.equal(p.top.length, 5);
    assert.ok(p.top.every((t, i) => i === 0 || t.probability <= p.top[i - 1]!.probability));
  }
  const daisyFirst = result.predictions.filter((p) => p.top[0]!.label === 'daisy').length;
  assert.ok(daisyFirst >= 3, `ImageNet "daisy" ranked first for ${daisyFirst} of 4 daisy photos`);
  assert.equal(result.predictions[0]!.top.find((t) => t.label === 'daisy')?.index, 985);
});

test('tl evaluate --log-json logs each batch and the result', async () => {
  await initBackend('wasm');
  const dir = tempDir('tl-custom-run-');
  await inkRun(dir);
  const data = tempDir('tl-sheets-');
  for (const label of ['ink', 'blank']) await fs.mkdir(path.join(data, label));
  await sheet(path.join(data, 'ink', 'pen.png'), 245, 20);
  await sheet(path.join(data, 'ink', 'chalk.png'), 10, 240);
  await sheet(path.join(data, 'blank', 'paper.png'), 250, undefined);
  const log = path.join(tempDir('tl-log-'), 'events.jsonl');
  execFileSync(process.execPath, [tlBin, '--log-json', log, 'evaluate', dir, data, '--json'], { encoding: 'utf8', env: { ...process.env, TL_QUIET: '1' } });
  const events = (await fs.readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string; batch?: number; batches?: number; samples?: number; accuracy?: number });
  assert.deepEqual(events.filter((e) => e.event === 'evaluate-batch').map((e) => [e.batch, e.batches]), [[1, 1]]);
  const result = events.find((e) => e.event === 'evaluate')!;
  assert.equal(result.samples, 3);
  assert.equal(result.accuracy, 1);
});
