import { promises as fs } from 'node:fs';
import { TlError, fileError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { assetDir, cachedPath, fetchAssets, readManifest, type FetchResult, type Manifest } from './assets.js';
import { catalogEntry, catalogFile, datasetSubdir, splitFiles, SPLIT_NAMES, type CatalogEntry, type SplitName } from './catalog.js';
import { parseMapping, toClassIndices, transposeImages } from './emnist.js';
import { readIdxImages, readIdxLabels } from './idx.js';

export interface ImageSet {
  /** count*height*width bytes, upright (MNIST orientation), 0..255. */
  images: Uint8Array;
  /** Class index per image, 0..classNames.length-1. */
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  /** The file split the rows come from: 'train' | 'test'. */
  split: string;
  /** Row i is row sourceIndex[i] of that split's file, for reports. */
  sourceIndex: Int32Array;
}

export interface LoadedDataset {
  name: string;
  classNames: string[];
  train: ImageSet;
  test: ImageSet;
  splitDescription: string;
  resplit?: { fraction: number; seed: number };
}

export interface LoadOptions {
  /** Derive a stratified train/test split holding out this fraction of one file split. */
  resplit?: number;
  seed?: number;
  /** Keep at most this many images in each of train and test (a stratified, seeded subset). */
  limit?: number;
}

/**
 * Split indices 0..n-1 so that every class sends round(fraction * its count) images to `test`.
 * Seeded and deterministic; both index lists come back sorted ascending.
 */
export function stratifiedSplit(labels: ArrayLike<number>, fraction: number, seed: number): { train: Int32Array; test: Int32Array } {
  if (!(fraction > 0 && fraction < 1)) throw new TlError(`split fraction ${fraction} must be between 0 and 1 (exclusive)`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const members = byClass.get(labels[i]!) ?? [];
    members.push(i);
    byClass.set(labels[i]!, members);
  }
  const rng = new Rng(seed);
  const isTest = new Uint8Array(labels.length);
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = rng.shuffle(byClass.get(label)!);
    const take = Math.round(members.length * fraction);
    for (let k = 0; k < take; k++) isTest[members[k]!] = 1;
  }
  const test = indicesWhere(isTest, 1);
  return { train: indicesWhere(isTest, 0), test };
}

function indicesWhere(flags: Uint8Array, value: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < flags.length; i++) if (flags[i] === value) out.push(i);
  return Int32Array.from(out);
}

/** One file split, decoded, upright and with class-index labels; kept in memory per process. */
interface DecodedSplit {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  classNames: string[];
}

const decodedCache = new Map<string, Promise<DecodedSplit>>();

/** Forget decoded files (they can be ~100 MB each). */
export function clearDatasetMemory(): void {
  decodedCache.clear();
}

function notCached(entry: CatalogEntry): TlError {
  return new TlError(
    `dataset ${entry.name} is not in the cache (${assetDir(datasetSubdir(entry.name))}); run: tl datasets fetch ${entry.name} [--from DIR]`,
  );
}

/** The file splits whose images, labels (and mapping) are all cached. */
export async function cachedSplits(entry: CatalogEntry): Promise<SplitName[]> {
  const present: SplitName[] = [];
  for (const split of SPLIT_NAMES) {
    const files = splitFiles(entry, split);
    if (files.length === 0) continue;
    const paths = await Promise.all(files.map((f) => cachedPath(datasetSubdir(entry.name), f)));
    if (paths.every((p) => p !== null)) present.push(split);
  }
  return present;
}

async function classNamesOf(entry: CatalogEntry): Promise<{ names: string[]; toIndex: (raw: Uint8Array, file: string) => Uint8Array }> {
  if (!entry.mappingFile) {
    const names = entry.classNames ?? [];
    return { names, toIndex: (raw, file) => checkLabelRange(raw, names.length, file) };
  }
  const file = await cachedPath(datasetSubdir(entry.name), catalogFile(entry, entry.mappingFile));
  if (!file) throw notCached(entry);
  const mapping = parseMapping(await fs.readFile(file, 'utf8'), file);
  return { names: mapping.classNames, toIndex: (raw, f) => toClassIndices(raw, mapping, f) };
}

function checkLabelRange(labels: Uint8Array, classes: number, file: string): Uint8Array {
  const bad = labels.findIndex((l) => l >= classes);
  if (bad >= 0) throw fileError(file, `row ${bad} has label ${labels[bad]} but the dataset has ${classes} classes`, 'use the labels file of this dataset');
  return labels;
}

async function decodeSplit(entry: CatalogEntry, split: SplitName): Promise<DecodedSplit> {
  const subdir = datasetSubdir(entry.name);
  const s = entry.splits[split]!;
  const [imagesFile, labelsFile] = await Promise.all(
    [s.images, s.labels].map((n) => cachedPath(subdir, catalogFile(entry, n))),
  );
  if (!imagesFile || !labelsFile) throw notCached(entry);
  const { names, toIndex } = await classNamesOf(entry);
  const img = await readIdxImages(imagesFile);
  const labels = toIndex(await readIdxLabels(labelsFile), labelsFile);
  if (labels.length !== img.count) {
    throw fileError(labelsFile, `holds ${labels.length} labels but ${imagesFile} holds ${img.count} images`, `fetch both files of the ${split} split again`);
  }
  const images = entry.storedTransposed ? transposeImages(img.data, img.count, img.height, img.width) : img.data;
  const [height, width] = entry.storedTransposed ? [img.width, img.height] : [img.height, img.width];
  return { images, labels, count: img.count, height, width, classNames: names };
}

function decoded(entry: CatalogEntry, split: SplitName): Promise<DecodedSplit> {
  const key = `${assetDir(datasetSubdir(entry.name))}#${split}`;
  let pending = decodedCache.get(key);
  if (!pending) {
    pending = decodeSplit(entry, split);
    pending.catch(() => decodedCache.delete(key));
    decodedCache.set(key, pending);
  }
  return pending;
}

/** Rows `indices` of a decoded split (null: all of them, without copying). */
function pick(d: DecodedSplit, split: SplitName, indices: Int32Array | null): ImageSet {
  const base = { height: d.height, width: d.width, split };
  if (!indices) {
    return { ...base, images: d.images, labels: d.labels, count: d.count, sourceIndex: Int32Array.from({ length: d.count }, (_, i) => i) };
  }
  const size = d.height * d.width;
  const images = new Uint8Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  indices.forEach((src, i) => {
    images.set(d.images.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = d.labels[src]!;
  });
  return { ...base, images, labels, count: indices.length, sourceIndex: Int32Array.from(indices) };
}

/** A stratified, seeded subset of at most `limit` rows of a set. */
function limitSet(set: ImageSet, limit: number, seed: number): ImageSet {
  if (set.count <= limit) return set;
  const keep = stratifiedSplit(set.labels, limit / set.count, seed).test;
  const d: DecodedSplit = { ...set, classNames: [] };
  const sub = pick(d, set.split as SplitName, keep);
  return { ...sub, sourceIndex: Int32Array.from(keep, (i) => set.sourceIndex[i]!) };
}

/**
 * Load a cached dataset for training: upright images, class-index labels, and where each row
 * came from. With `resplit`, a stratified seeded train/test split is derived from one file
 * split (train if cached, else test): the way to use EMNIST ByMerge, whose test file is all there is.
 */
export async function loadDataset(name: string, opts: LoadOptions = {}): Promise<LoadedDataset> {
  const entry = catalogEntry(name);
  const present = await cachedSplits(entry);
  if (present.length === 0) throw notCached(entry);
  const seed = opts.seed ?? 1;
  let result: LoadedDataset;
  if (opts.resplit !== undefined) {
    const source: SplitName = present.includes('train') ? 'train' : 'test';
    const d = await decoded(entry, source);
    const parts = stratifiedSplit(d.labels, opts.resplit, seed);
    result = {
      name,
      classNames: d.classNames,
      train: pick(d, source, parts.train),
      test: pick(d, source, parts.test),
      splitDescription: `stratified resplit of the ${source} file (${d.count} images): ${Math.round(opts.resplit * 100)}% held out as test, seed ${seed}`,
      resplit: { fraction: opts.resplit, seed },
    };
  } else {
    const missing = SPLIT_NAMES.filter((s) => entry.splits[s] && !present.includes(s));
    if (missing.length > 0) {
      throw new TlError(
        `dataset ${name} has no ${missing.join('/')} split in the cache (${assetDir(datasetSubdir(name))}); use --resplit 0.2 [--seed N] to derive train/test from the ${present.join('/')} split, or fetch the missing files`,
      );
    }
    const [train, test] = await Promise.all([decoded(entry, 'train'), decoded(entry, 'test')]);
    result = {
      name,
      classNames: train.classNames,
      train: pick(train, 'train', null),
      test: pick(test, 'test', null),
      splitDescription: `official train/test split (${train.count}/${test.count})`,
    };
  }
  if (opts.limit !== undefined && opts.limit > 0) {
    result.train = limitSet(result.train, opts.limit, seed);
    result.test = limitSet(result.test, opts.limit, seed);
    result.splitDescription += `; limited to ${result.train.count}/${result.test.count} (stratified, seed ${seed})`;
  }
  return result;
}

/** One upright image of a file split, by its row in that file (see ImageSet.sourceIndex). */
export async function readSample(
  name: string,
  split: string,
  index: number,
): Promise<{ pixels: Uint8Array; height: number; width: number; label: number; className: string }> {
  const entry = catalogEntry(name);
  if (split !== 'train' && split !== 'test') throw new TlError(`split "${split}" must be train or test`);
  const d = await decoded(entry, split);
  if (!Number.isInteger(index) || index < 0 || index >= d.count) {
    throw new TlError(`${name} ${split}: row ${index} is out of range (0..${d.count - 1})`);
  }
  const size = d.height * d.width;
  const label = d.labels[index]!;
  return { pixels: d.images.slice(index * size, (index + 1) * size), height: d.height, width: d.width, label, className: d.classNames[label]! };
}

/** Download or import a dataset's files into the cache (see assets.ts). */
export async function fetchDataset(name: string, opts: { from?: string; quiet?: boolean } = {}): Promise<FetchResult> {
  const entry = catalogEntry(name);
  const retry = `run: tl datasets fetch ${name}${opts.from ? ' --from DIR' : ''} with intact files`;
  return fetchAssets(datasetSubdir(name), entry.files, { from: opts.from, quiet: opts.quiet, retry });
}

export interface DatasetStatus {
  name: string;
  title: string;
  classes: number;
  cacheDir: string;
  splits: { split: SplitName; count: number; cached: boolean; missing: string[] }[];
  files: { name: string; cached: boolean; storedAs: string | null; verifiedBy: string | null }[];
}

/** Everything `tl datasets list` shows for one dataset. */
export async function datasetStatus(name: string): Promise<DatasetStatus> {
  const entry = catalogEntry(name);
  const subdir = datasetSubdir(name);
  const manifest: Manifest = await readManifest(subdir);
  const files = await Promise.all(
    entry.files.map(async (f) => {
      const p = await cachedPath(subdir, f);
      return { name: f.name, cached: p !== null, storedAs: p ? (manifest[f.name]?.storedAs ?? f.name) : null, verifiedBy: p ? (manifest[f.name]?.verifiedBy ?? null) : null };
    }),
  );
  const cachedNames = new Set(files.filter((f) => f.cached).map((f) => f.name));
  const splits = SPLIT_NAMES.filter((s) => entry.splits[s]).map((split) => {
    const missing = splitFiles(entry, split).map((f) => f.name).filter((n) => !cachedNames.has(n));
    return { split, count: entry.splits[split]!.count, cached: missing.length === 0, missing };
  });
  return { name, title: entry.title, classes: entry.classes, cacheDir: assetDir(subdir), splits, files };
}
