import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as mobilenet from '@tensorflow-models/mobilenet';
import { repoRoot, tempDir, tlBin } from './helpers.js';
import { RunDir } from '../src/artifacts/run.js';
import { resolveOptions } from '../src/util/options.js';
import { TRANSFER_OPTIONS, trainTransfer } from '../src/training/transfer.js';
import { CUSTOM_OPTIONS } from '../src/training/custom.js';
import { FINETUNE_OPTIONS } from '../src/training/finetune.js';
import { allowedKeys } from '../src/sweep/index.js';
import { classifyImageNet } from '../src/training/predict.js';
import { initBackend } from '../src/runtime/backend.js';
import { flowerFiles } from './transfer-fixtures.js';

function tl(...args: string[]) {
  return spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env: { ...process.env, TL_QUIET: '1' } });
}

/** A usage error is commander's line and a pointer to the help, never the help itself. */
function assertOneLineUsageError(result: ReturnType<typeof tl>, message: RegExp, command: string): void {
  assert.notEqual(result.status, 0);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 2, result.stderr);
  assert.match(lines[0]!, message);
  assert.equal(lines[1], `see \`${command} --help\``);
  assert.equal(result.stdout, '');
}

test('tl --version prints package.json\'s version', () => {
  const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const result = tl('--version');
  assert.equal(result.status, 0);
  assert.equal(result.stdout.trim(), version);
});

test('usage errors are one line plus where the help is', () => {
  assertOneLineUsageError(tl('bogus'), /unknown command 'bogus'/, 'tl');
  assertOneLineUsageError(tl('predict', 'run', 'x.jpg', '--top-k', '0'), /--top-k <n>.*'0' is invalid\. It must be a positive integer/, 'tl predict');
  assertOneLineUsageError(tl('classify', 'x.jpg', '--top-k', '1.5'), /--top-k.*It must be a positive integer/, 'tl classify');
  assertOneLineUsageError(tl('backbones', 'fetch', 'mobilenet', '--alpha', '0.25abc'), /--alpha <x>.*'0\.25abc' is invalid/, 'tl backbones fetch');
  assertOneLineUsageError(tl('custom', 'train', '--dataset', 'x', '--lr-patience', '-1'), /--lr-patience.*at least 0/, 'tl custom train');
  assertOneLineUsageError(tl('train', 'data', '--backbone', 'mobilenet', '--val-split', '1'), /--val-split.*in \[0, 1\)/, 'tl train');
  assertOneLineUsageError(tl('finetune', 'run', '--unfreeze', 'some'), /--unfreeze.*"all" or a positive number/, 'tl finetune');
});

test('the option tables are the defaults of the library, the CLI help and the sweep keys', () => {
  const transfer = resolveOptions(TRANSFER_OPTIONS, { backbone: 'mobilenet' });
  assert.deepEqual(
    { epochs: transfer.epochs, batchSize: transfer.batchSize, size: transfer.size, weights: transfer.weights },
    { epochs: TRANSFER_OPTIONS.epochs.default, batchSize: 32, size: 150, weights: 'imagenet' },
  );
  assert.equal(resolveOptions(FINETUNE_OPTIONS, {}).lr, 1e-5);
  assert.throws(() => resolveOptions(CUSTOM_OPTIONS, { dataset: 'x', epochs: 0 }), /^TlError: --epochs must be a positive integer \(got 0\)$/);
  assert.throws(() => resolveOptions(CUSTOM_OPTIONS, {}), /--dataset is required/);
  const help = tl('train', '--help').stdout;
  assert.match(help, new RegExp(`--epochs <n> +epochs of head training.*?\\(default: ${TRANSFER_OPTIONS.epochs.default}\\)`, 's'));
  assert.ok(allowedKeys('custom-train').includes('lrPatience'));
  assert.ok(allowedKeys('custom-train').includes('mlp.hidden'));
  assert.ok(!allowedKeys('train').includes('out'));
});

test('--size below a backbone\'s minimum fails at once, naming --size and the backbone\'s minimum', async () => {
  await assert.rejects(
    trainTransfer({ dataDir: '/nonexistent', backbone: 'xception', size: 64, weights: 'none' }),
    /^TlError: --size must be at least 71 for xception \(got 64\)$/,
  );
});

test('ImageNet classes that share a name are reported by their own index (crane the bird is 134)', async () => {
  await initBackend();
  const logits = Array.from({ length: 1000 }, (_, i) => (i === 134 ? 10 : i === 517 ? 5 : 0));
  const classifier = { infer: () => tf.tensor2d([logits]) } as unknown as mobilenet.MobileNet;
  const { predictions } = await classifyImageNet(classifier, [flowerFiles('train', 1)[0]!.file], { topK: 2 });
  assert.deepEqual(
    predictions[0]!.top.map((r) => [r.label, r.index]),
    [['crane', 134], ['crane', 517]],
  );
});

/** The smallest directory `tl report` accepts: run.json, labels.json and a model.json. */
async function minimalRun(): Promise<string> {
  const dir = path.join(tempDir('tl-report-open-'), 'run');
  await fs.mkdir(dir);
  const run = new RunDir(dir);
  await fs.writeFile(path.join(dir, 'model.json'), '{}');
  await run.write('labels', ['a', 'b']);
  await run.write('config', { kind: 'custom', createdAt: '2026-01-01T00:00:00.000Z', model: 'x', inputShape: [28, 28, 1], preprocessing: { mode: 'none' }, hyperparameters: {}, seed: 1, dataset: { name: 'synthetic' }, command: 'test' });
  return dir;
}

test('tl report --open without a browser says so in one line, exits 1 and still prints the paths', async () => {
  const dir = await minimalRun();
  const bin = tempDir('tl-fake-opener-');
  writeFileSync(path.join(bin, 'xdg-open'), '#!/bin/sh\necho "xdg-open: no method available for opening" >&2\nexit 3\n', { mode: 0o755 });
  for (const PATH of [`${bin}:${process.env.PATH}`, path.dirname(process.execPath)]) {
    const result = spawnSync(process.execPath, [tlBin, 'report', dir, '--open'], { encoding: 'utf8', env: { ...process.env, PATH } });
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stdout.trim(), path.join(dir, 'report.html'));
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^tl: no browser opened the report: xdg-open (exited with status 3|is not installed); open .*report\.html yourself$/);
  }
});

test('runtimeInfo().backend names the backend before one is started, and it is the one that starts', () => {
  const script = `
    import { initBackend, runtimeInfo } from './src/runtime/backend.ts';
    const before = (await runtimeInfo()).backend;
    const started = await initBackend();
    console.log(JSON.stringify({ before, started, after: (await runtimeInfo()).backend }));`;
  for (const TL_BACKEND of [undefined, 'cpu']) {
    const env = { ...process.env, TL_BACKEND };
    if (TL_BACKEND === undefined) delete env.TL_BACKEND;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', env });
    const { before, started, after } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, string>;
    assert.equal(before, started, result.stderr);
    assert.equal(after, started);
    if (TL_BACKEND) assert.equal(started, TL_BACKEND);
  }
});
