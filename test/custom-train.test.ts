import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { shared, tempDir, tlBin } from './helpers.js';
import { fetchDataset } from '../src/data/datasets.js';
import { trainCustom, evaluateCustomRun } from '../src/training/custom.js';
import { loadLayersModelFromDir } from '../src/models/layers-io.js';
import type { EpochRecord, RunMetrics, RunConfig } from '../src/artifacts/run.js';

const home = tempDir('tl-custom-home-');
process.env.TL_HOME = home;
process.env.TL_QUIET = '1';
const env = { ...process.env, TL_HOME: home, TL_QUIET: '1' };

before(async () => {
  await fetchDataset('fashion-mnist', { from: shared('datasets', 'fashion-mnist'), quiet: true });
});

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

test('seed-mlp on 3,000 Fashion-MNIST images writes a complete run and generalises', async () => {
  const out = path.join(tempDir(), 'run');
  const { runDir, metrics } = await trainCustom({ dataset: 'fashion-mnist', model: 'seed-mlp', epochs: 3, trainLimit: 3000, out });
  assert.equal(runDir, out);
  for (const f of ['model.json', 'weights.bin', 'labels.json', 'run.json', 'history.json', 'metrics.json', 'predictions.json']) {
    assert.ok(existsSync(path.join(out, f)), `${f} missing`);
  }
  assert.ok(!existsSync(`${out}.partial`), 'work dir left behind');
  assert.ok(!existsSync(path.join(out, 'checkpoint')), 'checkpoint left in a finished run');
  // 3,000 images and 3 epochs is far from converged, but far above chance (10%).
  assert.ok(metrics.test.accuracy > 0.7, `accuracy ${metrics.test.accuracy}`);
  assert.equal(metrics.dataset.trainCount, 3000);
  assert.equal(metrics.dataset.testCount, 10000);
  assert.equal(metrics.test.confusion.length, 10);
  const total = metrics.test.confusion.flat().reduce((a, b) => a + b, 0);
  assert.equal(total, 10000);
  const labels = readJson<string[]>(path.join(out, 'labels.json'));
  assert.deepEqual(metrics.test.perClass.map((c) => c.label), labels);
  assert.equal(labels[9], 'Ankle boot');
  const history = readJson<EpochRecord[]>(path.join(out, 'history.json'));
  assert.equal(history.length, 3);
  for (const h of history) assert.ok(h.val_loss !== undefined && h.val_acc !== undefined && h.imagesPerSecond > 0);
  const onDisk = readJson<RunMetrics>(path.join(out, 'metrics.json'));
  assert.equal(onDisk.test.accuracy, metrics.test.accuracy);
  assert.ok(['wasm', 'tensorflow', 'cpu'].includes(onDisk.backend));

  // The saved model reproduces the recorded test accuracy.
  const again = await evaluateCustomRun(out);
  assert.ok(Math.abs(again.metrics.accuracy - metrics.test.accuracy) < 1e-9);
});

test('the same seed gives the same weights; another seed does not', async () => {
  const weights = async (seed: number) => {
    const out = path.join(tempDir(), 'run');
    await trainCustom({ dataset: 'fashion-mnist', model: 'seed-mlp', epochs: 1, trainLimit: 600, seed, out });
    const model = await loadLayersModelFromDir(out);
    const w = Array.from(model.getWeights()[0]!.dataSync().slice(0, 2000));
    model.dispose();
    return w;
  };
  const a = await weights(7);
  const b = await weights(7);
  const c = await weights(8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('early stopping keeps the epoch with the best validation loss', async () => {
  const out = path.join(tempDir(), 'run');
  // A learning rate this high makes validation loss bounce, so the best epoch is rarely the last.
  const { metrics } = await trainCustom({ dataset: 'fashion-mnist', model: 'mlp', mlp: { hidden: [64] }, epochs: 6, lr: 0.05, patience: 2, trainLimit: 2000, out });
  const history = readJson<EpochRecord[]>(path.join(out, 'history.json'));
  const best = history.reduce((a, b) => (b.val_loss! < a.val_loss! ? b : a));
  assert.equal(metrics.bestEpoch, best.epoch);
  const lastImproved = history.findIndex((h) => h.epoch === best.epoch);
  if (metrics.stoppedEarly) assert.equal(history.length - 1 - lastImproved, 2);
  const config = readJson<RunConfig>(path.join(out, 'run.json'));
  assert.equal(config.hyperparameters.patience, 2);
});

function runCli(args: string[]) {
  return spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env });
}

test('bad input is one line naming the problem, with a non-zero exit and nothing written', () => {
  const dir = tempDir();
  // A path below a regular file can never be created, whoever runs the test (root ignores modes).
  const aFile = path.join(dir, 'not-a-dir');
  writeFileSync(aFile, '');
  const cases: [string[], RegExp][] = [
    [['custom', 'train', '--dataset', 'fashion-mnist', '--model', 'resnet9000', '--out', path.join(dir, 'a')], /argument 'resnet9000' is invalid\. It must be one of cnn, mlp, seed-cnn/],
    [['custom', 'train', '--dataset', 'mnist-of-cats', '--out', path.join(dir, 'b')], /mnist-of-cats/],
    [['custom', 'train', '--dataset', 'fashion-mnist', '--epochs', '1', '--train-limit', '100', '--out', path.join(aFile, 'run')], /not-a-dir\/run: cannot be created \(.*not-a-dir is a file, not a folder\); choose another --out/],
    [['custom', 'evaluate', dir], /is not a tl run/],
  ];
  for (const [args, pattern] of cases) {
    const r = runCli(args);
    assert.notEqual(r.status, 0, args.join(' '));
    // One line; a usage error adds only the pointer to the command's help.
    const lines = r.stderr.trim().split('\n').filter((l) => !/^see `tl [a-z ]+ --help`$/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, pattern);
  }
  assert.ok(!existsSync(path.join(dir, 'a')) && !existsSync(path.join(dir, 'b')));
});

test('an existing run directory is never overwritten', () => {
  const out = tempDir();
  mkdirSync(path.join(out, 'keep'));
  const r = runCli(['custom', 'train', '--dataset', 'fashion-mnist', '--epochs', '1', '--out', out]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /already exists; pass a new --out/);
  assert.ok(existsSync(path.join(out, 'keep')));
});

test('Ctrl-C during training keeps the last good checkpoint and still writes the run', async () => {
  const out = path.join(tempDir(), 'run');
  const child = spawn(process.execPath, [tlBin, 'custom', 'train', '--dataset', 'fashion-mnist', '--model', 'seed-mlp', '--epochs', '50', '--patience', '0', '--train-limit', '3000', '--out', out], { env: { ...env, TL_QUIET: '0' } });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!sent && /epoch 2: loss/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  // 130, as a shell reports Ctrl-C, but the run is complete and marked interrupted.
  assert.equal(code, 130, stderr);
  const metrics = readJson<RunMetrics>(path.join(out, 'metrics.json'));
  assert.equal(metrics.interrupted, true);
  const history = readJson<EpochRecord[]>(path.join(out, 'history.json'));
  assert.ok(history.length >= 2 && history.length < 50, `history has ${history.length} epochs`);
  const model = await loadLayersModelFromDir(out);
  assert.equal(model.outputs[0]!.shape[1], 10);
  tf.dispose(model.getWeights());
});
