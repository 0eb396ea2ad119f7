import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { DecodedImageMemo, openImageFolder, scanClassFolders, ImageBatchSource, requireEveryClass } from '../src/data/image-folder.js';
import { decodeImage, tryDecodeImage } from '../src/data/images.js';
import { borderMean, imagesToTensor, preprocessInto } from '../src/data/preprocess.js';
import { initBackend } from '../src/runtime/backend.js';
import { TlError } from '../src/util/errors.js';
import { tempDir } from './helpers.js';
import { FLOWER_CLASSES, flowerFiles, flowers } from './transfer-fixtures.js';

test('a class-per-folder tree: sorted class names and three disjoint stratified, seeded splits', async () => {
  const a = await openImageFolder(flowers('train'), { valSplit: 0.1, testSplit: 0.1, seed: 1 });
  assert.deepEqual(a.classNames, FLOWER_CLASSES);
  assert.equal(a.train.length + a.val.length + a.test.length, 300);
  for (let k = 0; k < 5; k++) {
    assert.equal(a.val.filter((s) => s.label === k).length, 6, `class ${k} keeps its share of validation`);
    assert.equal(a.test.filter((s) => s.label === k).length, 6, `class ${k} keeps its share of test`);
  }
  const files = (set: { file: string }[]) => new Set(set.map((s) => s.file));
  const [train, val, test] = [files(a.train), files(a.val), files(a.test)];
  assert.equal(new Set([...train, ...val, ...test]).size, 300, 'no image is in two splits');
  assert.match(a.split, /10% held out as test/);
  const again = await openImageFolder(flowers('train'), { valSplit: 0.1, testSplit: 0.1, seed: 1 });
  assert.deepEqual([again.val, again.test], [a.val, a.test], 'same seed, same split');
  const other = await openImageFolder(flowers('train'), { valSplit: 0.1, testSplit: 0.1, seed: 2 });
  assert.notDeepEqual(other.test, a.test);
  const moreVal = await openImageFolder(flowers('train'), { valSplit: 0.2, testSplit: 0.1, seed: 1 });
  assert.deepEqual(moreVal.test, a.test, 'the test split does not move with --val-split');
  for (const s of a.train) assert.equal(path.basename(path.dirname(s.file)), FLOWER_CLASSES[s.label]);
  const none = await openImageFolder(flowers('train'), { valSplit: 0.1, testSplit: 0, seed: 1 });
  assert.deepEqual(none.test, none.val, 'only --test-split 0 measures on the validation split');
  assert.match(none.split, /no test set: test = validation/);
});

test('a test split that would leave a class without a training image fails with one line naming the class', async () => {
  const root = tempDir('tl-split-');
  const picked = [...flowerFiles('train', 6).filter((f) => f.label === 'daisy'), ...flowerFiles('train', 2).filter((f) => f.label === 'pansy')];
  for (const { label, file } of picked) {
    await fs.mkdir(path.join(root, label), { recursive: true });
    await fs.symlink(file, path.join(root, label, path.basename(file)));
  }
  // pansy: 1 of its 2 images to test, the other to validation; daisy keeps one to train on.
  await assert.rejects(openImageFolder(root, { valSplit: 0.4, testSplit: 0.5, seed: 1 }), (e) => e instanceof TlError && /class "pansy" has too few images/.test(e.message) && !e.message.includes('\n'));
  await fs.rm(root, { recursive: true });
});

test('a dataset with train/ and test/ sub-trees uses test/ as the test set', async () => {
  const d = await openImageFolder(path.dirname(flowers('train')), { valSplit: 0.1, testSplit: 0.1, seed: 1 });
  assert.deepEqual(d.classNames, FLOWER_CLASSES);
  assert.equal(d.train.length, 270);
  assert.equal(d.val.length, 30);
  assert.equal(d.test.length, 100);
  assert.ok(d.test.every((s) => s.file.includes(`${path.sep}test${path.sep}`)));
  assert.match(d.split, /test\//);
});

/** A PNG header claiming 20000x20000 pixels: decoding it for real would need 1.2 GB. */
function hugePngHeader(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(20000, 0);
  ihdr.writeUInt32BE(20000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1000))), chunk('IEND', Buffer.alloc(0))]);
}

async function meanAbsDiff(a: string, b: string): Promise<number> {
  const opts = { size: [64, 64] as [number, number], channels: 3 as const };
  const [x, y] = [await decodeImage(a, opts), await decodeImage(b, opts)];
  let sum = 0;
  for (let i = 0; i < x.data.length; i++) sum += Math.abs(x.data[i]! - y.data[i]!);
  return sum / x.data.length;
}

test('corrupt and unusual files: bad ones are skipped with a reason, 16-bit PNG and CMYK JPEG decode correctly', async () => {
  await initBackend();
  const dir = tempDir('tl-corrupt-');
  const [daisy, pansy] = [flowerFiles('train', 1)[1]!.file, flowerFiles('train', 1)[2]!.file];
  await fs.mkdir(path.join(dir, 'daisy'));
  await fs.mkdir(path.join(dir, 'pansy'));
  const bytes = await fs.readFile(daisy);
  await fs.copyFile(daisy, path.join(dir, 'daisy', 'good.jpg'));
  await fs.writeFile(path.join(dir, 'daisy', 'truncated.jpg'), bytes.subarray(0, Math.floor(bytes.length / 3)));
  await fs.writeFile(path.join(dir, 'daisy', 'not-an-image.jpg'), 'this is a text file with a .jpg name\n');
  await fs.writeFile(path.join(dir, 'daisy', 'huge.png'), hugePngHeader());
  await fs.writeFile(path.join(dir, 'daisy', 'notes.txt'), 'labels checked by hand\n');
  await sharp(daisy).toColourspace('rgb16').png().toFile(path.join(dir, 'daisy', 'deep16.png'));
  await sharp(pansy).toColourspace('cmyk').jpeg().toFile(path.join(dir, 'pansy', 'cmyk.jpg'));
  await sharp(pansy).grayscale().png().toFile(path.join(dir, 'pansy', 'gray.png'));
  await sharp(pansy).webp().toFile(path.join(dir, 'pansy', 'p.webp'));

  assert.equal((await sharp(path.join(dir, 'daisy', 'deep16.png')).metadata()).depth, 'ushort');
  assert.equal((await sharp(path.join(dir, 'pansy', 'cmyk.jpg')).metadata()).space, 'cmyk');
  assert.ok((await meanAbsDiff(path.join(dir, 'daisy', 'deep16.png'), daisy)) < 2, '16-bit PNG comes out as the same 8-bit picture');
  assert.ok((await meanAbsDiff(path.join(dir, 'pansy', 'cmyk.jpg'), pansy)) < 25, 'CMYK JPEG comes out as RGB of the same picture');

  const scanned = await scanClassFolders(dir);
  assert.deepEqual(scanned.skipped.map((s) => path.basename(s.file)), ['notes.txt']);
  const skipped = new Map(scanned.skipped.map((s) => [s.file, s.reason]));
  const source = new ImageBatchSource(scanned.samples, [64, 64, 3], { mode: 'scale', scale: 1 / 127.5, offset: -1, grayscale: false }, skipped);
  let images = 0;
  for await (const { x, y } of source.batches(3)) {
    assert.deepEqual(x.shape.slice(1), [64, 64, 3]);
    images += y.shape[0];
    x.dispose();
    y.dispose();
  }
  const reasons = Object.fromEntries([...skipped].map(([f, r]) => [path.basename(f), r]));
  assert.deepEqual(Object.keys(reasons).sort(), ['huge.png', 'not-an-image.jpg', 'notes.txt', 'truncated.jpg']);
  assert.match(reasons['huge.png']!, /pixel limit/);
  assert.match(reasons['not-an-image.jpg']!, /not an image/);
  assert.match(reasons['truncated.jpg']!, /truncated|corrupt|premature/i);
  assert.equal(images, 5, 'good.jpg, deep16.png, cmyk.jpg, gray.png and p.webp are used');
});

test('EXIF orientation is applied before resizing', async () => {
  const dir = tempDir('tl-exif-');
  const src = path.join(dir, 'wide.png');
  // 40 wide, 20 tall: left half black, right half white.
  const pixels = Buffer.alloc(40 * 20 * 3);
  for (let y = 0; y < 20; y++) for (let x = 20; x < 40; x++) pixels.fill(255, (y * 40 + x) * 3, (y * 40 + x) * 3 + 3);
  await sharp(pixels, { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(path.join(dir, 'rotated.jpg'));
  await sharp(pixels, { raw: { width: 40, height: 20, channels: 3 } }).png().toFile(src);
  const upright = await decodeImage(path.join(dir, 'rotated.jpg'), { size: [40, 20], channels: 1 });
  // Orientation 6 = rotate 90 degrees clockwise: the black left half ends up on top.
  const at = (y: number, x: number) => upright.data[y * 20 + x]!;
  assert.ok(at(5, 10) < 60 && at(35, 10) > 200, `top ${at(5, 10)}, bottom ${at(35, 10)}`);
});

test('grayscale models: light backgrounds are inverted, dark ones kept (decided from the border)', async () => {
  const dir = tempDir('tl-ink-');
  const ink = Buffer.alloc(28 * 28, 255);
  for (let y = 8; y < 20; y++) for (let x = 12; x < 16; x++) ink[y * 28 + x] = 0;
  await sharp(ink, { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(path.join(dir, 'paper.png'));
  const img = await decodeImage(path.join(dir, 'paper.png'), { size: [28, 28], channels: 1 });
  assert.ok(borderMean(img) > 250);
  const config = { mode: 'scale', scale: 1 / 255, offset: 0, grayscale: true, invertLightBackground: true } as const;
  const out = new Float32Array(28 * 28);
  preprocessInto(img, config, out);
  assert.ok(out[0]! < 0.02 && out[10 * 28 + 13]! > 0.98, 'paper becomes 0, ink becomes 1 (like MNIST)');
  preprocessInto(img, { ...config, invertLightBackground: false }, out);
  assert.ok(out[0]! > 0.98, 'without the flag nothing is inverted');
  const dark = { ...img, data: img.data.map((v) => 255 - v) };
  preprocessInto(dark, config, out);
  assert.ok(out[0]! < 0.02 && out[10 * 28 + 13]! > 0.98, 'a dark background is already MNIST-like');
  await initBackend();
  const t = imagesToTensor([img, dark], config);
  assert.deepEqual(t.shape, [2, 28, 28, 1]);
  t.dispose();
});

function oneLineError(err: unknown, pattern: RegExp): boolean {
  assert.ok(err instanceof TlError, `expected a TlError, got ${String(err)}`);
  assert.equal(err.message.split('\n').length, 1);
  assert.match(err.message, pattern);
  return true;
}

test('bad folders fail with one line that names the folder and the fix', async () => {
  const root = tempDir('tl-bad-');
  await fs.mkdir(path.join(root, 'empty'));
  await assert.rejects(openImageFolder(path.join(root, 'empty'), { valSplit: 0.1, testSplit: 0.1, seed: 1 }), (e) => oneLineError(e, /empty.*is empty.*sub-folder/));
  await assert.rejects(openImageFolder(path.join(root, 'missing'), { valSplit: 0.1, testSplit: 0.1, seed: 1 }), (e) => oneLineError(e, /missing: does not exist/));
  await fs.writeFile(path.join(root, 'file.jpg'), 'x');
  await assert.rejects(openImageFolder(path.join(root, 'file.jpg'), { valSplit: 0.1, testSplit: 0.1, seed: 1 }), (e) => oneLineError(e, /is not a directory/));
  const one = path.join(root, 'one');
  await fs.mkdir(path.join(one, 'daisy'), { recursive: true });
  await fs.copyFile(flowerFiles('train', 1)[1]!.file, path.join(one, 'daisy', 'a.jpg'));
  await assert.rejects(openImageFolder(one, { valSplit: 0.1, testSplit: 0.1, seed: 1 }), (e) => oneLineError(e, /only one class \(daisy\)/));
  await fs.mkdir(path.join(one, 'rose'));
  await fs.writeFile(path.join(one, 'rose', 'readme.txt'), 'todo');
  await assert.rejects(openImageFolder(one, { valSplit: 0.1, testSplit: 0.1, seed: 1 }), (e) => oneLineError(e, /rose: has no image files/));
  await fs.writeFile(path.join(one, 'rose', 'broken.png'), 'not a png');
  const data = await scanClassFolders(one);
  const skipped = new Map([[path.join(one, 'rose', 'broken.png'), 'not an image (unsupported format)']]);
  assert.throws(() => requireEveryClass(data.samples, skipped, data.classNames, one), (e) => oneLineError(e, /class "rose" has no readable image \(e\.g\. rose\/broken\.png: not an image/));
  const loose = path.join(root, 'loose');
  await fs.mkdir(loose);
  await fs.copyFile(flowerFiles('train', 1)[0]!.file, path.join(loose, 'a.jpg'));
  await assert.rejects(scanClassFolders(loose), (e) => oneLineError(e, /holds 1 images but no class sub-folders/));
  assert.equal((await tryDecodeImage(path.join(root, 'nope.jpg'), { size: [8, 8], channels: 3 })).ok, false);
});

test('decoded photos are kept for later passes up to the memo budget, and decode the same as without it', async () => {
  const files = flowerFiles('train', 3).slice(0, 3).map((f) => f.file);
  const shape = [32, 32, 3] as const;
  const memo = new DecodedImageMemo(2 * 32 * 32 * 3); // room for two pictures
  const first = files.map((f) => memo.load(f, shape));
  assert.equal(memo.load(files[0]!, shape), first[0], 'a kept photo is not decoded again');
  assert.equal(memo.load(files[1]!, shape), first[1]);
  assert.notEqual(memo.load(files[2]!, shape), first[2], 'over budget: decoded again, not kept');
  assert.notEqual(memo.load(files[0]!, [48, 48, 3]), first[0], 'another input shape is another picture');
  const kept = await first[0]!;
  const plain = await decodeImage(files[0]!, { size: [32, 32], channels: 3 });
  assert.ok(kept.ok);
  assert.deepEqual(kept.image.data, plain.data);
});
