import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { getBackbone, loadBackbone, writeKerasH5Weights, writeTfjsWeights, type LoadedBackbone } from '../src/backbones/index.js';
import { fileLoader, loadLayersModelFromDir } from '../src/models/layers-io.js';
import type { EpochRecord, PredictionRecord, RunConfig, RunMetrics } from '../src/artifacts/run.js';
import { decodeImage } from '../src/data/images.js';
import { imagesToTensor } from '../src/data/preprocess.js';
import { compileInference } from '../src/models/fused.js';
import { initBackend } from '../src/runtime/backend.js';
import { sha256File } from '../src/util/hash.js';
import { tempDir, tlBin } from './helpers.js';
import { FLOWER_CLASSES, flowerFiles, flowerSubset } from './transfer-fixtures.js';

/**
 * VGG16 and Xception end to end at 150x150 on a few real flower photos: random init (train,
 * finetune, predict, evaluate, stock loading), then the same random base round-tripped through a
 * Keras .h5 and a tfjs folder, which must give the very same run. Kept small (12 photos, 1 epoch):
 * a VGG16 forward pass at 150x150 is about 7 GMAC per image.
 */

const home = tempDir('tl-home-');
const env = { ...process.env, TL_HOME: home, TL_QUIET: '1', TL_BACKEND: 'wasm' };
const work = tempDir('tl-vgg-xception-');
after(() => Promise.all([home, work].map((d) => fs.rm(d, { recursive: true, force: true }))));

const SIZE = 150;
const INPUT_SHAPE: [number, number, number] = [SIZE, SIZE, 3];
const CLASSES = FLOWER_CLASSES.slice(0, 3);
const PER_CLASS = 4;
const IMAGES = CLASSES.length * PER_CLASS;
const SEED = 1;
/** 1 epoch of batches of 4; 25% validation = one photo per class (also the test split). */
const TRAIN_FLAGS = ['--size', String(SIZE), '--epochs', '1', '--batch-size', '4', '--val-split', '0.25', '--seed', String(SEED)];

/** A held-out photo (flowers test split) of the first class, for predict. */
const probeImage = flowerFiles('test', 1).find((f) => f.label === CLASSES[0])!.file;

function tl(...args: string[]): string {
  return execFileSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function readJson<T>(dir: string, name: string): Promise<T> {
  return JSON.parse(await fs.readFile(path.join(dir, name), 'utf8')) as T;
}

/** 4 photos of each of 3 flower classes, copied into a temporary class-per-folder tree. */
async function smallFolder(): Promise<string> {
  const dir = await flowerSubset('train', PER_CLASS, 0, await fs.mkdtemp(path.join(work, 'flowers-')));
  for (const other of FLOWER_CLASSES.filter((c) => !CLASSES.includes(c))) await fs.rm(path.join(dir, other), { recursive: true });
  return dir;
}

function train(dataDir: string, backbone: string, weights: string, out: string): void {
  assert.match(tl('train', '--backbone', backbone, '--weights', weights, ...TRAIN_FLAGS, '--out', out, dataDir), /accuracy \d+\.\d\d%/);
}

/** Every file of a run, run.json and metrics.json consistent with the folder it was trained on. */
async function assertCompleteRun(dir: string, kind: RunConfig['kind'], backbone: string, phases: EpochRecord['phase'][]): Promise<{ config: RunConfig; metrics: RunMetrics }> {
  for (const f of ['model.json', 'weights.bin', 'labels.json', 'run.json', 'history.json', 'metrics.json', 'predictions.json', 'report.html']) {
    await fs.access(path.join(dir, f));
  }
  const config = await readJson<RunConfig>(dir, 'run.json');
  assert.equal(config.kind, kind);
  assert.deepEqual(config.inputShape, INPUT_SHAPE);
  assert.deepEqual(config.preprocessing, getBackbone(backbone).preprocessing);
  assert.equal(config.backbone?.name, backbone);
  assert.equal(config.backbone?.featureLayer, getBackbone(backbone).featureLayer);
  assert.deepEqual(await readJson<string[]>(dir, 'labels.json'), CLASSES);
  const history = await readJson<EpochRecord[]>(dir, 'history.json');
  assert.deepEqual(history.map((h) => h.phase), phases);
  assert.ok(history.every((h) => Number.isFinite(h.loss)), 'finite training loss');

  const metrics = await readJson<RunMetrics>(dir, 'metrics.json');
  assert.equal(metrics.backend, 'wasm');
  assert.ok(metrics.trainSeconds > 0);
  assert.deepEqual([metrics.dataset.trainCount, metrics.dataset.valCount, metrics.dataset.testCount], [9, 3, 3]);
  assert.equal(metrics.dataset.classes, CLASSES.length);
  const { accuracy, loss, confusion, perClass } = metrics.test;
  assert.ok(accuracy >= 0 && accuracy <= 1 && Number.isFinite(loss), `accuracy ${accuracy}, loss ${loss}`);
  assert.deepEqual(perClass.map((c) => c.label), CLASSES);
  assert.equal(confusion.flat().reduce((a, b) => a + b, 0), metrics.dataset.testCount);
  const predictions = await readJson<PredictionRecord[]>(dir, 'predictions.json');
  assert.equal(predictions.length, metrics.dataset.testCount);
  assert.ok(predictions.every((p) => p.source.kind === 'file' && p.predicted >= 0 && p.predicted < CLASSES.length && p.confidence > 0 && p.confidence <= 1));
  assert.match(await fs.readFile(path.join(dir, 'report.html'), 'utf8'), new RegExp(`<title>${config.model.replace('+', '\\+')} on `));
  return { config, metrics };
}

interface Ranked {
  rank: number;
  label: string;
  probability: number;
}

/** `tl predict RUN IMAGE --json` with every class ranked: checked to be a ranking that sums to 1. */
function predictAll(run: string, image: string): Ranked[] {
  const out = JSON.parse(tl('predict', run, image, '--top-k', String(CLASSES.length), '--json')) as { predictions: { file: string; top: Ranked[] }[] };
  assert.equal(out.predictions.length, 1);
  assert.equal(out.predictions[0]!.file, path.resolve(image));
  const top = out.predictions[0]!.top;
  assert.deepEqual(top.map((t) => t.rank), [1, 2, 3]);
  assert.deepEqual([...top.map((t) => t.label)].sort(), [...CLASSES].sort());
  for (let i = 1; i < top.length; i++) assert.ok(top[i - 1]!.probability >= top[i]!.probability, 'ranked by probability');
  const sum = top.reduce((a, t) => a + t.probability, 0);
  assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
  return top;
}

/**
 * The run's model.json read by stock `tf.loadLayersModel` gives the probabilities and top-1 of tl
 * predict (which averages each picture with its mirror when the run was trained with --tta).
 */
async function assertStockAgrees(run: string, image: string, ranked: Ranked[]): Promise<void> {
  const config = await readJson<RunConfig>(run, 'run.json');
  const stock = await tf.loadLayersModel(fileLoader(path.join(run, 'model.json')));
  const img = await decodeImage(image, { size: [SIZE, SIZE], channels: 3 });
  const tta = (config.hyperparameters as { tta?: boolean }).tta === true;
  const probs = tf.tidy(() => {
    const x = imagesToTensor([img], config.preprocessing);
    const p = stock.predict(x) as tf.Tensor;
    return tta ? tf.div(tf.add(p, stock.predict(tf.reverse(x, 2)) as tf.Tensor), 2) : p;
  }).dataSync();
  stock.dispose();
  for (const r of ranked) {
    const p = probs[CLASSES.indexOf(r.label)]!;
    assert.ok(Math.abs(p - r.probability) < 1e-5, `${run}: ${r.label} ${p} (stock) vs ${r.probability} (tl predict)`);
  }
  // Random bases can give near-ties; top-1 is only meaningful where the margin exceeds float noise.
  if (ranked[0]!.probability - ranked[1]!.probability > 1e-5) {
    assert.equal(CLASSES[probs.indexOf(Math.max(...probs))], ranked[0]!.label, `${run}: top-1`);
  }
}

/** Max |difference| of each weight of two runs' models with the same layers: layer -> weight -> diff. */
async function weightChanges(a: string, b: string): Promise<Map<string, Map<string, number>>> {
  const [ma, mb] = await Promise.all([loadLayersModelFromDir(a), loadLayersModelFromDir(b)]);
  const changes = new Map<string, Map<string, number>>();
  for (const layer of ma.layers) {
    const wb = mb.getLayer(layer.name).getWeights();
    const diffs = layer.getWeights().map((w, i) => [layer.weights[i]!.originalName.split('/').pop()!, tf.tidy(() => tf.max(tf.abs(tf.sub(w, wb[i]!))).dataSync()[0]!)] as const);
    changes.set(layer.name, new Map(diffs));
  }
  ma.dispose();
  mb.dispose();
  return changes;
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Every weight of `loaded` bit-identical to `original`'s, and the features of a real photo too. */
async function assertSameBase(original: LoadedBackbone, loaded: LoadedBackbone, what: string): Promise<void> {
  for (const layer of original.model.layers) {
    const theirs = loaded.model.getLayer(layer.name).getWeights();
    layer.getWeights().forEach((w, i) => assert.ok(sameBytes(w.dataSync(), theirs[i]!.dataSync()), `${what}: ${layer.weights[i]!.originalName}`));
  }
  const img = await decodeImage(probeImage, { size: [SIZE, SIZE], channels: 3 });
  const x = imagesToTensor([img], original.spec.preprocessing);
  const [a, b] = [original, loaded].map((m) => (m.model.predict(x) as tf.Tensor).dataSync());
  assert.ok(a!.some((v) => v !== 0), 'features are not all zero');
  assert.ok(sameBytes(a!, b!), `${what}: features of a real photo`);
  // Training reads features from the fused inference plan, predict from the layers model: they agree.
  const plan = compileInference(loaded.model);
  const fused = tf.tidy(() => plan.run(x).dataSync());
  plan.dispose();
  x.dispose();
  const scale = Math.max(...Array.from(a!, Math.abs));
  const worst = Math.max(...Array.from(fused, (v, i) => Math.abs(v - a![i]!)));
  assert.ok(worst <= 1e-5 * scale, `${what}: fused features differ by ${worst} (largest feature ${scale})`);
}

interface Case {
  backbone: 'vgg16' | 'xception';
  /** --unfreeze for the fine-tuning run. */
  unfreeze: string;
  /** Which layers fine-tuning must change (all others stay bit-identical, as do BatchNorm statistics). */
  trains: (layer: string) => boolean;
}

const CASES: Case[] = [
  // The last block only (block5_conv1..3 + block5_pool): all 13 convs through wasm would be slow.
  { backbone: 'vgg16', unfreeze: '4', trains: (layer) => /^(block5_|head_)/.test(layer) },
  { backbone: 'xception', unfreeze: 'all', trains: () => true },
];

for (const c of CASES) {
  test(`${c.backbone} at ${SIZE}x${SIZE}: train, finetune, predict, evaluate from random and from round-tripped weights`, async (t) => {
    await initBackend('wasm');
    const data = await smallFolder();
    const none = path.join(work, `${c.backbone}-none`);

    await t.test('--weights none: a complete transfer run', async () => {
      train(data, c.backbone, 'none', none);
      const { config, metrics } = await assertCompleteRun(none, 'transfer', c.backbone, ['transfer']);
      assert.equal(config.backbone?.weights, `none (random init, seed ${SEED})`);
      assert.equal(config.backbone?.weightsSha256, undefined);
      assert.equal((metrics.dataset.featureCache as { computed: number }).computed, IMAGES);
      await assertStockAgrees(none, probeImage, predictAll(none, probeImage));
    });

    await t.test(`finetune --unfreeze ${c.unfreeze}: a new run with the parent named, only the unfrozen weights changed`, async () => {
      const tuned = path.join(work, `${c.backbone}-finetune`);
      assert.match(tl('finetune', none, '--unfreeze', c.unfreeze, '--epochs', '1', '--lr', '1e-4', '--out', tuned), /accuracy \d+\.\d\d%/);
      const { config } = await assertCompleteRun(tuned, 'finetune', c.backbone, ['transfer', 'finetune']);
      assert.equal(config.parent, none);
      const ft = (config.hyperparameters as { finetune: { unfreeze: string | number; unfrozenLayers: number; batchNorm: string } }).finetune;
      assert.equal(String(ft.unfreeze), c.unfreeze);
      if (c.unfreeze !== 'all') assert.equal(ft.unfrozenLayers, Number(c.unfreeze));
      await fs.access(path.join(none, 'run.json')); // the parent is left in place
      for (const [layer, weights] of await weightChanges(none, tuned)) {
        const trained = [...weights].filter(([w]) => !w.startsWith('moving_'));
        for (const [w, diff] of weights) if (w.startsWith('moving_')) assert.equal(diff, 0, `${layer}/${w}: BatchNorm statistics stay frozen`);
        if (trained.length === 0) continue;
        // Per layer, not per weight: a deep random base passes some weights gradients below float resolution.
        assert.equal(trained.some(([, diff]) => diff > 0), c.trains(layer), `${layer}: ${trained.map(([w, d]) => `${w} changed by ${d}`).join(', ')}`);
      }

      await assertStockAgrees(tuned, probeImage, predictAll(tuned, probeImage));
      const evaluated = JSON.parse(tl('evaluate', tuned, data, '--json')) as {
        images: number;
        evaluation: { accuracy: number; confusion: number[][]; perClass: { label: string }[] };
        misclassified: { file: string; label: string; predicted: string }[];
      };
      assert.equal(evaluated.images, IMAGES);
      assert.equal(evaluated.evaluation.confusion.flat().reduce((a, b) => a + b, 0), IMAGES);
      assert.deepEqual(evaluated.evaluation.perClass.map((p) => p.label), CLASSES);
      assert.equal(evaluated.misclassified.length, Math.round(IMAGES * (1 - evaluated.evaluation.accuracy)));
      assert.ok(evaluated.misclassified.every((m) => m.label !== m.predicted && path.basename(path.dirname(m.file)) === m.label));
    });

    await t.test('the random base written as Keras .h5 and as a tfjs folder reloads bit-identical and trains the same run', async () => {
      const original = await loadBackbone({ name: c.backbone, weights: 'none', inputShape: INPUT_SHAPE, seed: SEED });
      const h5 = path.join(work, `${c.backbone}-random.h5`);
      const folder = path.join(work, `${c.backbone}-random-tfjs`);
      await writeKerasH5Weights(original.model, h5);
      await writeTfjsWeights(original.model, folder);
      const expectedSha = { [h5]: await sha256File(h5), [folder]: await sha256File(path.join(folder, 'weights.bin')) };
      for (const file of [h5, folder]) {
        const loaded = await loadBackbone({ name: c.backbone, weights: file, inputShape: INPUT_SHAPE });
        assert.equal(loaded.weightsSha256, expectedSha[file]);
        await assertSameBase(original, loaded, file);
        loaded.model.dispose();
      }
      original.model.dispose();

      // Same base, data, seed and flags as the --weights none run: the same head, bit for bit.
      const noneWeights = await sha256File(path.join(none, 'weights.bin'));
      const nonePredictions = await readJson<PredictionRecord[]>(none, 'predictions.json');
      const nonePredicted = predictAll(none, probeImage);
      for (const file of [h5, folder]) {
        const run = path.join(work, `${c.backbone}-from-${path.basename(file)}`);
        train(data, c.backbone, file, run);
        const { config, metrics } = await assertCompleteRun(run, 'transfer', c.backbone, ['transfer']);
        assert.equal(config.backbone?.weights, file);
        assert.equal(config.backbone?.weightsSha256, expectedSha[file]);
        assert.equal((metrics.dataset.featureCache as { computed: number }).computed, IMAGES, 'the base ran (no cache entry is shared with the random run)');
        assert.equal(await sha256File(path.join(run, 'weights.bin')), noneWeights, `${run}: weights.bin equals the --weights none run's`);
        assert.deepEqual(await readJson<PredictionRecord[]>(run, 'predictions.json'), nonePredictions);
        assert.deepEqual(predictAll(run, probeImage), nonePredicted);
      }
    });
  });
}
