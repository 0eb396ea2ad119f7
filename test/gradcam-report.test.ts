import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { shared, tempDir, tlBin } from './helpers.js';

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

test('MobileNetV2 0.35 from the Teachable Machine folder trains on flowers-5 at >= 95% test accuracy (CLI)', () => {
  tl('train', '--backbone', 'mobilenetv2', '--alpha', '0.35', '--weights', shared('backbones', 'mobilenet_v2_0.35_224_tm_export'), FLOWERS, '--out', runDir);
  const metrics = JSON.parse(readFileSync(path.join(runDir, 'metrics.json'), 'utf8')) as { test: { accuracy: number } };
  const config = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { backbone: { name: string; featureLayer: string } };
  assert.deepEqual([config.backbone.name, config.backbone.featureLayer], ['mobilenetv2', 'out_relu']);
  assert.ok(metrics.test.accuracy >= 0.95, `test accuracy ${metrics.test.accuracy}`);
});

test('the run\'s report holds Grad-CAM tiles of its sample predictions', () => {
  const html = readFileSync(path.join(runDir, 'report.html'), 'utf8');
  assert.match(html, /data-figure="samples-gradcam"/);
  assert.ok(existsSync(path.join(runDir, 'samples-gradcam.png')));
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
