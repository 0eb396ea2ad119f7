/**
 * Small but genuine runs for the report tests: real data, real training, real evaluation.
 * - emnistRun: `tl custom train`'s library function on EMNIST ByMerge (47 classes), an MLP for 2 epochs.
 * - flowersFinetuneRun: 5-class photos at 16x16 gray, an MLP trained in two phases (first layer
 *   frozen, then all layers at a lower rate), written as a 'finetune' run whose samples are files.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { shared } from './helpers.js';
import { fetchDataset } from '../src/data/datasets.js';
import { trainCustom } from '../src/training/custom.js';
import { decodeImage } from '../src/data/images.js';
import { fit, type BatchSource } from '../src/training/loop.js';
import { evaluateModel } from '../src/training/metrics.js';
import { initBackend } from '../src/runtime/backend.js';
import { saveLayersModelToDir } from '../src/models/layers-io.js';
import { RunDir, type RunConfig, type RunMetrics, type PredictionRecord } from '../src/artifacts/run.js';
import { Rng } from '../src/util/rng.js';

/** TL_HOME must already point at a temporary cache. */
export async function emnistRun(out: string): Promise<string> {
  await fetchDataset('emnist-bymerge', { from: shared('datasets', 'emnist-bymerge'), quiet: true });
  const { runDir } = await trainCustom({
    dataset: 'emnist-bymerge',
    model: 'mlp',
    resplit: 0.02,
    trainLimit: 10000,
    valSplit: 0.05,
    epochs: 3,
    lr: 3e-3,
    seed: 3,
    mlp: { hidden: [128], dropout: 0 },
    out,
    command: 'report test fixture: trainCustom emnist-bymerge mlp',
  });
  return runDir;
}

const FLOWER_SIZE = 16;

async function loadFlowerFolder(dir: string, classes: string[]): Promise<{ x: Float32Array; y: Int32Array; files: string[] }> {
  const files: string[] = [];
  const labels: number[] = [];
  for (const [k, name] of classes.entries()) {
    for (const f of (await fs.readdir(path.join(dir, name))).sort()) {
      files.push(path.join(dir, name, f));
      labels.push(k);
    }
  }
  const pixels = FLOWER_SIZE * FLOWER_SIZE;
  const x = new Float32Array(files.length * pixels);
  for (const [i, f] of files.entries()) {
    const img = await decodeImage(f, { size: [FLOWER_SIZE, FLOWER_SIZE], channels: 1 });
    for (let p = 0; p < pixels; p++) x[i * pixels + p] = img.data[p]! / 255;
  }
  return { x, y: Int32Array.from(labels), files };
}

function arraySource(x: Float32Array, y: Int32Array): BatchSource {
  const pixels = FLOWER_SIZE * FLOWER_SIZE;
  return {
    size: y.length,
    async *batches(batchSize: number, epochSeed?: number) {
      const order = Array.from({ length: y.length }, (_, i) => i);
      if (epochSeed !== undefined) new Rng(epochSeed).shuffle(order);
      for (let s = 0; s < order.length; s += batchSize) {
        const rows = order.slice(s, s + batchSize);
        const xb = new Float32Array(rows.length * pixels);
        rows.forEach((r, i) => xb.set(x.subarray(r * pixels, (r + 1) * pixels), i * pixels));
        yield { x: tf.tensor4d(xb, [rows.length, FLOWER_SIZE, FLOWER_SIZE, 1]), y: tf.tensor1d(Int32Array.from(rows, (r) => y[r]!), 'int32') };
      }
    },
  };
}

export async function flowersFinetuneRun(out: string): Promise<string> {
  const backend = await initBackend();
  const root = shared('datasets', 'oxford-flowers-5');
  const classes = (await fs.readdir(path.join(root, 'train'))).sort();
  const train = await loadFlowerFolder(path.join(root, 'train'), classes);
  const test = await loadFlowerFolder(path.join(root, 'test'), classes);
  tf.util.seedrandom?.('7');
  const input = tf.input({ shape: [FLOWER_SIZE, FLOWER_SIZE, 1] });
  const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  const hidden = tf.layers.dense({ units: 32, activation: 'relu', name: 'base' });
  const output = tf.layers.dense({ units: classes.length, activation: 'softmax' }).apply(hidden.apply(flat)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  const source = arraySource(train.x, train.y);
  const validation = arraySource(test.x, test.y);
  const common = { batchSize: 32, seed: 7, validation, label: 'flowers epoch' };
  hidden.trainable = false;
  const first = await fit(model, source, { ...common, epochs: 3, lr: 3e-3, phase: 'transfer' });
  hidden.trainable = true;
  const second = await fit(model, source, { ...common, epochs: 3, lr: 1e-3, phase: 'finetune', epochOffset: first.history.length });
  const { evaluation, samples } = await evaluateModel(model, validation, classes);
  const predictions: PredictionRecord[] = samples.map((s, i) => ({ source: { kind: 'file', path: test.files[i]! }, ...s }));
  const history = [...first.history, ...second.history];
  const seconds = first.seconds + second.seconds;
  const metrics: RunMetrics = {
    test: evaluation,
    trainSeconds: seconds,
    backend,
    dataset: { name: 'oxford-flowers-5', split: 'folder train/ and test/', trainCount: train.y.length, valCount: 0, testCount: test.y.length, classes: classes.length },
    imagesPerSecond: history.reduce((a, r) => a + r.imagesPerSecond, 0) / history.length,
    bestEpoch: second.bestEpoch,
  };
  const config: RunConfig = {
    kind: 'finetune',
    createdAt: new Date().toISOString(),
    model: 'mlp-16x16',
    inputShape: [FLOWER_SIZE, FLOWER_SIZE, 1],
    preprocessing: { mode: 'scale', scale: 1 / 255, offset: 0, grayscale: true },
    hyperparameters: { epochs: [3, 3], lr: [3e-3, 1e-3], batchSize: 32, frozen: 'base (phase 1)' },
    seed: 7,
    dataset: { name: 'oxford-flowers-5', source: root },
    command: 'report test fixture: two-phase flowers MLP',
  };
  await fs.mkdir(out, { recursive: true });
  const run = new RunDir(out);
  await saveLayersModelToDir(model, out);
  for (const [name, value] of [['labels', classes], ['history', history], ['predictions', predictions], ['metrics', metrics], ['config', config]] as const) {
    await run.write(name, value);
  }
  model.dispose();
  return out;
}
