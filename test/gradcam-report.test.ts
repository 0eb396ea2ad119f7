import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import * as tf from '@tensorflow/tfjs';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { relativeError, shared, tempDir, tlBin } from './helpers.js';
import { flowerBatch } from './onnx-fixtures.js';
import type { RunConfig } from '../src/artifacts/run.js';
import { multiOutputEngine } from '../src/models/engine.js';
import { loadLayersModelFromDir } from '../src/models/layers-io.js';
import { buildHead, joinBaseAndHead } from '../src/models/head.js';
import { gradCam, splitAtFeatureLayer } from '../src/reporting/gradcam.js';
import { initBackend } from '../src/runtime/backend.js';
import { AUGMENTED_PICTURES, AUGMENTED_VIEWS, augmentedTileBox } from '../src/reporting/augmented.js';

/**
 * The done-when of MobileNetV2 (issue 10): 0.35 from the Teachable Machine export trains on
 * flowers-5 through the CLI at >= 95% test accuracy. The run then feeds the Grad-CAM report
 * tests: the run's own report, and `tl evaluate --report` on a folder with planted mistakes.
 */

const work = tempDir('tl-gradcam-');
const home = path.join(work, 'home');
after(() => rmSync(work, { recursive: true, force: true }));

function tl(...args: string[]) {
  const r = spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env: { ...process.env, TL_HOME: home }, cwd: work });
  assert.equal(r.status, 0, r.stderr);
  return r;
}

const FLOWERS = shared('datasets', 'oxford-flowers-5');
const runDir = path.join(work, 'flowers-v2');

/** Two real photos per class, plus a sunflower filed under daisy that the run must get "wrong". */
function folderWithPlantedMistake(): { dir: string; planted: string } {
  const dir = path.join(work, 'scored');
  for (const cls of readdirSync(path.join(FLOWERS, 'test')).sort()) {
    mkdirSync(path.join(dir, cls), { recursive: true });
    for (const file of readdirSync(path.join(FLOWERS, 'test', cls)).sort().slice(0, 2)) symlinkSync(path.join(FLOWERS, 'test', cls, file), path.join(dir, cls, file));
  }
  const sunflower = readdirSync(path.join(FLOWERS, 'test', 'sunflower')).sort()[5]!;
  const planted = 'sunflower-filed-as-daisy.jpg';
  symlinkSync(path.join(FLOWERS, 'test', 'sunflower', sunflower), path.join(dir, 'daisy', planted));
  return { dir, planted };
}

/** The figures of a report as Chromium shows them, and a full-page screenshot to look at. */
async function figuresInChromium(html: string, screenshot: string): Promise<{ name: string; width: number; height: number }[]> {
  const context = await chromium.launchPersistentContext(path.join(work, 'chromium'), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1360, height: 900 } });
  try {
    const page = await context.newPage();
    await page.goto(`file://${html}`, { waitUntil: 'load' });
    await page.screenshot({ path: screenshot, fullPage: true });
    return await page.$$eval('figure.figure', (els) =>
      els.map((f) => {
        const img = f.querySelector('img')!;
        return { name: (f as HTMLElement).dataset.figure ?? '', width: img.complete ? img.naturalWidth : 0, height: img.complete ? img.naturalHeight : 0 };
      }),
    );
  } finally {
    await context.close();
  }
}

test('Grad-CAM lights up where the evidence for the class is, in image orientation, and nothing for a class it argues against', async () => {
  await initBackend();
  // Base: an identity 1x1 conv (the feature layer). Head: class 0 grows with channel 0, class 1 shrinks with it.
  const input = tf.input({ shape: [6, 6, 3] });
  const features = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: false, name: 'features', weights: [tf.eye(3).reshape([1, 1, 3, 3])] });
  const base = tf.model({ inputs: input, outputs: features.apply(input) as tf.SymbolicTensor });
  const head = buildHead({ featureShape: [6, 6, 3], classes: 2, units: 3 });
  head.getLayer('head_dense').setWeights([tf.eye(3), tf.zeros([3])]);
  head.getLayer('head_predictions').setWeights([tf.tensor2d([[1, -1], [0, 0], [0, 0]]), tf.zeros([2])]);
  const model = joinBaseAndHead(base, head, 'toy');
  // Channel 0 is bright in the top-left 2x2 only (rows 0-1, columns 0-1).
  const x = tf.tidy(() => tf.mul(tf.oneHot(tf.tensor1d([0], 'int32'), 3).reshape([1, 1, 1, 3]), tf.pad(tf.ones([1, 2, 2, 1]), [[0, 0], [0, 4], [0, 4], [0, 0]]))) as tf.Tensor4D;
  const split = splitAtFeatureLayer(model, 'features')!;
  const outputs = [split.base.predict(tf.concat([x, x]))].flat() as [tf.Tensor4D, ...tf.Tensor[]];
  const [forClass0, forClass1] = (await gradCam(split, outputs, [0, 1]).array()) as number[][][];
  assert.deepEqual(forClass0!.map((row) => row.map((v) => Math.round(v))), [0, 1, 2, 3, 4, 5].map((r) => [0, 1, 2, 3, 4, 5].map((c) => (r < 2 && c < 2 ? 1 : 0))));
  assert.ok(forClass1!.flat().every((v) => v === 0), 'no positive evidence for class 1');
  assert.equal(splitAtFeatureLayer(base, 'features'), undefined, 'a model without a tl head has nothing to differentiate');
  model.dispose();
});

test('MobileNetV2 0.35 from the Teachable Machine folder trains on flowers-5 at >= 95% test accuracy (CLI)', () => {
  tl('train', '--backbone', 'mobilenetv2', '--alpha', '0.35', '--weights', shared('backbones', 'mobilenet_v2_0.35_224_tm_export'), FLOWERS, '--out', runDir);
  const metrics = JSON.parse(readFileSync(path.join(runDir, 'metrics.json'), 'utf8')) as { test: { accuracy: number } };
  const config = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { backbone: { name: string; featureLayer: string } };
  assert.deepEqual([config.backbone.name, config.backbone.featureLayer], ['mobilenetv2', 'out_relu']);
  assert.ok(metrics.test.accuracy >= 0.95, `test accuracy ${metrics.test.accuracy}`);
});

test('Grad-CAM\'s base on ONNX Runtime (feature map and side input packed into one output) gives tfjs\'s outputs and heatmaps', async () => {
  await initBackend();
  const model = await loadLayersModelFromDir(runDir);
  const split = splitAtFeatureLayer(model, 'out_relu')!;
  assert.ok(split.base.outputs.length > 1, 'the multi-scale run reads the 2x copy\'s pooled features as a side input');
  const config = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunConfig;
  const batch = 6;
  const x = await flowerBatch(batch, config.inputShape[0], config.preprocessing);
  const engine = await multiOutputEngine(split.base);
  const onnx = await engine.run(x, batch).finally(() => engine.dispose());
  assert.equal(engine.name, 'onnxruntime');
  const reference = [split.base.predict(tf.tensor4d(x, [batch, ...config.inputShape]))].flat() as [tf.Tensor4D, ...tf.Tensor[]];
  const onnxTensors = reference.map((t, i) => tf.tensor(onnx[i]!, t.shape)) as [tf.Tensor4D, ...tf.Tensor[]];
  for (const [i, t] of reference.entries()) assert.ok(relativeError(onnx[i]!, t.dataSync()) <= 1e-4, `output ${i}: relative error ${relativeError(onnx[i]!, t.dataSync())}`);
  const classes = [0, 1, 2, 3, 4, 0];
  const heat = gradCam(split, onnxTensors, classes).dataSync();
  const expected = gradCam(split, reference, classes).dataSync();
  assert.ok(relativeError(heat, expected) <= 1e-3, `heatmaps: relative error ${relativeError(heat, expected)}`);
  tf.dispose([...reference, ...onnxTensors]);
  model.dispose();
});

/** augmented.png as the run's first report drew it (the lr-find test has the report drawn again). */
let augmentedPng: Buffer | undefined;

test('the run\'s report holds Grad-CAM tiles of its sample predictions, and its flips on sample photos', async () => {
  const html = readFileSync(path.join(runDir, 'report.html'), 'utf8');
  assert.match(html, /data-figure="samples-gradcam"/);
  assert.ok(existsSync(path.join(runDir, 'samples-gradcam.png')));
  // tl train augments with flip by default: the photos at the model's input size, some mirrored.
  assert.match(html, /data-figure="augmented"/);
  assert.match(html, /The run&#39;s augmentation, flip, applied to 6 sample pictures as training saw its images/);
  const png = path.join(runDir, 'augmented.png');
  augmentedPng = readFileSync(png);
  const tile = (row: number, column: number) => sharp(png).extract(augmentedTileBox(row, column)).raw().toBuffer();
  let mirrored = 0;
  for (let row = 0; row < AUGMENTED_PICTURES; row++) {
    const original = await tile(row, 0);
    for (let v = 1; v <= AUGMENTED_VIEWS; v++) if (!(await tile(row, v)).equals(original)) mirrored++;
  }
  assert.ok(mirrored > 0 && mirrored < AUGMENTED_PICTURES * AUGMENTED_VIEWS, `${mirrored} of ${AUGMENTED_PICTURES * AUGMENTED_VIEWS} views mirrored (each with probability 1/2)`);
});

test('tl evaluate RUN DIR --report --out X: the scoring\'s report, with Grad-CAM over the mistakes and their file names', async (t) => {
  const { dir, planted } = folderWithPlantedMistake();
  const out = path.join(work, 'scored-report');
  const r = tl('evaluate', runDir, dir, '--report', '--out', out);
  assert.match(r.stdout, new RegExp(`${planted}: daisy -> sunflower`));
  assert.match(r.stdout, new RegExp(`report: ${out}/report.html`));
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /scored on /);
  assert.match(html, new RegExp(`<code>[^<]*${planted}</code>: daisy taken for sunflower`), 'the misclassified file is named');
  for (const png of ['samples', 'samples-gradcam', 'misclassified', 'misclassified-gradcam']) {
    const meta = await sharp(path.join(out, `${png}.png`)).metadata();
    assert.ok(meta.width! > 300 && meta.height! > 100, `${png}.png is ${meta.width}x${meta.height}`);
  }
  // The Grad-CAM tile is the photo under a heatmap: it differs from the plain photo tile.
  const [plain, heat] = await Promise.all(['misclassified', 'misclassified-gradcam'].map((n) => sharp(path.join(out, `${n}.png`)).raw().toBuffer()));
  assert.notDeepEqual(plain, heat);
  assert.ok(!existsSync(path.join(runDir, 'evaluate-scored')), 'an explicit --out is where the report goes');

  const screenshot = path.join(work, 'scored-report-screenshot.png');
  const figures = await figuresInChromium(path.join(out, 'report.html'), screenshot);
  t.diagnostic(`screenshot: ${screenshot}`);
  const names = figures.map((f) => f.name);
  for (const name of ['samples-gradcam', 'misclassified-gradcam']) assert.ok(names.includes(name), `${name} is on the page: ${names.join(', ')}`);
  assert.ok(figures.every((f) => f.width > 0 && f.height > 0), `every figure decodes: ${JSON.stringify(figures)}`);
});

test('tl lr-find RUN keeps its result in the run and rewrites the report: the plot and the suggested rate', () => {
  const r = tl('lr-find', runDir, '--steps', '40');
  const rate = /^suggested learning rate (\S+) /m.exec(r.stdout)?.[1];
  assert.ok(rate, r.stdout);
  assert.match(r.stderr, new RegExp(`report: ${runDir}/report\\.html`));
  const kept = JSON.parse(readFileSync(path.join(runDir, 'lr-find.json'), 'utf8')) as { suggestedLr: number; points: unknown[] };
  assert.equal(kept.suggestedLr.toExponential(1), rate);
  assert.ok(kept.points.length >= 15, `${kept.points.length} points`);
  const html = readFileSync(path.join(runDir, 'report.html'), 'utf8');
  assert.match(html, /<section id="lr-find"><h2>Learning-rate finder<\/h2>\s*<figure class="figure" data-figure="lr-find">/);
  assert.ok(html.includes(`Suggested learning rate <strong>${rate}</strong>`), 'the suggested rate is on the page');
  assert.ok(existsSync(path.join(runDir, 'lr-find.png')));
  assert.ok(augmentedPng && readFileSync(path.join(runDir, 'augmented.png')).equals(augmentedPng), 'the rewritten report draws the same augmented views');
});
