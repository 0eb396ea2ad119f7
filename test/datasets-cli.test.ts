import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { shared, tempDir, tlBin } from './helpers.js';

const home = tempDir('tl-cli-datasets-');
after(() => fs.rm(home, { recursive: true, force: true }));

function tl(...args: string[]) {
  const r = spawnSync(process.execPath, [tlBin, ...args], { env: { ...process.env, TL_HOME: home, TL_QUIET: '1' }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('tl datasets fetch --from imports what exists and list shows the rest as missing', () => {
  const fetched = tl('datasets', 'fetch', 'emnist-bymerge', '--from', shared('datasets', 'emnist-bymerge'));
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.match(fetched.stdout, /added emnist-bymerge-test-images-idx3-ubyte\.gz {2}\(sha256 verified/);
  assert.match(fetched.stdout, /incomplete, no train split; train on the test split with --resplit 0\.2/);

  const list = tl('datasets', 'list', '--json');
  assert.equal(list.code, 0, list.stderr);
  const status = JSON.parse(list.stdout) as { name: string; splits: { split: string; cached: boolean; missing: string[] }[] }[];
  assert.equal(status.length, 7);
  const bymerge = status.find((s) => s.name === 'emnist-bymerge')!;
  assert.deepEqual(bymerge.splits.map((s) => [s.split, s.cached]), [['train', false], ['test', true]]);
  assert.deepEqual(bymerge.splits[0]!.missing, ['emnist-bymerge-train-images-idx3-ubyte.gz', 'emnist-bymerge-train-labels-idx1-ubyte.gz']);
  assert.ok(status.find((s) => s.name === 'fashion-mnist')!.splits.every((s) => !s.cached));

  const text = tl('datasets', 'list');
  assert.match(text.stdout, /emnist-bymerge .*\n {2}train +697932 images {2}missing emnist-bymerge-train-images/);
});

test('tl datasets errors are one line: unknown name, empty folder, corrupted file', async () => {
  const unknown = tl('datasets', 'fetch', 'emnist-bogus');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /^tl: unknown dataset "emnist-bogus"; known datasets: emnist-balanced, .*fashion-mnist\n$/);

  const empty = tempDir();
  const none = tl('datasets', 'fetch', 'fashion-mnist', '--from', empty);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /^tl: .*: holds none of train-images-idx3-ubyte\.gz, .*; pass the folder[^\n]*\n$/);

  const bad = tempDir();
  const bytes = await fs.readFile(shared('datasets', 'fashion-mnist', 't10k-labels-idx1-ubyte.gz'));
  await fs.writeFile(path.join(bad, 't10k-labels-idx1-ubyte.gz'), bytes.subarray(0, 1000));
  const corrupt = tl('datasets', 'fetch', 'fashion-mnist', '--from', bad);
  assert.notEqual(corrupt.code, 0);
  assert.match(corrupt.stderr, /^tl: .*t10k-labels-idx1-ubyte\.gz: t10k-labels-idx1-ubyte\.gz is 1000 bytes, expected 5148; [^\n]*\n$/);
  const cached = await fs.readdir(path.join(home, 'datasets', 'fashion-mnist'));
  assert.deepEqual(cached, []);
});
