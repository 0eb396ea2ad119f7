/**
 * The catalogue of bad input: each case ends with a non-zero exit and one line naming the file and
 * the fix, with nothing half-written, except unusable images, which are skipped and listed.
 *
 * Covered elsewhere, not repeated here:
 * - truncated, non-image, huge (pixel limit), 16-bit, CMYK and grayscale images decode or are
 *   skipped with their reason: test/image-folder.test.ts ("corrupt and unusual files")
 * - empty folders, one class, a class without images, loose files: test/image-folder.test.ts
 *   ("bad folders fail with one line"); `--size 8`, unknown backbone, a folder that is not a run:
 *   test/transfer.test.ts ("bad inputs to train, predict and evaluate")
 * - corrupt idx files (truncated gzip, short data, wrong magic, count mismatch): test/idx.test.ts
 * - a checksum mismatch in the dataset cache: test/datasets.test.ts; a VGG16 fetch from the wrong
 *   file: test/backbones-cli.test.ts; a weights file of another width: test/backbones-weights.test.ts
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import type { RunMetrics } from '../src/artifacts/run.js';
import { getBackbone } from '../src/backbones/index.js';
import { writeKerasH5Weights } from '../src/backbones/weights-write.js';
import { tryDecodeImage } from '../src/data/images.js';
import { fileAccessReason } from '../src/util/file-kinds.js';
import { initBackend } from '../src/runtime/backend.js';
import { shared, tempDir, tlBin } from './helpers.js';
import { flowerFiles, mobilenet025 } from './transfer-fixtures.js';

const H5_025 = shared('backbones', 'mobilenet_v1_0.25_224_notop_keras_h5', 'mobilenet_2_5_224_tf_no_top.h5');

const scratchDirs: string[] = [];

/** A temporary folder, removed after the tests (modes restored first: some cases lock folders). */
function scratch(what: string): string {
  const dir = tempDir(`tl-bad-input-${what}-`);
  scratchDirs.push(dir);
  return dir;
}

after(async () => {
  for (const dir of scratchDirs) {
    spawnSync('chmod', ['-R', 'u+rwx', dir]);
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** Everything the CLI writes goes below here; world-writable so the unprivileged run can write too. */
const home = scratch('home');
const env = { ...process.env, TL_HOME: home, HOME: home, TL_QUIET: '1', TL_BACKEND: 'wasm' };

/** root reads every file whatever its mode: as root, file-permission cases run the CLI as nobody. */
const unprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

function tl(args: string[], opts: { unprivileged?: boolean; home?: string } = {}) {
  const withHome = opts.home ? { ...env, TL_HOME: opts.home } : env;
  // A timeout turns a hang (a FIFO read as an image) into a failure.
  return spawnSync(process.execPath, [tlBin, ...args], { encoding: 'utf8', env: withHome, timeout: 120_000, ...(opts.unprivileged ? unprivileged : {}) });
}

/** The command fails with exactly one line, `tl: FILE: ...`; returns that line. */
function failsNaming(args: string[], file: string, pattern: RegExp, opts: { home?: string } = {}): string {
  const r = tl(args, opts);
  assert.notEqual(r.status, 0, `${args.join(' ')} should fail`);
  assert.ok(r.signal === null, `${args.join(' ')} was killed (${r.signal}): it hung`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0]!.startsWith(`tl: ${file}`), `names ${file}: ${lines[0]}`);
  assert.match(lines[0]!, pattern);
  return lines[0]!;
}

/** Nothing half-written: no file or folder of that name (or a `.partial`/temp sibling of it) exists. */
async function assertNoTrace(target: string): Promise<void> {
  const siblings = await fs.readdir(path.dirname(target)).catch(() => [] as string[]);
  assert.deepEqual(siblings.filter((name) => name.startsWith(path.basename(target))), [], `traces of ${target}`);
}

async function worldReadable(dir: string, mode = 0o755): Promise<string> {
  await fs.chmod(dir, mode);
  return dir;
}

async function copyPhotos(label: string, count: number, dir: string, skip = 0): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  for (const { file } of flowerFiles('train', count + skip).filter((f) => f.label === label).slice(skip)) {
    await fs.copyFile(file, path.join(dir, path.basename(file)));
    await fs.chmod(path.join(dir, path.basename(file)), 0o644);
  }
}

/** A 16x16, 3-frame GIF: only its first frame is read. */
async function animatedGif(file: string): Promise<void> {
  const [w, h, frames] = [16, 16, 3];
  const pixels = Buffer.alloc(w * h * frames * 3);
  for (let f = 0; f < frames; f++) pixels.fill(80 * f, f * w * h * 3, (f + 1) * w * h * 3);
  await sharp(pixels, { raw: { width: w, height: h * frames, channels: 3, pageHeight: h } }).gif({ loop: 0 }).toFile(file);
}

const HTML_CLASS = '<img src=x onerror=alert(1)>';

/**
 * A data folder with every odd thing an image folder can hold. Returns the reasons expected for
 * the skipped entries (path relative to the folder -> pattern) and how many images are usable.
 */
async function oddDataFolder(sockets: net.Server[]): Promise<{ data: string; skipped: Record<string, RegExp>; usable: number }> {
  const root = await worldReadable(scratch('odd'));
  const data = path.join(root, 'data');
  const daisy = path.join(data, 'daisy');
  const pansy = path.join(data, 'pansy');
  await copyPhotos('daisy', 3, daisy);
  await copyPhotos('pansy', 3, pansy);
  await copyPhotos('bluebell', 3, path.join(data, HTML_CLASS));
  // A symlinked class folder, and a symlinked sub-folder inside a class, both outside the tree.
  await copyPhotos('sunflower', 3, path.join(root, 'elsewhere', 'sunflower'));
  await fs.symlink(path.join(root, 'elsewhere', 'sunflower'), path.join(data, 'sunflower'));
  await copyPhotos('daisy', 1, path.join(root, 'elsewhere', 'more-daisies'), 3);
  await fs.symlink(path.join(root, 'elsewhere', 'more-daisies'), path.join(daisy, 'more'));
  await fs.symlink('..', path.join(daisy, 'up')); // a loop back to the data folder
  await fs.symlink('missing.jpg', path.join(daisy, 'broken.jpg'));

  // Truncated photos, several, so that they fail side by side (their reasons used to read "Unknown error").
  const photos = flowerFiles('train', 6).map((f) => f.file);
  for (const [i, photo] of photos.slice(0, 6).entries()) {
    const bytes = await fs.readFile(photo);
    await fs.writeFile(path.join(daisy, `truncated-${i}.jpg`), bytes.subarray(0, Math.floor(bytes.length / 3)));
  }
  await fs.writeFile(path.join(daisy, 'empty.jpg'), '');
  await fs.writeFile(path.join(daisy, 'notes.txt'), 'not an image\n');
  spawnSync('mkfifo', [path.join(daisy, 'x.jpg')]);
  const socket = net.createServer();
  await new Promise<void>((resolve) => socket.listen(path.join(daisy, 'socket.png'), resolve));
  sockets.push(socket);
  await fs.copyFile(photos[0]!, path.join(daisy, 'locked.jpg'));
  await fs.chmod(path.join(daisy, 'locked.jpg'), 0o000);
  await copyPhotos('daisy', 1, path.join(daisy, 'locked-folder'), 5);
  await fs.chmod(path.join(daisy, 'locked-folder'), 0o000);

  // Unusual but usable images.
  const rgba = Buffer.alloc(32 * 32 * 4, 0); // fully transparent: flattened onto white
  await sharp(rgba, { raw: { width: 32, height: 32, channels: 4 } }).png().toFile(path.join(pansy, 'alpha.png'));
  await sharp(Buffer.from([200, 30, 90]), { raw: { width: 1, height: 1, channels: 3 } }).png().toFile(path.join(pansy, 'one-pixel.png'));
  await animatedGif(path.join(pansy, 'animated.gif'));
  for (const dir of [data, daisy, pansy, path.join(root, 'elsewhere')]) await worldReadable(dir);

  const skipped: Record<string, RegExp> = {
    'daisy/up': /^folder already read \(a symlink loop or a second link to it\)$/,
    'daisy/broken.jpg': /^broken symlink$/,
    'daisy/empty.jpg': /^empty file \(0 bytes\)$/,
    'daisy/notes.txt': /^not an image file \(extension\)$/,
    'daisy/x.jpg': /^not a regular file \(FIFO\)$/,
    'daisy/socket.png': /^not a regular file \(socket\)$/,
    'daisy/locked.jpg': /^permission denied$/,
    'daisy/locked-folder': /^folder not readable \(permission denied\)$/,
  };
  for (let i = 0; i < 6; i++) skipped[`daisy/truncated-${i}.jpg`] = /^truncated or corrupt image data$/;
  return { data, skipped, usable: 3 + 1 + 3 + 3 + 3 + 3 };
}

const sockets: net.Server[] = [];
after(() => sockets.forEach((s) => s.close()));

/** The run trained on the odd folder; later cases damage copies of it. */
let trainedRun: string | undefined;

test('tl train on a folder of odd files: symlinks followed, FIFOs, sockets, unreadable and corrupt files skipped and listed', async () => {
  await worldReadable(home, 0o777);
  const { data, skipped, usable } = await oddDataFolder(sockets);
  const runs = await worldReadable(scratch('runs'), 0o777);
  const run = path.join(runs, 'odd');
  const r = tl(['train', '--backbone', 'mobilenet', '--weights', mobilenet025(), '--epochs', '1', '--val-split', '0.25', '--out', run, data], { unprivileged: true });
  assert.equal(r.status, 0, r.stderr);

  const labels = JSON.parse(await fs.readFile(path.join(run, 'labels.json'), 'utf8')) as string[];
  assert.deepEqual(labels, [HTML_CLASS, 'daisy', 'pansy', 'sunflower'], 'the symlinked class folder is a class');
  const metrics = JSON.parse(await fs.readFile(path.join(run, 'metrics.json'), 'utf8')) as RunMetrics;
  const reasons = Object.fromEntries((metrics.dataset.skipped ?? []).map((s) => [path.relative(data, s.file), s.reason]));
  assert.deepEqual(Object.keys(reasons).sort(), Object.keys(skipped).sort());
  for (const [file, pattern] of Object.entries(skipped)) assert.match(reasons[file]!, pattern, file);
  assert.equal(metrics.dataset.trainCount + metrics.dataset.valCount + metrics.dataset.testCount, usable, 'alpha, 1x1, animated and the symlinked sub-folder are used');
  for (const file of Object.keys(skipped)) assert.ok(r.stderr.includes(`${path.join(data, file)}: `), `stderr lists ${file}`);

  const report = await fs.readFile(path.join(run, 'report.html'), 'utf8');
  assert.ok(!report.includes(HTML_CLASS), 'class names are escaped in the report');
  assert.match(report, /&(lt|#60);img src=x onerror=alert\(1\)&(gt|#62);/, 'and shown, escaped');
  trainedRun = run;
});

test('decodes failing side by side each keep their own reason (libvips shares one error buffer)', async () => {
  const dir = scratch('parallel');
  const files: string[] = [];
  for (const [i, { file }] of flowerFiles('train', 4).entries()) {
    const bytes = await fs.readFile(file);
    files.push(path.join(dir, `${i}.jpg`));
    await fs.writeFile(files.at(-1)!, i % 2 ? bytes : bytes.subarray(0, Math.floor(bytes.length / 3)));
  }
  const results = await Promise.all(files.map((f) => tryDecodeImage(f, { size: [64, 64], channels: 3 })));
  const reasons = results.map((r) => (r.ok ? 'ok' : r.reason));
  assert.deepEqual(new Set(reasons), new Set(['ok', 'truncated or corrupt image data']));
  // Tests run as root, where no file is unreadable: the classification itself.
  assert.equal(fileAccessReason(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })), 'permission denied');
});

test('tl predict skips a FIFO named on the command line instead of blocking on it', async (t) => {
  if (!trainedRun) return t.skip('needs the run of the first test');
  const dir = scratch('fifo');
  const fifo = path.join(dir, 'photo.jpg');
  spawnSync('mkfifo', [fifo]);
  const r = tl(['predict', trainedRun!, fifo, flowerFiles('test', 1)[0]!.file, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { predictions: unknown[]; skipped: { file: string; reason: string }[] };
  assert.equal(out.predictions.length, 1);
  assert.deepEqual(out.skipped, [{ file: fifo, reason: 'not a regular file (FIFO)' }]);
});

test('a truncated or random .h5 (or a FIFO) as --weights: one line naming it, no HDF5 diagnostics, no run', async () => {
  const dir = tempDir('tl-h5-');
  const data = await fs.mkdtemp(path.join(dir, 'data-'));
  await copyPhotos('daisy', 2, path.join(data, 'daisy'));
  await copyPhotos('pansy', 2, path.join(data, 'pansy'));
  const bytes = await fs.readFile(H5_025);
  const truncated = path.join(dir, 'truncated.h5');
  await fs.writeFile(truncated, bytes.subarray(0, 1_000_000));
  const scrambled = path.join(dir, 'scrambled.h5');
  await fs.writeFile(scrambled, Buffer.concat([bytes.subarray(0, 8), Buffer.alloc(100_000, 7)]));
  const out = path.join(dir, 'run');
  failsNaming(['train', '--backbone', 'mobilenet', '--weights', truncated, '--out', out, data], truncated, /cannot be read as HDF5 \(truncated file: eof = 1000000.*\); .*again$/);
  failsNaming(['train', '--backbone', 'mobilenet', '--weights', scrambled, '--out', out, data], scrambled, /cannot be read as HDF5/);
  const fifo = path.join(dir, 'pipe.h5');
  spawnSync('mkfifo', [fifo]);
  failsNaming(['train', '--backbone', 'mobilenet', '--weights', fifo, '--out', out, data], fifo, /is not a regular file \(FIFO\)/);
  await assertNoTrace(out);
});

test('backbones fetch --from opens the weights first: truncated, random or other-width files are refused and nothing is stored', async () => {
  const dir = scratch('fetch');
  const fetchHome = scratch('fetch-home');
  const fetch = (from: string) => ['backbones', 'fetch', 'mobilenet', '--alpha', '0.75', '--from', from, '--json'];
  const bytes = await fs.readFile(H5_025);
  const truncated = path.join(dir, 'truncated.h5');
  await fs.writeFile(truncated, bytes.subarray(0, bytes.length / 2));
  const random = path.join(dir, 'random.h5');
  await fs.writeFile(random, Buffer.alloc(4096, 0x5a));
  const opts = { home: fetchHome };
  failsNaming(fetch(truncated), truncated, /cannot be read as HDF5/, opts);
  failsNaming(fetch(random), random, /is not an HDF5 file/, opts);
  failsNaming(fetch(H5_025), H5_025, /layer conv1 weight kernel expected shape \[3,3,3,24\], found \[3,3,3,8\]; this file does not hold mobilenet alpha 0.75 weights/, opts);
  await assertNoTrace(path.join(fetchHome, 'backbones', 'mobilenet-0.75-notop'));

  // A file that fits (random weights of the right shapes) is then stored, under any name, and recorded as imported from there.
  await initBackend();
  const model = getBackbone('mobilenet').build({ inputShape: [96, 96, 3], alpha: 0.75 });
  const good = path.join(dir, 'my-mobilenet-0.75.h5');
  await writeKerasH5Weights(model, good);
  model.dispose();
  const ok = tl(fetch(good), opts);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual((JSON.parse(ok.stdout) as { files: unknown[] }).files, [{ name: 'mobilenet_7_5_224_tf_no_top.h5', verifiedBy: 'none', added: true }]);
  const manifest = JSON.parse(await fs.readFile(path.join(fetchHome, 'backbones', 'mobilenet-0.75-notop', 'tl-manifest.json'), 'utf8')) as Record<string, { source: string }>;
  assert.equal(manifest['mobilenet_7_5_224_tf_no_top.h5']!.source, good);
});

test('backbones fetch --from a file of the right size but the wrong md5: refused, and the cache keeps neither file nor manifest entry', async () => {
  const fetchHome = scratch('md5-home');
  const impostor = path.join(scratch('md5'), 'vgg16.h5');
  await fs.writeFile(impostor, Buffer.alloc(58_889_256)); // the size of the official VGG16 no-top file
  failsNaming(['backbones', 'fetch', 'vgg16', '--from', impostor], impostor, /md5 mismatch for vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5/, { home: fetchHome });
  const cache = path.join(fetchHome, 'backbones', 'vgg16-notop');
  await assertNoTrace(path.join(cache, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'));
  const manifest = await fs.readFile(path.join(cache, 'tl-manifest.json'), 'utf8').catch(() => '{}');
  assert.deepEqual(JSON.parse(manifest), {});
});

/** A copy of the trained run with one file's bytes changed by `damage`. */
async function damagedRun(name: string, file: string, damage: (bytes: Buffer) => Buffer | string): Promise<string> {
  const copy = path.join(scratch('damaged'), name);
  await fs.cp(trainedRun!, copy, { recursive: true });
  const target = path.join(copy, file);
  await fs.writeFile(target, damage(await fs.readFile(target)));
  return copy;
}

/** A `damage` that edits a JSON file. */
function editJson(edit: (json: Record<string, unknown>) => unknown): (bytes: Buffer) => string {
  return (bytes) => JSON.stringify(edit(JSON.parse(bytes.toString('utf8')) as Record<string, unknown>));
}

type ModelJson = { modelTopology: { model_config?: { config: { layers: { class_name: string }[] } }; config?: { layers: { class_name: string }[] } }; weightsManifest: { weights: { shape: number[] }[] }[] };

function topologyLayers(json: ModelJson): { class_name: string }[] {
  return (json.modelTopology.model_config?.config ?? json.modelTopology.config)!.layers;
}

test('a damaged run dir: one line naming the file that is wrong (model.json, weights, labels.json, run.json)', async (t) => {
  if (!trainedRun) return t.skip('needs the run of the first test');
  const photo = flowerFiles('test', 1)[0]!.file;
  const unknownLayer = await damagedRun('unknown-layer', 'model.json', editJson((json) => {
    topologyLayers(json as unknown as ModelJson).at(-1)!.class_name = 'FancyDense';
    return json;
  }));
  failsNaming(['predict', unknownLayer, photo], path.join(unknownLayer, 'model.json'), /cannot be loaded as a TensorFlow.js layers model \(Unknown layer: FancyDense\); .*train again$/);

  const reshaped = await damagedRun('reshaped', 'model.json', editJson((json) => {
    const weight = (json as unknown as ModelJson).weightsManifest[0]!.weights.find((w) => w.shape.length === 2 && w.shape[0] !== w.shape[1])!;
    weight.shape = [...weight.shape].reverse(); // same byte count, another shape
    return json;
  }));
  failsNaming(['predict', reshaped, photo], path.join(reshaped, 'model.json'), /cannot be loaded .*\(Shape mismatch: \[\d+,\d+\] vs\. \[\d+,\d+\]\)/);

  const badLabels = await damagedRun('labels', 'labels.json', editJson(() => ({ daisy: 0 })));
  failsNaming(['predict', badLabels, photo], path.join(badLabels, 'labels.json'), /is not a list of class names; the run is damaged/);

  const badShape = await damagedRun('shape', 'run.json', editJson((json) => ({ ...json, inputShape: [28, 28, 1] })));
  failsNaming(['predict', badShape, photo], path.join(badShape, 'run.json'), /inputShape \[28,28,1\] does not match the model's input \[150,150,3\]/);

  const cutJson = await damagedRun('cut-json', 'run.json', (bytes) => bytes.subarray(0, bytes.length / 2));
  failsNaming(['predict', cutJson, photo], path.join(cutJson, 'run.json'), /run.json is not valid JSON; the run is damaged/);

  const cutWeights = await damagedRun('cut-weights', 'weights.bin', (bytes) => bytes.subarray(0, bytes.length / 2));
  failsNaming(['predict', cutWeights, photo], cutWeights, /weight shards hold \d+ bytes, model.json needs \d+/);
});

test('--size above the documented maximum is refused before any image is read', async () => {
  const runs = scratch('size');
  const out = path.join(runs, 'run');
  const r = tl(['train', '--backbone', 'mobilenet', '--weights', mobilenet025(), '--size', '100000', '--out', out, shared('datasets', 'oxford-flowers-5', 'train')]);
  // A usage error: commander's line from the option's range, and where the help is.
  assert.equal(r.status, 1);
  assert.deepEqual(r.stderr.trim().split('\n').slice(1), ['see `tl train --help`'], r.stderr);
  assert.match(r.stderr, /^error: option '--size <px>' argument '100000' is invalid\. It must be an integer number of pixels up to 1024/);
  await assertNoTrace(out);
});
