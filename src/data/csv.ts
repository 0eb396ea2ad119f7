import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileError } from '../util/errors.js';
import { tempSibling } from '../util/atomic.js';
import { assetDir, rawName, verifyAndStore, type AssetFile, type ManifestEntry } from './assets.js';
import { sha256 } from '../util/hash.js';
import { catalogEntry, catalogFile, datasetSubdir, type SplitName } from './catalog.js';
import { encodeIdx } from './idx.js';
import { transposeImages } from './emnist.js';

/**
 * Kaggle-style CSVs: `label,pixel0,...,pixel783` per row, with or without a header line.
 * They are converted to the idx files the catalog names (stored gunzipped), so the loader has
 * one format to read; where the catalog knows the raw file's sha256 the result is checked
 * against the official file, otherwise its hash is recorded.
 */
export interface CsvImages {
  labels: Uint8Array;
  pixels: Uint8Array;
  count: number;
}

/** Parse a CSV of `label,p0..p(n-1)` rows; `pixelsPerImage` fixes n. */
export async function readImageCsv(file: string, pixelsPerImage: number): Promise<CsvImages> {
  const labels: number[] = [];
  const chunks: Uint8Array[] = [];
  let lineNo = 0;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      const fields = line.split(',');
      if (lineNo === 1 && !/^\s*\d+\s*$/.test(fields[0]!)) continue; // header line
      chunks.push(parseRow(fields, pixelsPerImage, `${file}:${lineNo}`));
      labels.push(Number(fields[0]));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw fileError(file, `cannot read (${(err as NodeJS.ErrnoException).code})`, 'check the path');
    throw err;
  }
  if (labels.length === 0) throw fileError(file, 'holds no image rows', 'pass a CSV with label,pixel0..pixelN rows');
  const pixels = new Uint8Array(labels.length * pixelsPerImage);
  chunks.forEach((c, i) => pixels.set(c, i * pixelsPerImage));
  return { labels: Uint8Array.from(labels), pixels, count: labels.length };
}

function parseRow(fields: string[], pixelsPerImage: number, where: string): Uint8Array {
  if (fields.length !== pixelsPerImage + 1) {
    throw fileError(where, `row has ${fields.length} fields, expected 1 label + ${pixelsPerImage} pixels`, 'use a CSV of label,pixel0..pixelN rows for this dataset');
  }
  const row = new Uint8Array(pixelsPerImage);
  for (let i = 0; i <= pixelsPerImage; i++) {
    const v = Number(fields[i]);
    if (!Number.isInteger(v) || v < 0 || v > 255) {
      throw fileError(where, `field ${i + 1} is ${JSON.stringify(fields[i])}, not an integer 0..255`, 'use a CSV of label,pixel0..pixelN rows for this dataset');
    }
    if (i > 0) row[i - 1] = v;
  }
  return row;
}

export interface CsvImportOptions {
  /** CSV file per file split; at least one. */
  files: Partial<Record<SplitName, string>>;
  /** Pixel layout of the CSV; default: the catalog's `csvLayout` (EMNIST and Fashion-MNIST Kaggle CSVs: 'idx'). */
  layout?: 'idx' | 'upright';
}

/** Convert CSVs into the dataset's idx files in the cache. */
export async function importCsv(name: string, opts: CsvImportOptions): Promise<(ManifestEntry & { name: string })[]> {
  const entry = catalogEntry(name);
  const { height, width } = entry.image;
  const layout = opts.layout ?? entry.csvLayout;
  const needTranspose = entry.storedTransposed && layout === 'upright';
  const subdir = datasetSubdir(name);
  await fs.mkdir(assetDir(subdir), { recursive: true });
  const stored: (ManifestEntry & { name: string })[] = [];
  for (const [split, csvFile] of (Object.entries(opts.files) as [SplitName, string | undefined][]).filter((e): e is [SplitName, string] => !!e[1])) {
    const s = entry.splits[split];
    if (!s) throw fileError(csvFile, `${name} has no ${split} split`, 'pass --train/--test for the splits the dataset has');
    const csv = await readImageCsv(csvFile, height * width);
    // An upright CSV is put back into the stored (transposed) layout, so cached files stay idx-identical.
    const pixels = needTranspose ? transposeImages(csv.pixels, csv.count, height, width) : csv.pixels;
    const outputs: [string, Uint8Array][] = [
      [s.images, encodeIdx([csv.count, height, width], pixels)],
      [s.labels, encodeIdx([csv.count], csv.labels)],
    ];
    for (const [fileName, bytes] of outputs) {
      stored.push(await storeCsvOutput(subdir, catalogFile(entry, fileName), bytes, csvFile));
    }
  }
  return stored;
}

/**
 * A CSV copy may legitimately differ from the official idx file (row order, say), so a hash
 * mismatch is not an error here: the file is kept and its manifest entry says verifiedBy 'none'.
 */
async function storeCsvOutput(subdir: string, file: AssetFile, bytes: Uint8Array, csvFile: string) {
  const tmp = tempSibling(path.join(assetDir(subdir), rawName(file)));
  await fs.writeFile(tmp, bytes);
  const official = file.raw?.sha256 === sha256(bytes);
  const expectation = official ? file : { ...file, raw: { sha256: null, size: null } };
  return verifyAndStore(subdir, expectation, tmp, { raw: true, source: csvFile, fallback: 'none' });
}
