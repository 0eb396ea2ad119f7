import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { TlError } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';
import type { AssetFile } from './assets.js';

/** One file split of a dataset as distributed: an idx images file and its idx labels file. */
export interface CatalogSplit {
  images: string;
  labels: string;
  count: number;
}

export type SplitName = 'train' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'test'];

/** A dataset tl knows how to fetch and load: one JSON file in the top-level `datasets/` folder. */
export interface CatalogEntry {
  name: string;
  title: string;
  description: string;
  homepage: string;
  license: string;
  citation: string;
  image: { height: number; width: number; channels: number };
  classes: number;
  /** EMNIST stores each image transposed relative to MNIST; tl returns them upright. */
  storedTransposed: boolean;
  /** Pixel layout of the Kaggle-style CSVs of this dataset: 'idx' (as stored) or 'upright'. */
  csvLayout: 'idx' | 'upright';
  classNames?: string[];
  /** EMNIST: `label ascii-code [ascii-code]` per line; gives the class names. */
  mappingFile?: string;
  splits: Partial<Record<SplitName, CatalogSplit>>;
  files: AssetFile[];
  checksumSource: string;
}

export function catalogDir(): string {
  return path.join(packageRoot(), 'datasets');
}

let cached: Map<string, CatalogEntry> | undefined;

export function catalog(): Map<string, CatalogEntry> {
  if (cached) return cached;
  const dir = catalogDir();
  const entries = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CatalogEntry);
  cached = new Map(entries.map((e) => [e.name, e]));
  return cached;
}

export function datasetNames(): string[] {
  return [...catalog().keys()];
}

export function catalogEntry(name: string): CatalogEntry {
  const entry = catalog().get(name);
  if (!entry) throw new TlError(`unknown dataset "${name}"; known datasets: ${datasetNames().join(', ')}`);
  return entry;
}

/** The catalog file record for a file name (images, labels or mapping). */
export function catalogFile(entry: CatalogEntry, name: string): AssetFile {
  const file = entry.files.find((f) => f.name === name);
  if (!file) throw new Error(`catalog ${entry.name}: no file ${name}`);
  return file;
}

/** Files needed to load one split: its images, labels and (EMNIST) the mapping. */
export function splitFiles(entry: CatalogEntry, split: SplitName): AssetFile[] {
  const s = entry.splits[split];
  if (!s) return [];
  const names = [s.images, s.labels, ...(entry.mappingFile ? [entry.mappingFile] : [])];
  return names.map((n) => catalogFile(entry, n));
}

/** Where a dataset's files live in the asset cache, relative to `tlHome()`. */
export function datasetSubdir(name: string): string {
  return path.join('datasets', name);
}
