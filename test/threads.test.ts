import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { shared, tempDir, tlBin } from './helpers.js';
import { fetchDataset } from '../src/data/datasets.js';
import { withContext } from '../src/runtime/context.js';
import { threadChoice, wasmThreadChoice } from '../src/runtime/thread-count.js';

/** How many threads the wasm backend and the onnxruntime engine get: --threads, TL_THREADS, TL_WASM_THREADS, cores, load. */

const home = tempDir('tl-threads-home-');
const env: NodeJS.ProcessEnv = { ...process.env, TL_HOME: home, TL_QUIET: '1', TL_BACKEND: 'wasm' };
for (const name of ['TL_THREADS', 'TL_WASM_THREADS', 'TL_ENGINE']) delete env[name];

before(async () => {
  process.env.TL_HOME = home;
  await fetchDataset('fashion-mnist', { from: shared('datasets', 'fashion-mnist'), quiet: true });
});

/** `fn` with os.loadavg reporting `load` and the thread variables unset. */
function withLoad<T>(load: number, fn: () => T): T {
  const [loadavg, saved] = [os.loadavg, { TL_THREADS: process.env.TL_THREADS, TL_WASM_THREADS: process.env.TL_WASM_THREADS }];
  os.loadavg = () => [load, load, load];
  delete process.env.TL_THREADS;
  delete process.env.TL_WASM_THREADS;
  try {
    return fn();
  } finally {
    os.loadavg = loadavg;
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  }
}

test('default: every available core; one when the load average says the cores are busy; an explicit count always wins', () => {
  const cores = os.availableParallelism();
  withLoad(0.2, () => assert.deepEqual(wasmThreadChoice(), { threads: cores, reason: 'available cores' }));
  if (cores > 1) {
    withLoad(cores + 0.5, () => {
      const busy = wasmThreadChoice();
      assert.equal(busy.threads, 1);
      assert.match(busy.reason, new RegExp(`^load average ${(cores + 0.5).toFixed(1)} on ${cores} cores: busy; --threads ${cores} to use them all$`));
      // onnxruntime's pool sleeps when idle: it keeps every core.
      assert.equal(threadChoice().threads, cores);
    });
  }
  withLoad(99, () => {
    assert.deepEqual(withContext({ threads: '2' }, wasmThreadChoice), { threads: 2, reason: '--threads' });
    process.env.TL_WASM_THREADS = '3';
    assert.deepEqual(wasmThreadChoice(), { threads: 3, reason: 'TL_WASM_THREADS' });
    process.env.TL_THREADS = '1';
    assert.deepEqual(wasmThreadChoice(), { threads: 1, reason: 'TL_THREADS' });
    process.env.TL_THREADS = '0';
    assert.throws(() => wasmThreadChoice(), /--threads \(TL_THREADS\) must be a positive integer \(got 0\)/);
  });
});

/**
 * Train a small seed-cnn from the CLI with `--threads n`: the backend event of --log-json says how
 * many threads ran, and the weights it ended with.
 */
function trainingThreads(threads: number): { threads: number; threadsReason: string; weights: Buffer } {
  const dir = tempDir('tl-threads-run-');
  const log = path.join(dir, 'events.jsonl');
  const args = ['--threads', String(threads), '--log-json', log, 'custom', 'train', '--dataset', 'fashion-mnist', '--model', 'seed-cnn', '--epochs', '1', '--train-limit', '500', '--out', path.join(dir, 'run')];
  const r = spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const backend = events.find((e) => e.event === 'backend');
  assert.ok(backend, 'no backend event');
  assert.equal(backend.backend, 'wasm');
  return { ...(backend as unknown as { threads: number; threadsReason: string }), weights: readFileSync(path.join(dir, 'run', 'weights.bin')) };
}

test('a training command started with --threads 1 runs the wasm backend on one thread (and --threads 2 on two), to the same weights', () => {
  const one = trainingThreads(1);
  assert.deepEqual([one.threads, one.threadsReason], [1, '--threads']);
  const two = trainingThreads(2);
  assert.equal(two.threads, 2);
  // The gradients' partial sums are split the same way on any thread count (pool.ts REDUCTION_SHARES).
  assert.ok(one.weights.equals(two.weights), 'the weights differ between 1 and 2 threads');
});

test('tl info shows the backend threads and why', () => {
  const r = spawnSync(process.execPath, [tlBin, '--threads', '1', 'info'], { encoding: 'utf8', env });
  assert.match(r.stdout, /^threads +1 {2}\(--threads\)$/m);
  const json = JSON.parse(spawnSync(process.execPath, [tlBin, '--threads', '2', 'info', '--json'], { encoding: 'utf8', env }).stdout) as { threads: number; threadsReason: string };
  assert.deepEqual([json.threads, json.threadsReason], [2, '--threads']);
});
