import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { tlBin } from './helpers.js';

test('tl info reports the wasm backend when tfjs-node is absent', () => {
  const out = execFileSync(process.execPath, [tlBin, 'info', '--json'], { encoding: 'utf8', env: { ...process.env, TL_BACKEND: '' } });
  const info = JSON.parse(out) as { backend: string; tfjs: string; cacheDir: string };
  assert.ok(['wasm', 'tensorflow'].includes(info.backend), `backend was ${info.backend}`);
  assert.equal(info.tfjs, '4.22.0');
});

test('an unknown backend is one clear line and a non-zero exit', () => {
  const r = spawnSync(process.execPath, [tlBin, '--backend', 'gpu9000', 'info'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.trim(), /^tl: unknown backend "gpu9000"; use one of tensorflow, wasm, cpu/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
