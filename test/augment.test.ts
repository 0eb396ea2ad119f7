import { test } from 'node:test';
import assert from 'node:assert/strict';
import { augmentImage, augmentText, augmentType, mirrorImage, parseAugment } from '../src/data/augment.js';
import { decodeImage } from '../src/data/images.js';
import { byteImageSource } from '../src/data/array-source.js';
import { Rng } from '../src/util/rng.js';
import { initBackend } from '../src/runtime/backend.js';
import { flowerFiles } from './transfer-fixtures.js';

const daisy = () => decodeImage(flowerFiles('train', 1).find((f) => f.label === 'daisy')!.file, { size: [64, 48], channels: 3 });

test('--augment parses the Keras layer factors, and refuses anything else with the valid list', () => {
  assert.deepEqual(parseAugment('flip,rotate=15,zoom=0.1'), { flip: true, rotate: 15, zoom: 0.1, translate: 0, contrast: 0, brightness: 0, fill: 'reflect' });
  assert.equal(augmentText(parseAugment('fill=constant,translate=0.1')!), 'translate=0.1,fill=constant');
  assert.equal(augmentText(parseAugment(' zoom=0.1 , flip ')!), 'flip,zoom=0.1', 'one canonical text per spec');
  assert.equal(augmentText(parseAugment('none')!), 'none');
  for (const bad of ['flop', 'rotate=200', 'zoom=-0.1', 'zoom', 'flip=1', 'translate=abc', 'fill=wrap']) assert.equal(parseAugment(bad), undefined, bad);
  assert.match(augmentType.expected, /flip, rotate=DEGREES \(0-180\), zoom=F \(0-0.9\), translate=F \(0-0.5\), contrast=F \(0-1\), brightness=F \(0-1\), fill=reflect\|constant/);
});

test('augmentation of a real photo: seeded, identity at zero, an exact mirror, and brightness as Keras shifts it', async () => {
  const img = await daisy();
  const spec = parseAugment('flip,rotate=15,zoom=0.1,translate=0.1,contrast=0.2')!;
  const a = augmentImage(img, spec, new Rng(7));
  assert.deepEqual(augmentImage(img, spec, new Rng(7)).data, a.data, 'same seed, same picture');
  assert.notDeepEqual(augmentImage(img, spec, new Rng(8)).data, a.data);
  assert.deepEqual([a.height, a.width, a.channels], [64, 48, 3]);
  assert.deepEqual(augmentImage(img, parseAugment('none')!, new Rng(1)).data, img.data, 'no factor, no change');

  const m = mirrorImage(img);
  for (const [y, x] of [[0, 0], [10, 5], [63, 47]] as const) {
    for (let c = 0; c < 3; c++) assert.equal(m.data[(y * 48 + (47 - x)) * 3 + c], img.data[(y * 48 + x) * 3 + c]);
  }
  assert.deepEqual(mirrorImage(m).data, img.data, 'mirroring twice gives the photo back');

  // A shift with fill=constant leaves the uncovered border black; reflect fills it from the image.
  const shift = (fill: string) => augmentImage(img, parseAugment(`translate=0.5,fill=${fill}`)!, { next: () => 1 - 1e-12 } as Rng);
  const column0 = (a: { data: Uint8Array }) => Array.from({ length: 64 }, (_, y) => a.data[y * 48 * 3]!);
  assert.ok(column0(shift('constant')).every((v) => v === 0));
  assert.ok(column0(shift('reflect')).some((v) => v > 0));

  // RandomBrightness(0.2): every pixel moves by the same d*255, |d| <= 0.2, clipped to 0..255.
  const b = augmentImage(img, parseAugment('brightness=0.2')!, new Rng(3));
  const shifts = new Set<number>();
  for (let i = 0; i < img.data.length; i++) if (b.data[i]! > 0 && b.data[i]! < 255) shifts.add(b.data[i]! - img.data[i]!);
  assert.ok(shifts.size <= 2 && [...shifts].every((s) => Math.abs(s) <= 51), `one rounded shift, got ${[...shifts]}`);
});

test('rotate=180 at its largest draw turns a real photo upside down', async () => {
  const img = await daisy();
  const turned = augmentImage(img, parseAugment('rotate=180')!, { next: () => 1 - 1e-12 } as Rng);
  // u = 1 - 1e-12 draws the angle +180 (up to 1e-9 degrees): (y, x) -> (h-1-y, w-1-x).
  let maxDiff = 0;
  for (let y = 0; y < 64; y++) for (let x = 0; x < 48; x++) for (let c = 0; c < 3; c++) {
    maxDiff = Math.max(maxDiff, Math.abs(turned.data[(y * 48 + x) * 3 + c]! - img.data[((63 - y) * 48 + (47 - x)) * 3 + c]!));
  }
  assert.ok(maxDiff <= 1, `180 degrees is the image turned upside down (max difference ${maxDiff})`);
});

test('a byte-image source augments training passes only, seeded by the epoch', async () => {
  await initBackend();
  const images = new Uint8Array(2 * 28 * 28);
  for (let i = 0; i < 28 * 28; i++) images[i] = i % 28 < 14 ? 255 : 0; // left half lit
  const data = { images, labels: new Uint8Array([0, 1]), height: 28, width: 28 };
  const spec = parseAugment('rotate=10,translate=0.1')!;
  const source = byteImageSource(data, [0, 1], { scale: 1 / 255, offset: 0 }, (img, rng) => augmentImage(img, spec, rng));
  const pixels = async (epochSeed?: number) => {
    const values: number[] = [];
    for await (const { x, y } of source.batches(2, epochSeed)) {
      values.push(...(await x.data()));
      x.dispose();
      y.dispose();
    }
    return values;
  };
  const plain = await pixels();
  assert.deepEqual(plain.slice(0, 28 * 28), Array.from(images.subarray(0, 28 * 28), (v) => v / 255), 'evaluation passes see the images unchanged');
  assert.deepEqual(await pixels(5), await pixels(5));
  assert.notDeepEqual(await pixels(5), await pixels(6));
});
