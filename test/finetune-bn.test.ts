import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadLayersModelFromDir } from '../src/models/layers-io.js';
import type { EpochRecord, RunConfig } from '../src/artifacts/run.js';
import { trainTransfer } from '../src/training/transfer.js';
import { finetune, unfreeze } from '../src/training/finetune.js';
import { initBackend } from '../src/runtime/backend.js';
import { tempDir } from './helpers.js';
import { flowerSubset, mobilenet025 } from './transfer-fixtures.js';

process.env.TL_QUIET = '1';

function weightsOf(model: tf.LayersModel, className: string): Map<string, Float32Array[]> {
  return new Map(
    model.layers.filter((l) => l.getClassName() === className).map((l) => [l.name, l.getWeights().map((w) => w.dataSync() as Float32Array)]),
  );
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('fine-tuning trains the convolutions but leaves every BatchNorm moving mean and variance unchanged', async () => {
  process.env.TL_HOME = tempDir('tl-home-');
  await initBackend('wasm');
  const data = await flowerSubset('train', 10);
  const parent = path.join(tempDir('tl-runs-'), 'transfer');
  await trainTransfer({ dataDir: data, backbone: 'mobilenet', weights: mobilenet025(), epochs: 1, size: 64, out: parent });
  const parentModelJson = await fs.readFile(path.join(parent, 'model.json'), 'utf8');

  const { runDir } = await finetune({ run: parent, epochs: 1, lr: 1e-3, batchSize: 16 });
  // Beside the parent, named by the time: a second `tl finetune RUN` gets a folder of its own.
  assert.equal(path.dirname(runDir), path.dirname(parent));
  assert.match(path.basename(runDir), /^transfer-finetune-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d$/);
  assert.equal(await fs.readFile(path.join(parent, 'model.json'), 'utf8'), parentModelJson, 'the parent is untouched');

  const before = await loadLayersModelFromDir(parent);
  const after = await loadLayersModelFromDir(runDir);
  const bnBefore = weightsOf(before, 'BatchNormalization');
  const bnAfter = weightsOf(after, 'BatchNormalization');
  assert.equal(bnBefore.size, 2 * 27, 'MobileNet\'s 27 BatchNorms, in the base and in its copy for the 2x scale (--scales 1,2)');
  let gammaChanged = 0;
  for (const [name, [gamma, beta, mean, variance]] of bnBefore) {
    const [gamma2, beta2, mean2, variance2] = bnAfter.get(name)!;
    assert.equal(maxAbsDiff(mean!, mean2!), 0, `${name} moving_mean`);
    assert.equal(maxAbsDiff(variance!, variance2!), 0, `${name} moving_variance`);
    if (maxAbsDiff(gamma!, gamma2!) > 0 || maxAbsDiff(beta!, beta2!) > 0) gammaChanged++;
  }
  assert.ok(gammaChanged > 40, `gamma/beta still train (${gammaChanged} of 54 changed)`);
  for (const className of ['Conv2D', 'DepthwiseConv2D']) {
    const convBefore = weightsOf(before, className);
    const convAfter = weightsOf(after, className);
    assert.ok(convBefore.size >= 13);
    for (const [name, [kernel]] of convBefore) assert.ok(maxAbsDiff(kernel!, convAfter.get(name)![0]!) > 0, `${name} kernel changed`);
  }

  const config = JSON.parse(await fs.readFile(path.join(runDir, 'run.json'), 'utf8')) as RunConfig;
  assert.equal(config.kind, 'finetune');
  assert.equal(config.parent, parent);
  const history = JSON.parse(await fs.readFile(path.join(runDir, 'history.json'), 'utf8')) as EpochRecord[];
  assert.deepEqual(history.map((h) => [h.epoch, h.phase]), [[1, 'transfer'], [2, 'finetune']]);
  await assert.rejects(finetune({ run: parent, epochs: 1, out: runDir }), /already exists/);

  // --unfreeze N: only the last N layers of the base, in each scale's copy of it, and the head train.
  unfreeze(after, 6);
  const trainable = after.layers.filter((l) => l.trainable && l.trainableWeights.length > 0).map((l) => l.name);
  const top = ['conv_dw_13', 'conv_dw_13_bn', 'conv_pw_13', 'conv_pw_13_bn'];
  assert.deepEqual(new Set(trainable), new Set([...top, ...top.map((name) => `scale2_${name}`), 'head_dense', 'head_predictions']));
  before.dispose();
  after.dispose();
});
