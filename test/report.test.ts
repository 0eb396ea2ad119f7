import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync, readFileSync, promises as fs } from 'node:fs';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { tempDir, tlBin } from './helpers.js';
import { emnistRun, flowersFinetuneRun } from './report-fixture.js';
import { writeReport, REPORT_FIGURES } from '../src/reporting/index.js';
import { RunDir, type EpochRecord, type RunConfig, type RunMetrics } from '../src/artifacts/run.js';
import { runFacts } from '../src/reporting/facts.js';
import { confusionSpec, curvesSpec } from '../src/reporting/charts.js';
import { AUGMENTED_PICTURES, AUGMENTED_VIEWS, augmentedTileBox } from '../src/reporting/augmented.js';

const home = tempDir('tl-report-home-');
before(() => {
  process.env.TL_HOME = home;
});

interface FigureState {
  name: string;
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
  width: number;
  height: number;
}

/**
 * Open report.html from disk in a fresh headless Chromium. Any console error, page error,
 * failed request or request for anything but the page itself fails the test (the page must
 * need no network and no other file). Returns what the page shows.
 */
async function loadInChromium(htmlFile: string, screenshot: string) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (see README, Test)`);
  const context = await chromium.launchPersistentContext(tempDir('tl-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1360, height: 900 },
  });
  const problems: string[] = [];
  const requests: string[] = [];
  try {
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('request', (r) => requests.push(r.url()));
    const url = `file://${htmlFile}`;
    await page.goto(url, { waitUntil: 'load' });
    const figures = await page.$$eval('figure.figure', (els) =>
      els.map((f) => {
        const img = f.querySelector('img')!;
        const box = img.getBoundingClientRect();
        return {
          name: (f as HTMLElement).dataset.figure ?? '',
          complete: img.complete,
          naturalWidth: img.naturalWidth,
          naturalHeight: img.naturalHeight,
          width: box.width,
          height: box.height,
        };
      }),
    );
    const perClassRows = await page.$$eval('table.per-class tbody tr', (rows) => rows.length);
    const pairRows = await page.$$eval('table.pairs tbody tr td:first-child', (cells) => cells.map((c) => c.textContent ?? ''));
    const text = await page.evaluate(() => document.body.innerText);
    await page.screenshot({ path: screenshot, fullPage: true });
    const external = requests.filter((r) => r !== url && !r.startsWith('data:'));
    assert.deepEqual(external, [], 'the report requested other resources');
    assert.deepEqual(problems, [], 'the page logged errors');
    return { figures: figures as FigureState[], perClassRows, pairRows, text };
  } finally {
    await context.close();
  }
}

function assertFiguresRendered(figures: FigureState[]): void {
  assert.deepEqual(figures.map((f) => f.name), [...REPORT_FIGURES]);
  for (const f of figures) {
    assert.ok(f.complete && f.naturalWidth > 0 && f.naturalHeight > 0, `figure ${f.name} did not decode: ${JSON.stringify(f)}`);
    assert.ok(f.width > 50 && f.height > 50, `figure ${f.name} is drawn at ${f.width}x${f.height}`);
  }
}

async function assertPngs(runDir: string, pngs: string[]): Promise<void> {
  assert.deepEqual(pngs.map((p) => path.basename(p)), REPORT_FIGURES.map((n) => `${n}.png`));
  for (const png of pngs) {
    assert.equal(path.dirname(png), runDir);
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.width! > 100 && meta.height! > 100, `${png} is ${meta.width}x${meta.height}`);
    // A blank image has one colour: charts and grids have many.
    const stats = await sharp(png).stats();
    assert.ok(stats.channels[0]!.stdev > 5, `${png} looks blank`);
  }
}

test('tl report on a real 47-class EMNIST run: every figure renders in headless Chromium', async (t) => {
  const runDir = await emnistRun(path.join(tempDir('tl-report-'), 'emnist-run'));
  const log = path.join(runDir, '..', 'events.jsonl');
  const out = execFileSync(process.execPath, [tlBin, '--log-json', log, 'report', runDir], { encoding: 'utf8', env: { ...process.env, TL_HOME: home } });
  const lines = out.trim().split('\n');
  const html = path.join(runDir, 'report.html');
  assert.equal(lines[0], html);
  await assertPngs(runDir, lines.slice(1));
  const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; html?: string });
  assert.equal(events.at(-1)!.event, 'report');
  assert.equal(events.at(-1)!.html, html);

  const screenshot = path.join(runDir, 'report-screenshot.png');
  const shown = await loadInChromium(html, screenshot);
  t.diagnostic(`screenshot: ${screenshot}`);
  console.log(`report screenshot: ${screenshot}`);
  assertFiguresRendered(shown.figures);

  const run = new RunDir(runDir);
  const [labels, metrics] = [await run.labels(), await run.metrics()];
  assert.equal(labels.length, 47);
  assert.equal(shown.perClassRows, 47 + 2, 'one row per class plus macro and weighted averages');
  assert.ok(shown.pairRows.length > 0, 'most-confused pairs are listed');
  assert.match(shown.text, new RegExp(`${(metrics.test.accuracy * 100).toFixed(2)}%`), 'test accuracy is shown');
  assert.match(shown.text, /emnist-bymerge/);
  const shot = await sharp(screenshot).metadata();
  assert.ok(shot.height! > 2000, 'full-page screenshot');
});

/** One two-phase flowers run, trained once; the tests that change its files work on copies. */
let flowersRun: Promise<string> | undefined;
const flowers = () => (flowersRun ??= flowersFinetuneRun(path.join(tempDir('tl-report-'), 'flowers-run')));

async function copyOfFlowersRun(name: string): Promise<string> {
  const copy = path.join(tempDir('tl-report-'), name);
  await fs.cp(await flowers(), copy, { recursive: true });
  return copy;
}

test('report of a two-phase run on photos: phase boundary in the curves, photo thumbnails in the grids', async (t) => {
  const runDir = await flowers();
  const result = await writeReport(runDir);
  await assertPngs(runDir, result.pngs);
  const html = readFileSync(result.html, 'utf8');
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'no scripts and no external URLs');
  const screenshot = path.join(runDir, 'report-screenshot.png');
  const shown = await loadInChromium(result.html, screenshot);
  t.diagnostic(`screenshot: ${screenshot}`);
  console.log(`report screenshot: ${screenshot}`);
  assertFiguresRendered(shown.figures);
  assert.equal(shown.perClassRows, 5 + 2);
  assert.doesNotMatch(shown.text, /could not be loaded/, 'every photo thumbnail was found');
  const curves = Buffer.from(/data-figure="curves">\s*<img src="data:image\/svg\+xml;base64,([^"]+)"/.exec(html)![1]!, 'base64').toString('utf8');
  assert.match(curves, /fine-tuning →/);
  assert.match(curves, /← transfer learning/);
  assert.ok(!existsSync(path.join(runDir, 'augmented.png')), 'a run without augmentation has no augmented figure');
  assert.doesNotMatch(html, /id="augmentation"/);
});

test('an augmenting run\'s report shows its augmentation on sample pictures: views unlike the original, the same figure every time', async () => {
  const runDir = await copyOfFlowersRun('augmenting-run');
  const run = new RunDir(runDir);
  const config = await run.config();
  await run.write('config', { ...config, hyperparameters: { ...config.hyperparameters, augment: 'translate=0.08,rotate=10' } });
  const first = await writeReport(runDir);
  const png = path.join(runDir, 'augmented.png');
  assert.deepEqual(first.pngs.map((p) => path.basename(p)), [...REPORT_FIGURES, 'augmented'].map((n) => `${n}.png`));
  const html = readFileSync(first.html, 'utf8');
  assert.match(html, /<section id="augmentation"><h2>Augmentation<\/h2>\s*<figure class="figure" data-figure="augmented">/);
  assert.match(html, /The run&#39;s augmentation, rotate=10,translate=0.08, applied to 6 sample pictures as training saw its images/);
  const meta = await sharp(png).metadata();
  assert.ok(meta.height! > AUGMENTED_PICTURES * 84, `one row a picture: ${meta.width}x${meta.height}`);
  const tile = (row: number, column: number) => sharp(png).extract(augmentedTileBox(row, column)).raw().toBuffer();
  for (let row = 0; row < AUGMENTED_PICTURES; row++) {
    const original = await tile(row, 0);
    const views = await Promise.all(Array.from({ length: AUGMENTED_VIEWS }, (_, v) => tile(row, v + 1)));
    for (const view of views) assert.notDeepEqual(view, original, `picture ${row}: a view is the original`);
    assert.equal(new Set(views.map((v) => v.toString('base64'))).size, AUGMENTED_VIEWS, `picture ${row}: the views differ from each other`);
  }
  const bytes = readFileSync(png);
  await writeReport(runDir);
  assert.ok(readFileSync(png).equals(bytes), 'the figure is drawn from the run\'s seed: the same PNG again');
});

test('a partial run still gets a report: missing files are named, a moved photo becomes a placeholder', async () => {
  const copy = await copyOfFlowersRun('partial-run');
  await fs.rm(path.join(copy, 'history.json'));
  const run = new RunDir(copy);
  const predictions = await run.predictions();
  const moved = predictions.findIndex((p) => p.predicted !== p.label);
  predictions[moved]!.source = { kind: 'file', path: path.join(copy, 'moved-away.jpg') };
  await run.write('predictions', predictions);
  const result = await writeReport(copy);
  assert.deepEqual(result.pngs.map((p) => path.basename(p)), ['confusion.png', 'samples.png', 'misclassified.png']);
  const html = readFileSync(result.html, 'utf8');
  assert.match(html, /<code>history\.json<\/code> is missing/);
  assert.match(html, /1 sample pictures of figure &#34;misclassified&#34; could not be loaded/);
});

const transferConfig: RunConfig = {
  kind: 'transfer',
  createdAt: '2026-01-01T00:00:00.000Z',
  model: 'mobilenet-0.25+head',
  inputShape: [96, 96, 3],
  preprocessing: { mode: 'scale', scale: 1 / 127.5, offset: -1 },
  hyperparameters: { epochs: 3, batchSize: 32, lr: 1e-3, optimizer: 'adam', valSplit: 0.1, headUnits: 1024 },
  seed: 1,
  dataset: { name: 'flowers', source: '/data/flowers/train' },
  command: 'tl train',
};

const transferMetrics = {
  test: { accuracy: 1, loss: 0.1, perClass: [], confusion: [] },
  trainSeconds: 3,
  backend: 'wasm',
  imagesPerSecond: 2845,
  dataset: { name: 'flowers', split: 'class folders', seed: 1, trainCount: 270, valCount: 30, testCount: 30, classes: 5, source: '/data/flowers/train', featureCache: { computed: 12, reused: 288, seconds: 1.5 } },
} as unknown as RunMetrics;

test('run facts read as labels and values: no JSON, no camelCase, one seed, head-only speed said so', () => {
  const facts = runFacts(transferConfig, transferMetrics);
  const labels = facts.map(([k]) => k);
  for (const [k, v] of facts) {
    assert.doesNotMatch(v, /[{}"]/, `${k}: ${v}`);
    assert.doesNotMatch(k, /[a-z][A-Z]/, k);
  }
  assert.equal(labels.filter((k) => /seed/.test(k)).length, 1);
  assert.ok(!labels.includes('dataset source'), 'the source is in the dataset row');
  assert.deepEqual(facts.find(([k]) => k === 'feature cache'), ['feature cache', '12 images through the base, 288 from the cache (1.5 s)']);
  assert.deepEqual(facts.find(([k]) => k === 'head training speed'), ['head training speed', '2845 images/s (head only, on cached base features)']);
  assert.deepEqual(facts.find(([k]) => k === 'batch size'), ['batch size', '32']);
});

test('a fine-tuning run shows its own epochs and learning rate, and the transfer run\'s as such', () => {
  const config: RunConfig = {
    ...transferConfig,
    kind: 'finetune',
    parent: '/runs/flowers',
    hyperparameters: { ...transferConfig.hyperparameters, finetune: { epochs: 2, lr: 1e-5, batchSize: 32, unfreeze: 'all', unfrozenLayers: 81, batchNorm: 'inference' } },
  };
  const facts = new Map(runFacts(config, { ...transferMetrics, dataset: { ...transferMetrics.dataset, featureCache: undefined } } as RunMetrics));
  assert.equal(facts.get('epochs'), '2');
  assert.equal(facts.get('learning rate'), '0.00001');
  assert.equal(facts.get('transfer epochs'), '3');
  assert.equal(facts.get('transfer learning rate'), '0.001');
  assert.equal(facts.get('unfrozen base layers'), '81');
  assert.ok(![...facts.keys()].includes('finetune'));
  assert.equal(facts.get('training speed'), '2845 images/s');
});

test('confusion colours: 0% is the white of empty cells and the legend ticks are even on its scale', () => {
  const spec = confusionSpec(['a', 'b'], [[9, 1], [0, 10]]) as unknown as { layer: { encoding: { color: { scale: { type: string; range: string[] }; legend: { values: number[] } } } }[] };
  const color = spec.layer[0]!.encoding.color;
  assert.equal(color.scale.range[0], '#ffffff');
  const positions = color.legend.values.map(Math.sqrt);
  const steps = positions.slice(1).map((p, i) => p - positions[i]!);
  for (const step of steps) assert.ok(Math.abs(step - steps[0]!) < 1e-12, `even steps ${steps}`);
});

test('the phase labels sit above the plot area, clear of curves near 100%', () => {
  const history = [1, 2, 3].map((epoch) => ({ epoch, phase: epoch < 3 ? 'transfer' : 'finetune', loss: 0.1, acc: 1, seconds: 1, imagesPerSecond: 1 })) as EpochRecord[];
  const spec = JSON.stringify(curvesSpec(history));
  const labels = [...spec.matchAll(/"mark":\{"type":"text"[^}]*\}/g)].map((m) => JSON.parse(m[0].slice(7)) as { baseline: string; y: number });
  assert.equal(labels.length, 4);
  for (const label of labels) assert.ok(label.baseline === 'bottom' && label.y < 0, JSON.stringify(label));
});
