import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, tempDir, tlBin } from './helpers.js';

/** Engine selection from the command line: default, --threads, the fallback when onnxruntime-node cannot load. */

const env = { ...process.env, TL_HOME: tempDir('tl-engine-home-'), TL_QUIET: '1', TL_BACKEND: 'wasm' };
delete env.TL_ENGINE;
delete env.TL_THREADS;
const withoutOrt = ['--import', path.join(repoRoot, 'test', 'fixtures', 'no-onnxruntime.mjs')];

function tl(args: string[], nodeArgs: string[] = []) {
  return spawnSync(process.execPath, [...nodeArgs, tlBin, ...args], { encoding: 'utf8', env });
}

test('tl info names the engine, its version and its threads (default: every available core; --threads N)', () => {
  const n = os.availableParallelism();
  assert.match(tl(['info']).stdout, new RegExp(`^engine +onnxruntime 1\\.\\d+\\.\\d+, ${n} threads?  \\(--engine, --threads\\)$`, 'm'));
  assert.match(tl(['--threads', '1', 'info']).stdout, /^engine +onnxruntime 1\.\d+\.\d+, 1 thread /m);
  // The tfjs engine is the wasm backend: its threads are the backend's.
  const tfjsInfo = tl(['--engine', 'tfjs', 'info']).stdout;
  const backendThreads = /^threads +(\d+) /m.exec(tfjsInfo)?.[1];
  assert.match(tfjsInfo, new RegExp(`^engine +tfjs 4\\.\\d+\\.\\d+, ${backendThreads} threads?  `, 'm'));
  const json = JSON.parse(tl(['--threads', '2', 'info', '--json']).stdout) as { engine: string; engineThreads: number };
  assert.deepEqual([json.engine, json.engineThreads], ['onnxruntime', 2]);
});

test('onnxruntime-node failing to load: one line and tfjs, unless --engine onnxruntime was explicit', () => {
  const fallback = tl(['info'], withoutOrt);
  assert.equal(fallback.status, 0, fallback.stderr);
  assert.equal(fallback.stderr, "tl: onnxruntime-node did not load (Cannot find package 'onnxruntime-node'); using the slower tfjs engine\n");
  assert.match(fallback.stdout, /^engine +tfjs /m);
  const explicit = tl(['--engine', 'onnxruntime', 'info'], withoutOrt);
  assert.equal(explicit.status, 2);
  assert.equal(
    explicit.stderr,
    'tl: engine "onnxruntime" is unavailable: onnxruntime-node did not load (Cannot find package \'onnxruntime-node\'); run npm install, or use --engine tfjs\n',
  );
});

test('bad --engine and --threads values are one-line errors', () => {
  assert.equal(tl(['--engine', 'torch', 'info']).stderr, 'tl: unknown engine "torch"; use one of onnxruntime, tfjs (--engine or TL_ENGINE)\n');
  assert.equal(tl(['--threads', '0', 'info']).stderr, 'tl: --threads (TL_THREADS) must be a positive integer (got 0)\n');
});
