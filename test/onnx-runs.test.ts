import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import type { RunConfig, RunMetrics } from '../src/artifacts/run.js';
import { fetchDataset } from '../src/data/datasets.js';
import { initBackend } from '../src/runtime/backend.js';
import { trainTransfer } from '../src/training/transfer.js';
import { finetune } from '../src/training/finetune.js';
import { trainCustom, evaluateCustomRun } from '../src/training/custom.js';
import { openRun, predictFiles } from '../src/training/predict.js';
import { getBackbone } from '../src/backbones/index.js';
import { shared, tempDir, tlBin } from './helpers.js';
import { writeOnnx } from './onnx-fixtures.js';
import { flowers, flowerSubset, mobilenet025 } from './transfer-fixtures.js';

/**
 * Runs trained by tl, predicted by both engines on every flowers-5 test photo (same top-1), then
 * exported with `tl export` and checked by onnx.checker (Debian's python3-onnx) with full_check.
 */

const home = tempDir('tl-onnx-home-');
const work = tempDir('tl-onnx-runs-');
process.env.TL_HOME = home;
process.env.TL_QUIET = '1';
const env = { ...process.env, TL_HOME: home, TL_QUIET: '1', TL_BACKEND: 'wasm' };
/** Debian's interpreter, where python3-onnx is installed (a pyenv or venv python3 may shadow it on PATH). */
const DEBIAN_PYTHON = '/usr/bin/python3';

const runs = { transfer: path.join(work, 'transfer'), finetune: path.join(work, 'finetune'), cnn: path.join(work, 'cnn') };
const testPhotos = readdirSync(flowers('test'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => readdirSync(path.join(flowers('test'), d.name)).map((f) => path.join(flowers('test'), d.name, f)))
  .sort();

before(async () => {
  await initBackend('wasm');
  const train = await flowerSubset('train', 6);
  await trainTransfer({ dataDir: train, backbone: 'mobilenet', weights: mobilenet025(), epochs: 2, size: 128, out: runs.transfer });
  await finetune({ run: runs.transfer, epochs: 1, lr: 1e-4, batchSize: 16, out: runs.finetune });
  await fetchDataset('fashion-mnist', { from: shared('datasets', 'fashion-mnist'), quiet: true });
  await trainCustom({ dataset: 'fashion-mnist', model: 'cnn', epochs: 1, trainLimit: 600, patience: 0, out: runs.cnn });
});
after(() => Promise.all([home, work].map((d) => fs.rm(d, { recursive: true, force: true }))));

async function withEngine<T>(engine: 'onnxruntime' | 'tfjs', fn: () => Promise<T>): Promise<T> {
  const saved = process.env.TL_ENGINE;
  process.env.TL_ENGINE = engine;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.TL_ENGINE;
    else process.env.TL_ENGINE = saved;
  }
}

async function topOne(runDir: string, engine: 'onnxruntime' | 'tfjs'): Promise<string[]> {
  return withEngine(engine, async () => {
    const run = await openRun(runDir);
    try {
      const { predictions, skipped } = await predictFiles(run, testPhotos, { topK: 1 });
      assert.equal(skipped.length, 0);
      return predictions.map((p) => `${path.basename(p.file)} ${p.top[0]!.label}`);
    } finally {
      run.model.dispose();
    }
  });
}

function tl(...args: string[]) {
  return spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env });
}

for (const kind of ['transfer', 'finetune', 'cnn'] as const) {
  test(`${kind} run: ONNX Runtime and tfjs give the same top-1 on all ${testPhotos.length} flowers-5 test photos`, async () => {
    const onnx = await topOne(runs[kind], 'onnxruntime');
    assert.equal(onnx.length, testPhotos.length);
    assert.deepEqual(onnx, await topOne(runs[kind], 'tfjs'));
    const metrics = JSON.parse(await fs.readFile(path.join(runs[kind], 'metrics.json'), 'utf8')) as RunMetrics;
    assert.equal(metrics.engine, 'onnxruntime', 'the test predictions behind the report came from ONNX Runtime');
  });
}

test('the feature cache records the engine that computed it', async () => {
  const keys = await Promise.all(readdirSync(path.join(home, 'features')).map(async (id) => JSON.parse(await fs.readFile(path.join(home, 'features', id, 'key.json'), 'utf8')) as { engine?: string }));
  assert.ok(keys.length >= 1);
  assert.ok(keys.every((k) => k.engine === 'onnxruntime'), JSON.stringify(keys));
});

test('custom evaluate scores the same on both engines', async () => {
  const onnx = await withEngine('onnxruntime', () => evaluateCustomRun(runs.cnn));
  const tfjs = await withEngine('tfjs', () => evaluateCustomRun(runs.cnn));
  assert.ok(Math.abs(onnx.metrics.accuracy - tfjs.metrics.accuracy) <= 2e-4, `${onnx.metrics.accuracy} vs ${tfjs.metrics.accuracy}`);
  const metrics = JSON.parse(await fs.readFile(path.join(runs.cnn, 'metrics.json'), 'utf8')) as RunMetrics;
  assert.equal(onnx.metrics.accuracy, metrics.test.accuracy, 'the saved run reproduces its recorded accuracy');
});

test('tl export writes model.onnx (preprocessing baked in), records it, refuses to overwrite; predict uses it', async () => {
  const out = execFileSync(process.execPath, [tlBin, 'export', runs.transfer, '--format', 'onnx', '--with-preprocessing'], { encoding: 'utf8', env });
  assert.match(out, /wrote .*model\.onnx/);
  const config = JSON.parse(await fs.readFile(path.join(runs.transfer, 'run.json'), 'utf8')) as RunConfig;
  assert.deepEqual(config.exports?.map(({ createdAt: _, ...e }) => e), [{ format: 'onnx', file: 'model.onnx', withPreprocessing: true, opset: 13 }]);

  const again = tl('export', runs.transfer, '--format', 'onnx');
  assert.notEqual(again.status, 0);
  assert.equal(again.stderr.trim(), `tl: ${path.join(runs.transfer, 'model.onnx')}: already exists; pass another --out, or delete it first`);
  const badFormat = tl('export', runs.transfer, '--format', 'tflite', '--out', path.join(work, 'x.tflite'));
  assert.match(badFormat.stderr, /^tl: --format tflite is not supported; use --format onnx\n$/);

  // predict now reads model.onnx (raw pixels in) and agrees with tfjs on the layers model.
  assert.deepEqual(await topOne(runs.transfer, 'onnxruntime'), await topOne(runs.transfer, 'tfjs'));
  const cli = tl('--engine', 'onnxruntime', 'predict', runs.transfer, testPhotos[0]!, '--json');
  assert.equal(cli.status, 0, cli.stderr);

  await fs.writeFile(path.join(runs.transfer, 'model.onnx'), 'garbage');
  const corrupt = tl('predict', runs.transfer, testPhotos[0]!);
  assert.notEqual(corrupt.status, 0);
  assert.match(corrupt.stderr, new RegExp(`^tl: ${path.join(runs.transfer, 'model.onnx')}: is not a loadable ONNX model \\(.*\\); export it again with tl export RUN --format onnx\\n$`));
  await fs.rm(path.join(runs.transfer, 'model.onnx'));
});

test('exported files pass onnx.checker.check_model(full_check=True) (python3-onnx)', async () => {
  const probe = spawnSync(DEBIAN_PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, `python3-onnx is a test prerequisite (apt-get install python3-onnx): ${probe.stderr}`);
  const files: string[] = [];
  for (const [kind, dir] of Object.entries(runs)) {
    for (const baked of [false, true]) {
      const file = path.join(work, `${kind}${baked ? '-raw' : ''}.onnx`);
      const r = tl('export', dir, '--format', 'onnx', '--out', file, ...(baked ? ['--with-preprocessing'] : []));
      if (kind === 'cnn' && baked) {
        // Its preprocessing inverts light-background photos per image: not a fixed graph.
        assert.match(r.stderr, /^tl: preprocessing invertLightBackground cannot be baked into an ONNX model; export without --with-preprocessing\n$/);
        continue;
      }
      assert.equal(r.status, 0, r.stderr);
      files.push(file);
    }
  }
  // Every backbone architecture too: MobileNet (legacy padding, classifier top), MobileNetV2 (classifier top), VGG16, Xception.
  const architectures = [
    { name: 'mobilenetv2-top', model: getBackbone('mobilenetv2').build({ inputShape: [224, 224, 3], includeTop: true, alpha: 0.35, classes: 5 }) },
    { name: 'mobilenet-top-legacy', model: getBackbone('mobilenet').build({ inputShape: [224, 224, 3], includeTop: true, alpha: 0.25, classes: 5, legacyPadding: true }) },
    { name: 'vgg16', model: getBackbone('vgg16').build({ inputShape: [48, 48, 3] }), preprocessing: getBackbone('vgg16').preprocessing },
    { name: 'xception', model: getBackbone('xception').build({ inputShape: [71, 71, 3] }) },
  ];
  for (const { name, model, preprocessing } of architectures) {
    files.push(await writeOnnx(model, work, name, preprocessing));
    model.dispose();
  }
  const check = spawnSync(
    DEBIAN_PYTHON,
    ['-c', 'import sys, onnx\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\n    print("ok", f)', ...files],
    { encoding: 'utf8' },
  );
  assert.equal(check.status, 0, check.stderr);
  assert.equal(check.stdout.trim().split('\n').length, files.length);
  assert.ok(files.every(existsSync));
});
