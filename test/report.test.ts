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
import { RunDir } from '../src/artifacts/run.js';

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

test('report of a two-phase run on photos: phase boundary in the curves, photo thumbnails in the grids', async (t) => {
  const runDir = await flowersFinetuneRun(path.join(tempDir('tl-report-'), 'flowers-run'));
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
});

test('a partial run still gets a report: missing files are named, a moved photo becomes a placeholder', async () => {
  const source = await flowersFinetuneRun(path.join(tempDir('tl-report-'), 'flowers-run'));
  const copy = path.join(tempDir('tl-report-'), 'partial-run');
  await fs.cp(source, copy, { recursive: true });
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
