/**
 * tl embedded in an application: the README's library example runs as written (paths aside), and
 * afterwards the process is as it was: Math.random, tfjs-layers' BatchNormalization, the registered
 * gradients, the SIGINT listeners and stderr are untouched, and a stock tfjs model trains exactly as
 * it did before tl ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { createRuntime } from '../src/index.js';
import { repoRoot, sharedDir, tempDir } from './helpers.js';
import type { EpochRecord } from '../src/artifacts/run.js';

/** The README's example, with its imports pointed at this checkout and its runs in a temp folder. */
function readmeExample(runs: string): string {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const block = /<!-- library-example -->\n```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has no library example');
  return block[1]!
    .replace(`from 'tl'`, `from ${JSON.stringify(pathToFileURL(path.join(repoRoot, 'src', 'index.ts')).href)}`)
    .replaceAll(`'../shared/`, `'${sharedDir}/`)
    .replaceAll(`'runs/`, `'${runs}/`);
}

/** What tl must leave as it found it. */
function processState() {
  const batchNorm = tf.serialization.SerializationMap.getMap().classNameMap['BatchNormalization']![0].prototype as { call: unknown };
  return {
    random: Math.random,
    batchNormCall: batchNorm.call,
    gradients: ['Relu', 'FusedConv2D', 'FusedBatchNorm', 'TlConvReluPool', 'Conv2D', 'DepthwiseConv2dNative'].map((k) => tf.getGradient(k)),
    sigint: process.listeners('SIGINT').length,
    env: JSON.stringify(process.env),
  };
}

/** A stock tfjs model (Dense, BatchNorm, Dropout with a fixed seed) trained with model.fit from fixed weights. */
async function stockFit(initial?: tf.Tensor[]): Promise<{ weights: Float32Array[]; initial: tf.Tensor[] }> {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [12], units: 16, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      tf.layers.batchNormalization(),
      tf.layers.dropout({ rate: 0.3, seed: 5 }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
  if (initial) model.setWeights(initial);
  const start = initial ?? model.getWeights().map((w) => w.clone());
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'sparseCategoricalCrossentropy' });
  const xs = tf.tensor2d(Array.from({ length: 64 * 12 }, (_, i) => Math.sin(i * 0.37)), [64, 12]);
  const ys = tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 3), 'float32');
  await model.fit(xs, ys, { epochs: 3, batchSize: 16, shuffle: false, verbose: 0 });
  const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([xs, ys]);
  model.dispose();
  return { weights, initial: start };
}

test("the README's library example trains, fine-tunes and classifies, and leaves the process as it was", async () => {
  const runtime = await createRuntime({ backend: 'wasm' });
  assert.equal(runtime.backend, 'wasm');
  const before = processState();
  const stockBefore = await stockFit();

  const stderr: string[] = [];
  const stdout: string[] = [];
  const write = { err: process.stderr.write, out: process.stdout.write };
  process.stderr.write = ((chunk: string | Uint8Array) => (stderr.push(chunk.toString()), true)) as typeof process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => (stdout.push(chunk.toString()), true)) as typeof process.stdout.write;
  const runs = tempDir('tl-library-');
  const script = path.join(runs, 'example.mts'); // .mts: an ES module (top-level await) outside the package
  writeFileSync(script, readmeExample(runs));
  try {
    await import(pathToFileURL(script).href);
  } finally {
    process.stderr.write = write.err;
    process.stdout.write = write.out;
  }

  // The example did its work: two complete runs, five epochs reported by the callback, daisies classified.
  for (const run of ['flowers-lib', 'flowers-lib-ft']) assert.ok(existsSync(path.join(runs, run, 'model.json')), `${run} missing`);
  const history = JSON.parse(readFileSync(path.join(runs, 'flowers-lib-ft', 'history.json'), 'utf8')) as EpochRecord[];
  assert.deepEqual(history.map((h) => h.phase), ['transfer', 'transfer', 'transfer', 'transfer', 'transfer', 'finetune']);
  const printed = stdout.join('');
  assert.equal(printed.match(/^epoch \d: val_acc /gm)?.length, 5, printed);
  const daisies = printed.split('\n').filter((l) => l.includes('/test/daisy/'));
  assert.equal(daisies.length, 20, printed);
  const right = daisies.filter((l) => l.split(' ')[1] === 'daisy').length;
  assert.ok(right >= 18, `${right} of 20 daisies classified as daisy`);

  // Nothing changed in the process, and nothing was printed on stderr without a sink.
  assert.deepEqual(stderr, []);
  const after = processState();
  assert.equal(after.random, before.random, 'Math.random was replaced');
  assert.equal(after.batchNormCall, before.batchNormCall, 'BatchNormalization.prototype.call was replaced');
  after.gradients.forEach((g, i) => assert.equal(g, before.gradients[i], `gradient ${i} was replaced`));
  assert.equal(after.sigint, before.sigint, 'a SIGINT listener was left behind');
  assert.equal(after.env, before.env, 'the environment was changed');

  // A stock model trains exactly as it did before tl ran.
  const stockAfter = await stockFit(stockBefore.initial);
  stockAfter.weights.forEach((w, i) => assert.deepEqual(w, stockBefore.weights[i], `stock weight ${i} differs after tl ran`));
  tf.dispose(stockBefore.initial);
});

test('an aborted signal stops library training after the current batch, with the run marked interrupted', async () => {
  const runtime = await createRuntime({ backend: 'wasm' });
  const controller = new AbortController();
  const batches: number[] = [];
  const out = path.join(tempDir('tl-library-abort-'), 'run');
  const { metrics } = await runtime.train({
    dataDir: path.join(sharedDir, 'datasets', 'oxford-flowers-5', 'train'),
    backbone: 'mobilenet',
    weights: path.join(sharedDir, 'backbones', 'mobilenet_v1_0.25_224'),
    epochs: 50,
    batchSize: 8,
    out,
    signal: controller.signal,
    callbacks: {
      onBatchEnd: (b) => {
        batches.push(b.batch);
        if (b.epoch === 2 && b.batch === 5) controller.abort();
      },
    },
  });
  assert.equal(metrics.interrupted, true);
  const history = JSON.parse(readFileSync(path.join(out, 'history.json'), 'utf8')) as EpochRecord[];
  assert.equal(history.length, 1);
  assert.equal(batches.length, Math.ceil(metrics.dataset.trainCount / 8) + 5, 'no batch ran after the abort');
});
