import tf from '../runtime/tf.cjs';
import { constants as fsConstants, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { BudgetedMap } from '../util/budgeted-map.js';
import { fileError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { stratifiedSplit } from './datasets.js';
import { fileAccessReason, nonRegularFileReason } from '../util/file-kinds.js';
import { isImageFile, type DecodedImage, type DecodeResult } from './images.js';
import { imagesToTensor, loadImageFor } from './preprocess.js';
import type { PreprocessingConfig } from './preprocess.js';
import type { Batch, BatchSource } from './batch-source.js';

/** One labelled image file. */
export interface ImageSample {
  file: string;
  label: number;
}

export interface SkippedFile {
  file: string;
  reason: string;
}

/** The images of one folder tree, split for training. */
export interface ImageFolderData {
  root: string;
  classNames: string[];
  train: ImageSample[];
  val: ImageSample[];
  /** The test/ sub-tree when there is one, else the held-out test split (the validation split only with --test-split 0). */
  test: ImageSample[];
  /** Human-readable description of where each split came from. */
  split: string;
  /** Entries found but not usable: wrong extension, not a regular file, unreadable, broken or looping links. Decoding failures are added later. */
  skipped: SkippedFile[];
}

const VAL_DIRS = ['val', 'validation', 'valid'];

/** Decoding is I/O plus libvips work on the thread pool; a few at a time keeps both cores busy. */
export const DECODE_CONCURRENCY = 4;

async function requireDirectory(dir: string): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch {
    throw fileError(dir, 'does not exist', 'pass a folder with one sub-folder of images per class');
  }
  if (!stat.isDirectory()) throw fileError(dir, 'is not a directory', 'pass a folder with one sub-folder of images per class');
}

/** A folder's visible entries (dot files are skipped, as before), sorted. */
async function visibleEntries(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((name) => !name.startsWith('.')).sort();
}

/** `dev:ino`: the identity of a folder however it is reached (directly or through symlinks). */
function folderId(stat: Stats): string {
  return `${stat.dev}:${stat.ino}`;
}

/** Class folders of `dir`: its sub-folders, symlinked ones included. */
async function subdirectories(dir: string): Promise<string[]> {
  const names = await visibleEntries(dir);
  const isDir = await Promise.all(names.map(async (name) => (await fs.stat(path.join(dir, name)).catch(() => undefined))?.isDirectory() ?? false));
  return names.filter((_, i) => isDir[i]);
}

export interface FolderListing {
  /** Readable regular files, sorted by path. */
  files: string[];
  skipped: SkippedFile[];
}

/**
 * Every readable regular file under `dir`, symlinks followed. A folder reached a second time
 * (a link back to an ancestor, or `readFirst`) is not read again; FIFOs, sockets, devices,
 * broken links and unreadable files or folders are listed as skipped, so nothing later blocks on
 * them or drops them unsaid.
 */
export async function listFolder(dir: string, readFirst: readonly Stats[] = []): Promise<FolderListing> {
  const listing: FolderListing = { files: [], skipped: [] };
  const seen = new Set(readFirst.map(folderId));
  const skip = (file: string, reason: string): void => void listing.skipped.push({ file, reason });
  /** Lists one folder's entries, recursively; returns why the folder itself cannot be read, if it cannot. */
  const visitFolder = async (folder: string, stat: Stats): Promise<string | undefined> => {
    if (seen.has(folderId(stat))) return 'folder already read (a symlink loop or a second link to it)';
    seen.add(folderId(stat));
    let names: string[];
    try {
      names = await visibleEntries(folder);
    } catch (err) {
      return `folder not readable (${fileAccessReason(err)})`;
    }
    for (const entry of names.map((name) => path.join(folder, name))) {
      const problem = await visitEntry(entry);
      if (problem) skip(entry, problem);
    }
    return undefined;
  };
  const visitEntry = async (entry: string): Promise<string | undefined> => {
    try {
      const stat = await fs.stat(entry);
      if (stat.isDirectory()) return await visitFolder(entry, stat);
      if (!stat.isFile()) return nonRegularFileReason(stat);
      await fs.access(entry, fsConstants.R_OK);
      listing.files.push(entry);
      return undefined;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'broken symlink' : fileAccessReason(err);
    }
  };
  const problem = await visitFolder(dir, await fs.stat(dir));
  if (problem) throw fileError(dir, problem, 'make it a readable folder of images or remove it');
  listing.files.sort();
  return listing;
}

/**
 * Images under `dir`, one class per sub-folder (sorted names = label indices). With `classNames`
 * given, the sub-folders must be among them (a validation or test tree uses the training classes).
 */
export async function scanClassFolders(
  dir: string,
  classNames?: readonly string[],
): Promise<{ classNames: string[]; samples: ImageSample[]; skipped: SkippedFile[] }> {
  await requireDirectory(dir);
  const found = await subdirectories(dir);
  if (found.length === 0) {
    const loose = (await fs.readdir(dir)).filter(isImageFile).length;
    throw fileError(
      dir,
      loose > 0 ? `holds ${loose} images but no class sub-folders` : 'is empty (no class sub-folders)',
      'put each class in its own sub-folder, e.g. DIR/cat/*.jpg and DIR/dog/*.jpg',
    );
  }
  const names = classNames ? [...classNames] : found;
  if (!classNames && names.length < 2) {
    throw fileError(dir, `has only one class (${names[0]})`, 'a classifier needs at least two class sub-folders');
  }
  const unknown = found.filter((c) => !names.includes(c));
  if (unknown.length > 0) {
    throw fileError(dir, `has class folders the model does not know: ${unknown.join(', ')}`, `the classes are ${names.join(', ')}`);
  }
  const samples: ImageSample[] = [];
  const skipped: SkippedFile[] = [];
  const rootStat = await fs.stat(dir);
  for (const name of found) {
    const classDir = path.resolve(dir, name);
    const listing = await listFolder(classDir, [rootStat]);
    skipped.push(...listing.skipped);
    const images = listing.files.filter(isImageFile);
    for (const file of listing.files) if (!isImageFile(file)) skipped.push({ file, reason: 'not an image file (extension)' });
    if (images.length === 0) {
      throw fileError(classDir, 'has no image files', 'add .jpg/.png/.webp/.gif/.tiff/.avif images or remove the folder');
    }
    const label = names.indexOf(name);
    for (const file of images) samples.push({ file, label });
  }
  return { classNames: names, samples, skipped };
}

async function firstExisting(root: string, names: string[]): Promise<string | undefined> {
  for (const name of names) {
    const candidate = path.join(root, name);
    if ((await fs.stat(candidate).catch(() => undefined))?.isDirectory()) return candidate;
  }
  return undefined;
}

/** Split `samples` into kept/held-out keeping each class's share, reproducibly from `seed`. */
function splitSamples(samples: ImageSample[], fraction: number, seed: number): { kept: ImageSample[]; held: ImageSample[] } {
  if (fraction <= 0) return { kept: samples, held: [] };
  const { train, test } = stratifiedSplit(
    samples.map((s) => s.label),
    fraction,
    seed,
  );
  return { kept: Array.from(train, (i) => samples[i]!), held: Array.from(test, (i) => samples[i]!) };
}

export interface FolderSplitOptions {
  valSplit: number;
  /** Fraction held out as the test set when the folder has no test/ tree; never trained on or used to choose an epoch. */
  testSplit: number;
  seed: number;
}

/** A class that held-out splits would leave without a training image: one line naming it. */
function requireTrainingImages(train: readonly ImageSample[], all: readonly ImageSample[], classNames: readonly string[], root: string): void {
  const empty = classNames.findIndex((_, k) => all.some((s) => s.label === k) && !train.some((s) => s.label === k));
  if (empty >= 0) {
    throw fileError(root, `class "${classNames[empty]}" has too few images to hold out test and validation images and still train on one`, 'add images, or lower --test-split / --val-split');
  }
}

/**
 * The test split first (its own seed stream, so changing --val-split never moves a test image),
 * then validation from what is left: three disjoint sets.
 */
function holdOut(samples: ImageSample[], opts: FolderSplitOptions, withTest: boolean): { train: ImageSample[]; val: ImageSample[]; test: ImageSample[] } {
  const { kept: rest, held: test } = withTest ? splitSamples(samples, opts.testSplit, opts.seed ^ 0x7e57) : { kept: samples, held: [] };
  const { kept: train, held: val } = splitSamples(rest, opts.valSplit / (1 - (withTest ? opts.testSplit : 0)), opts.seed);
  return { train, val, test };
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

/**
 * Open an image folder for training: either DIR/<class>/... or explicit DIR/train, DIR/val|validation,
 * DIR/test sub-trees. Without test/, a stratified seeded `testSplit` is held out as the test set,
 * and validation (which chooses the epoch) comes from the rest: test images are never looked at
 * during training or model selection.
 */
export async function openImageFolder(dir: string, opts: FolderSplitOptions): Promise<ImageFolderData> {
  const root = path.resolve(dir);
  await requireDirectory(root);
  const trainDir = await firstExisting(root, ['train']);
  const scanned = await scanClassFolders(trainDir ?? root);
  const skipped = [...scanned.skipped];
  const valDir = trainDir && (await firstExisting(root, VAL_DIRS));
  const testDir = trainDir && (await firstExisting(root, ['test']));
  const parts: string[] = [trainDir ? 'train/' : 'class folders'];
  const fromTree = async (treeDir: string) => {
    const t = await scanClassFolders(treeDir, scanned.classNames);
    skipped.push(...t.skipped);
    return t.samples;
  };
  const testSplit = testDir ? 0 : opts.testSplit;
  const held = holdOut(scanned.samples, { ...opts, valSplit: valDir ? 0 : opts.valSplit, testSplit }, testSplit > 0);
  const seedNote = `stratified, seed ${opts.seed}`;
  if (testSplit > 0) parts.push(`${percent(testSplit)} held out as test (${seedNote})`);
  const val = valDir ? await fromTree(valDir) : held.val;
  parts.push(valDir ? `${path.basename(valDir)}/` : `${percent(opts.valSplit)} as validation (${seedNote})`);
  const test = testDir ? await fromTree(testDir) : held.test.length ? held.test : val;
  parts.push(testDir ? 'test/' : held.test.length ? '' : 'no test set: test = validation');
  requireTrainingImages(held.train, scanned.samples, scanned.classNames, root);
  return { root, classNames: scanned.classNames, train: held.train, val, test, split: parts.filter(Boolean).join(', '), skipped };
}

/** Run `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Decoded pictures kept for a few passes over the same files (a frozen-base run decodes each
 * photo for its features, then again for its flipped view and its mirrored test view), up to a
 * byte budget; beyond it, files are decoded again. Callers must not change the images.
 */
export class DecodedImageMemo {
  private readonly results: BudgetedMap<string, Promise<DecodeResult>>;

  constructor(budgetBytes = 256 << 20) {
    this.results = new BudgetedMap(budgetBytes);
  }

  load(file: string, inputShape: readonly [number, number, number]): Promise<DecodeResult> {
    const key = `${inputShape.join('x')} ${file}`;
    return this.results.get(key) ?? this.results.keep(key, loadImageFor(file, inputShape), inputShape.reduce((a, b) => a * b, 1));
  }
}

/** Decode `samples` for a model input; unreadable files go to `skipped` and drop out. */
export async function decodeSamples(
  samples: readonly ImageSample[],
  inputShape: readonly [number, number, number],
  skipped: Map<string, string>,
  memo?: DecodedImageMemo,
): Promise<{ sample: ImageSample; image: DecodedImage }[]> {
  const decoded = await mapLimit(samples, DECODE_CONCURRENCY, async (sample) => {
    const result = await (memo ? memo.load(sample.file, inputShape) : loadImageFor(sample.file, inputShape));
    if (!result.ok) skipped.set(sample.file, result.reason);
    return result.ok ? { sample, image: result.image } : undefined;
  });
  return decoded.filter((d): d is { sample: ImageSample; image: DecodedImage } => d !== undefined);
}

/**
 * A BatchSource that decodes and preprocesses images a batch at a time (the next batch decodes
 * while the current one trains), so memory holds two batches, never the folder.
 * Unreadable files are skipped and recorded in `skipped` (file -> reason).
 */
export class ImageBatchSource implements BatchSource {
  /**
   * `change` alters each decoded image before preprocessing (online augmentation, or a mirror
   * for test-time augmentation); its generator is seeded from the epoch, so a run repeats.
   */
  constructor(
    readonly samples: readonly ImageSample[],
    readonly inputShape: readonly [number, number, number],
    readonly preprocessing: PreprocessingConfig,
    readonly skipped: Map<string, string> = new Map(),
    readonly change?: (img: DecodedImage, rng: Rng) => DecodedImage,
  ) {}

  get size(): number {
    return this.samples.length;
  }

  async *batches(batchSize: number, epochSeed?: number): AsyncIterable<Batch> {
    const order = this.samples.filter((s) => !this.skipped.has(s.file));
    if (epochSeed !== undefined) new Rng(epochSeed).shuffle(order);
    const rng = new Rng((epochSeed ?? 0) ^ 0xa09e);
    const chunks: ImageSample[][] = [];
    for (let i = 0; i < order.length; i += batchSize) chunks.push(order.slice(i, i + batchSize));
    let pending = chunks.length > 0 ? decodeSamples(chunks[0]!, this.inputShape, this.skipped) : undefined;
    for (let c = 0; c < chunks.length; c++) {
      const decoded = await pending!;
      pending = c + 1 < chunks.length ? decodeSamples(chunks[c + 1]!, this.inputShape, this.skipped) : undefined;
      if (decoded.length === 0) continue;
      const change = this.change;
      yield {
        x: imagesToTensor(change ? decoded.map((d) => change(d.image, rng)) : decoded.map((d) => d.image), this.preprocessing),
        y: tf.tensor1d(decoded.map((d) => d.sample.label), 'int32'),
      };
    }
  }
}

/** Fails with one line when a class lost all its images to decoding errors. */
export function requireEveryClass(samples: readonly ImageSample[], skipped: Map<string, string>, classNames: readonly string[], root: string): void {
  const usable = new Array<number>(classNames.length).fill(0);
  for (const s of samples) if (!skipped.has(s.file)) usable[s.label]!++;
  const empty = classNames.findIndex((_, k) => usable[k] === 0 && samples.some((s) => s.label === k));
  if (empty < 0) return;
  const example = samples.find((s) => s.label === empty)!;
  throw fileError(
    root,
    `class "${classNames[empty]}" has no readable image (e.g. ${path.relative(root, example.file)}: ${skipped.get(example.file)})`,
    'replace its files with readable JPEG/PNG/WebP/GIF/TIFF/AVIF images',
  );
}
