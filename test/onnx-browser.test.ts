import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { decodeImage } from '../src/data/images.js';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { repoRoot, tempDir, tlBin } from './helpers.js';
import { flowerFiles, flowerSubset, mobilenet025 } from './transfer-fixtures.js';

/**
 * An exported run in a browser: headless Chromium loads model.onnx (preprocessing baked in) with
 * onnxruntime-web (wasm, from node_modules), served on 127.0.0.1, and classifies test photos. The
 * page gets the very pixels `tl predict` decodes (sharp), so its top-1 must equal tl predict's.
 */

const SIZE = 128;
const home = tempDir('tl-onnx-browser-home-');
const work = tempDir('tl-onnx-browser-');
const env = { ...process.env, TL_HOME: home, TL_QUIET: '1', TL_BACKEND: 'wasm' };
after(() => Promise.all([home, work].map((d) => fs.rm(d, { recursive: true, force: true }))));

const ORT_DIST = path.join(repoRoot, 'node_modules', 'onnxruntime-web', 'dist');
const TYPES: Record<string, string> = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm' };

const PAGE = `<!doctype html><meta charset="utf-8"><title>tl onnx</title>
<script type="module">
import * as ort from '/ort/ort.wasm.min.mjs';
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;
try {
  const { labels, photos, size } = await (await fetch('/photos.json')).json();
  const session = await ort.InferenceSession.create('/model.onnx', { executionProviders: ['wasm'] });
  const top1 = [];
  for (let i = 0; i < photos.length; i++) {
    const raw = new Uint8Array(await (await fetch('/pixels/' + i)).arrayBuffer());
    const input = new ort.Tensor('float32', Float32Array.from(raw), [1, size, size, 3]);
    const { output } = await session.run({ input });
    const p = output.data;
    let best = 0;
    for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
    top1.push(labels[best]);
  }
  window.result = { top1 };
} catch (err) {
  window.result = { error: String(err && err.stack || err) };
}
</script>`;

/** The page, onnxruntime-web's files, the model and each photo's decoded RGB bytes; nothing else. */
async function serve(runDir: string, pixels: Buffer[], labels: string[]): Promise<http.Server> {
  const routes = new Map<string, () => Promise<Buffer | string>>([
    ['/', async () => PAGE],
    ['/model.onnx', () => fs.readFile(path.join(runDir, 'model.onnx'))],
    ['/photos.json', async () => JSON.stringify({ labels, photos: pixels.map((_, i) => i), size: SIZE })],
    ...pixels.map((p, i) => [`/pixels/${i}`, async () => p] as [string, () => Promise<Buffer>]),
  ]);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = url.pathname.startsWith('/ort/') ? () => fs.readFile(path.join(ORT_DIST, path.basename(url.pathname))) : routes.get(url.pathname);
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    route().then(
      (body) => res.writeHead(200, { 'content-type': TYPES[path.extname(url.pathname)] ?? (url.pathname === '/' ? 'text/html' : 'application/octet-stream') }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

test('an exported run in headless Chromium (onnxruntime-web, wasm) gives the same top-1 as tl predict', async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (see README, Test)`);
  const run = path.join(work, 'run');
  const train = await flowerSubset('train', 6);
  execFileSync(process.execPath, [tlBin, 'train', '--backbone', 'mobilenet', '--weights', mobilenet025(), '--epochs', '2', '--size', String(SIZE), '--out', run, train], { env });
  execFileSync(process.execPath, [tlBin, 'export', run, '--format', 'onnx', '--with-preprocessing'], { env });

  const photos = flowerFiles('test', 3).map((f) => f.file);
  const predicted = JSON.parse(execFileSync(process.execPath, [tlBin, 'predict', run, ...photos, '--top-k', '1', '--json'], { env, encoding: 'utf8' })) as {
    predictions: { file: string; top: { label: string }[] }[];
  };
  const expected = predicted.predictions.map((p) => p.top[0]!.label);
  assert.equal(expected.length, photos.length);
  const pixels = await Promise.all(photos.map(async (f) => Buffer.from((await decodeImage(f, { size: [SIZE, SIZE], channels: 3 })).data)));
  const labels = JSON.parse(await fs.readFile(path.join(run, 'labels.json'), 'utf8')) as string[];

  const server = await serve(run, pixels, labels);
  const context = await chromium.launchPersistentContext(tempDir('tl-chromium-'), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const foreign: string[] = [];
  try {
    const page = await context.newPage();
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    page.on('request', (r) => !r.url().startsWith(origin) && foreign.push(r.url()));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 120_000 });
    const result = (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as { top1?: string[]; error?: string };
    assert.equal(result.error, undefined);
    assert.deepEqual(result.top1, expected);
    assert.deepEqual(foreign, [], 'everything comes from 127.0.0.1');
  } finally {
    await context.close();
    server.close();
  }
});
