import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readIdx, readIdxImages, readIdxLabels, encodeIdx, parseIdx } from '../src/data/idx.js';
import { shared, tempDir } from './helpers.js';

const fmImages = shared('datasets', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const fmLabels = shared('datasets', 'fashion-mnist', 't10k-labels-idx1-ubyte.gz');

/** Every failure must be one line that names the file. */
async function assertOneLineError(run: () => Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(run, (err: Error) => {
    assert.ok(!err.message.includes('\n'), `multi-line message: ${err.message}`);
    assert.ok(err.message.includes(file), `message does not name ${file}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('reads the real Fashion-MNIST test images and labels, gzipped and raw alike', async () => {
  const gz = await readIdxImages(fmImages);
  assert.deepEqual([gz.count, gz.height, gz.width], [10000, 28, 28]);
  assert.equal(gz.data.length, 10000 * 28 * 28);
  const labels = await readIdxLabels(fmLabels);
  assert.equal(labels.length, 10000);
  const perClass = new Array(10).fill(0);
  for (const l of labels) perClass[l]++;
  assert.deepEqual(perClass, new Array(10).fill(1000));

  const dir = tempDir();
  const raw = path.join(dir, 't10k-images-idx3-ubyte');
  await fs.writeFile(raw, gunzipSync(await fs.readFile(fmImages)));
  const plain = await readIdxImages(raw);
  assert.deepEqual(Buffer.compare(Buffer.from(plain.data), Buffer.from(gz.data)), 0);
});

test('a truncated gzip file fails with one line naming it', async () => {
  const dir = tempDir();
  const cut = path.join(dir, 'cut-images-idx3-ubyte.gz');
  const bytes = await fs.readFile(fmImages);
  await fs.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await assertOneLineError(() => readIdx(cut), cut, /truncated or corrupt/);
});

test('a truncated raw idx file fails, giving header and actual sizes', async () => {
  const dir = tempDir();
  const cut = path.join(dir, 'cut-images-idx3-ubyte');
  const raw = gunzipSync(await fs.readFile(fmImages));
  await fs.writeFile(cut, raw.subarray(0, raw.length - 100));
  await assertOneLineError(() => readIdxImages(cut), cut, /is truncated: header says 10000x28x28 = 7840000 values, file holds 7839900/);
});

test('a header whose count disagrees with the data fails', async () => {
  const dir = tempDir();
  const bad = path.join(dir, 'count-labels-idx1-ubyte.gz');
  const raw = Buffer.from(gunzipSync(await fs.readFile(fmLabels)));
  raw.writeUInt32BE(9999, 4); // header now claims one label fewer than the file holds
  await fs.writeFile(bad, gzipSync(raw));
  await assertOneLineError(() => readIdxLabels(bad), bad, /trailing bytes/);
});

test('wrong magic numbers and kinds fail with one line naming the file', async () => {
  await assertOneLineError(() => readIdxImages(fmLabels), fmLabels, /magic 0x00000801 is not an idx images file/);
  await assertOneLineError(() => readIdxLabels(fmImages), fmImages, /magic 0x00000803 is not an idx labels file/);

  const dir = tempDir();
  const notIdx = path.join(dir, 'PROVENANCE.md');
  await fs.copyFile(shared('datasets', 'fashion-mnist', 'PROVENANCE.md'), notIdx);
  await assertOneLineError(() => readIdx(notIdx), notIdx, /not an idx file/);

  const floats = path.join(dir, 'floats-idx1');
  const bytes = encodeIdx([4], new Uint8Array(4));
  bytes[2] = 0x0d; // float32 dtype
  await fs.writeFile(floats, bytes);
  await assertOneLineError(() => readIdx(floats), floats, /dtype 0xd is not supported/);
});

test('encodeIdx and parseIdx round-trip', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const parsed = parseIdx(encodeIdx([2, 3, 4], data), 'memory');
  assert.deepEqual(parsed.dims, [2, 3, 4]);
  assert.deepEqual([...parsed.data], [...data]);
});
