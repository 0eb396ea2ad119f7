import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fetchDataset, loadDataset, readSample, stratifiedSplit, datasetStatus, clearDatasetMemory, type ImageSet } from '../src/data/datasets.js';
import { importCsv } from '../src/data/csv.js';
import { readManifest } from '../src/data/assets.js';
import { shared, tempDir } from './helpers.js';

process.env.TL_QUIET = '1';
const home = tempDir('tl-datasets-');

before(async () => {
  process.env.TL_HOME = home;
  await fetchDataset('fashion-mnist', { from: shared('datasets', 'fashion-mnist') });
  await fetchDataset('emnist-bymerge', { from: shared('datasets', 'emnist-bymerge') });
});

after(() => fs.rm(home, { recursive: true, force: true }));

function classCounts(labels: ArrayLike<number>, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}

test('Fashion-MNIST imports from local files and loads 60000/10000 with its labels', async () => {
  const d = await loadDataset('fashion-mnist');
  assert.equal(d.train.count, 60000);
  assert.equal(d.test.count, 10000);
  assert.equal(d.train.images.length, 60000 * 28 * 28);
  assert.deepEqual(d.classNames.slice(0, 3), ['T-shirt/top', 'Trouser', 'Pullover']);
  assert.deepEqual(classCounts(d.train.labels, 10), new Array(10).fill(6000));
  assert.deepEqual(classCounts(d.test.labels, 10), new Array(10).fill(1000));
  // Labels come straight from the official file, row for row.
  const raw = gunzipSync(await fs.readFile(shared('datasets', 'fashion-mnist', 'train-labels-idx1-ubyte.gz')));
  assert.deepEqual(Buffer.from(d.train.labels), raw.subarray(8));
  assert.equal(d.train.sourceIndex[12345], 12345);
  assert.equal(d.train.split, 'train');
});

test('--limit keeps a stratified subset and remembers the source rows', async () => {
  const d = await loadDataset('fashion-mnist', { limit: 1000, seed: 3 });
  assert.equal(d.train.count, 1000);
  assert.deepEqual(classCounts(d.train.labels, 10), new Array(10).fill(100));
  const row = 17;
  const sample = await readSample('fashion-mnist', 'train', d.train.sourceIndex[row]!);
  assert.deepEqual(sample.pixels, d.train.images.slice(row * 784, (row + 1) * 784));
  assert.equal(sample.label, d.train.labels[row]);
});

test('EMNIST ByMerge without --resplit says to use it; with it the split is stratified and seeded', async () => {
  await assert.rejects(loadDataset('emnist-bymerge'), /no train split in the cache .*use --resplit/);
  const a = await loadDataset('emnist-bymerge', { resplit: 0.2, seed: 1 });
  assert.equal(a.classNames.length, 47);
  assert.equal(a.classNames.join(''), '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt');
  assert.equal(a.train.count + a.test.count, 116323);
  assert.equal(a.train.split, 'test');
  const all = classCounts(a.train.labels, 47).map((n, c) => n + classCounts(a.test.labels, 47)[c]!);
  const held = classCounts(a.test.labels, 47);
  for (let c = 0; c < 47; c++) assert.ok(Math.abs(held[c]! - 0.2 * all[c]!) <= 1, `class ${c}: ${held[c]} of ${all[c]}`);
  const rows = new Set([...a.train.sourceIndex, ...a.test.sourceIndex]);
  assert.equal(rows.size, 116323, 'train and test are disjoint and cover the file');

  clearDatasetMemory();
  const again = await loadDataset('emnist-bymerge', { resplit: 0.2, seed: 1 });
  assert.deepEqual(again.test.sourceIndex, a.test.sourceIndex);
  const other = await loadDataset('emnist-bymerge', { resplit: 0.2, seed: 2 });
  assert.notDeepEqual(other.test.sourceIndex, a.test.sourceIndex);
});

/** Mean spread and mass shares of one class's images: what "upright" means for characters. */
function shapeOf(set: ImageSet, cls: number) {
  let vertical = 0, horizontal = 0, top = 0, left = 0, mass = 0, n = 0;
  const { height: h, width: w } = set;
  for (let i = 0; i < set.count; i++) {
    if (set.labels[i] !== cls) continue;
    const img = set.images.subarray(i * h * w, (i + 1) * h * w);
    let m = 0, mr = 0, mc = 0, vr = 0, vc = 0;
    img.forEach((v, k) => { m += v; mr += v * Math.floor(k / w); mc += v * (k % w); });
    mr /= m; mc /= m;
    img.forEach((v, k) => {
      const r = Math.floor(k / w), c = k % w;
      vr += v * (r - mr) ** 2; vc += v * (c - mc) ** 2;
      if (r < h / 2) top += v;
      if (c < w / 2) left += v;
    });
    vertical += Math.sqrt(vr / m); horizontal += Math.sqrt(vc / m); mass += m; n++;
  }
  return { vertical: vertical / n, horizontal: horizontal / n, topShare: top / mass, leftShare: left / mass };
}

test('EMNIST images come out upright: 1 is tall, 7 and T are top-heavy, L sits bottom-left', async () => {
  const d = await loadDataset('emnist-bymerge', { resplit: 0.2, seed: 1 });
  const index = (ch: string) => d.classNames.indexOf(ch);
  const one = shapeOf(d.test, index('1'));
  assert.ok(one.vertical > 2 * one.horizontal, `1: ${JSON.stringify(one)}`);
  const seven = shapeOf(d.test, index('7'));
  assert.ok(seven.topShare > 0.6 && seven.leftShare < 0.5, `7: ${JSON.stringify(seven)}`);
  const tee = shapeOf(d.test, index('T'));
  assert.ok(tee.topShare > 0.6, `T: ${JSON.stringify(tee)}`);
  const ell = shapeOf(d.test, index('L'));
  assert.ok(ell.topShare < 0.45 && ell.leftShare > 0.5, `L: ${JSON.stringify(ell)}`);
});

test('stratifiedSplit is exact per class and rejects bad fractions', () => {
  const labels = Uint8Array.from({ length: 1003 }, (_, i) => (i % 7 === 0 ? 1 : i % 3));
  const { train, test } = stratifiedSplit(labels, 0.1, 42);
  assert.equal(train.length + test.length, labels.length);
  const held = classCounts(Array.from(test, (i) => labels[i]!), 3);
  const all = classCounts(labels, 3);
  held.forEach((h, c) => assert.ok(Math.abs(h - 0.1 * all[c]!) <= 0.5));
  assert.throws(() => stratifiedSplit(labels, 1, 1), /between 0 and 1/);
});

test('EMNIST Balanced: the labels and mapping are imported, the missing images are named', async () => {
  const r = await fetchDataset('emnist-balanced', { from: shared('datasets', 'emnist-balanced') });
  assert.deepEqual(r.added.map((a) => a.name).sort(), [
    'emnist-balanced-mapping.txt',
    'emnist-balanced-test-labels-idx1-ubyte.gz',
    'emnist-balanced-train-labels-idx1-ubyte.gz',
  ]);
  assert.deepEqual(r.missing.sort(), ['emnist-balanced-test-images-idx3-ubyte.gz', 'emnist-balanced-train-images-idx3-ubyte.gz']);
  const status = await datasetStatus('emnist-balanced');
  assert.deepEqual(status.splits.map((s) => s.missing), [['emnist-balanced-train-images-idx3-ubyte.gz'], ['emnist-balanced-test-images-idx3-ubyte.gz']]);
  await assert.rejects(loadDataset('emnist-balanced'), /dataset emnist-balanced is not in the cache .*run: tl datasets fetch emnist-balanced/);
});

test('unknown names list the known datasets', async () => {
  await assert.rejects(loadDataset('mnist-fashion'), /unknown dataset "mnist-fashion"; known datasets: .*emnist-bymerge.*fashion-mnist/);
});

test('a checksum mismatch fails naming file, expected and actual hash, and leaves no cache entry', async () => {
  const src = tempDir();
  const bytes = await fs.readFile(shared('datasets', 'emnist-mnist', 'emnist-mnist-test-labels-idx1-ubyte.gz'));
  bytes[bytes.length - 20]! ^= 0xff;
  await fs.writeFile(path.join(src, 'emnist-mnist-test-labels-idx1-ubyte.gz'), bytes);
  await assert.rejects(fetchDataset('emnist-mnist', { from: src }), (err: Error) => {
    assert.ok(!err.message.includes('\n'));
    assert.match(err.message, /emnist-mnist-test-labels-idx1-ubyte\.gz: sha256 mismatch for emnist-mnist-test-labels-idx1-ubyte\.gz: expected bcc5385d[0-9a-f]+, got [0-9a-f]{64}; .*run: tl datasets fetch emnist-mnist/);
    return true;
  });
  const left = await fs.readdir(path.join(home, 'datasets', 'emnist-mnist'));
  assert.deepEqual(left, [], `cache holds ${left.join(', ')}`);
});

test('a cached labels file whose count disagrees with the images fails naming it', async () => {
  const dir = path.join(home, 'datasets', 'emnist-mnist');
  await fetchDataset('emnist-mnist', { from: shared('datasets', 'emnist-mnist') });
  const labels = path.join(dir, 'emnist-mnist-test-labels-idx1-ubyte.gz');
  const raw = Buffer.from(gunzipSync(await fs.readFile(labels)));
  raw.writeUInt32BE(9990, 4);
  await fs.rm(labels);
  await fs.writeFile(labels.replace(/\.gz$/, ''), raw.subarray(0, raw.length - 10)); // damaged in place, as a disk might
  await assert.rejects(loadDataset('emnist-mnist', { resplit: 0.2 }), /emnist-mnist-test-labels-idx1-ubyte: holds 9990 labels but .* holds 10000 images; fetch both files/);
  await fs.rm(dir, { recursive: true });
});

/** Rows of an idx images file (as stored) and labels as Kaggle CSV text. */
function toCsv(pixels: Uint8Array, labels: Uint8Array, rows: number, header: boolean): string {
  const lines = header ? ['label,' + Array.from({ length: 784 }, (_, i) => `pixel${i}`).join(',')] : [];
  for (let i = 0; i < rows; i++) lines.push([labels[i], ...pixels.subarray(i * 784, (i + 1) * 784)].join(','));
  return lines.join('\n') + '\n';
}

test('CSV import round-trips: the EMNIST-MNIST test CSV rebuilds the official idx file byte for byte', async () => {
  const csvHome = tempDir('tl-csv-');
  process.env.TL_HOME = csvHome;
  try {
    const srcDir = shared('datasets', 'emnist-mnist');
    const images = gunzipSync(await fs.readFile(path.join(srcDir, 'emnist-mnist-test-images-idx3-ubyte.gz'))).subarray(16);
    const labels = gunzipSync(await fs.readFile(path.join(srcDir, 'emnist-mnist-test-labels-idx1-ubyte.gz'))).subarray(8);
    const work = tempDir();
    const csv = path.join(work, 'emnist-mnist-test.csv');
    await fs.writeFile(csv, toCsv(images, labels, 10000, true));
    const stored = await importCsv('emnist-mnist', { files: { test: csv } });
    assert.deepEqual(stored.map((s) => s.verifiedBy), ['sha256', 'sha256']);

    const mapDir = tempDir();
    await fs.copyFile(path.join(srcDir, 'emnist-mnist-mapping.txt'), path.join(mapDir, 'emnist-mnist-mapping.txt'));
    await fetchDataset('emnist-mnist', { from: mapDir });
    const d = await loadDataset('emnist-mnist', { resplit: 0.5, seed: 1 });
    assert.equal(d.train.count + d.test.count, 10000);

    // An upright CSV without a header is transposed back to the stored layout on import.
    const upright = new Uint8Array(100 * 784);
    for (let i = 0; i < 100; i++) upright.set((await readSample('emnist-mnist', 'test', i)).pixels, i * 784);
    const csv2 = path.join(work, 'upright.csv');
    await fs.writeFile(csv2, toCsv(upright, labels, 100, false));
    const before100 = await readSample('emnist-mnist', 'test', 99);
    clearDatasetMemory();
    const [img] = await importCsv('emnist-mnist', { files: { test: csv2 }, layout: 'upright' });
    assert.equal(img!.verifiedBy, 'none');
    const manifest = await readManifest(path.join('datasets', 'emnist-mnist'));
    assert.equal(manifest['emnist-mnist-test-images-idx3-ubyte.gz']!.storedAs, 'emnist-mnist-test-images-idx3-ubyte');
    const after = await readSample('emnist-mnist', 'test', 99);
    assert.deepEqual(after.pixels, before100.pixels);
    await assert.rejects(readSample('emnist-mnist', 'test', 100), /row 100 is out of range \(0\.\.99\)/);

    const short = path.join(work, 'short.csv');
    await fs.writeFile(short, '3,0,0,0\n');
    await assert.rejects(importCsv('emnist-mnist', { files: { test: short } }), /short\.csv:1: row has 4 fields, expected 1 label \+ 784 pixels/);
  } finally {
    process.env.TL_HOME = home;
    clearDatasetMemory();
    await fs.rm(csvHome, { recursive: true, force: true });
  }
});
