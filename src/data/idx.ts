import { promises as fs } from 'node:fs';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { fileError } from '../util/errors.js';

/**
 * The idx format of MNIST-style datasets: a big-endian header (two zero bytes, a dtype byte,
 * the number of dimensions, then one uint32 per dimension) followed by the raw values.
 * Only unsigned bytes (dtype 0x08) are used by the datasets tl knows.
 */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const gunzipAsync = promisify(gunzip);
const UBYTE = 0x08;
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const REFETCH = 'delete it and fetch it again (tl datasets fetch NAME [--from DIR])';

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

async function readMaybeGzipped(file: string): Promise<Uint8Array> {
  const bytes = await fs.readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw fileError(file, `cannot read (${err.code ?? err.message})`, 'check the path');
  });
  if (!isGzip(bytes)) return bytes;
  try {
    return await gunzipAsync(bytes);
  } catch (err) {
    throw fileError(file, `gzip data is truncated or corrupt (${(err as Error).message})`, REFETCH);
  }
}

/** Parse idx bytes already in memory; `file` only names the source in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw fileError(file, 'not an idx file (bad magic number)', 'point tl at an idx or idx.gz file, e.g. train-images-idx3-ubyte.gz');
  }
  if (bytes[2] !== UBYTE) {
    throw fileError(file, `idx dtype 0x${bytes[2]!.toString(16)} is not supported (only 0x08 unsigned bytes)`, 'use the MNIST-style ubyte files');
  }
  const ndim = bytes[3]!;
  const headerBytes = 4 + 4 * ndim;
  if (ndim === 0 || bytes.length < headerBytes) {
    throw fileError(file, `idx header is truncated (${bytes.length} bytes, ${ndim} dimensions)`, REFETCH);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerBytes;
  if (actual !== expected) {
    const problem = actual < expected ? 'is truncated' : 'has trailing bytes';
    throw fileError(file, `${problem}: header says ${dims.join('x')} = ${expected} values, file holds ${actual}`, REFETCH);
  }
  // A plain Uint8Array view (not a Buffer), so slices and comparisons behave the same everywhere.
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, actual) };
}

/** Read an idx file, gunzipping it first when it starts with the gzip magic 1f8b. */
export async function readIdx(file: string): Promise<IdxArray> {
  return parseIdx(await readMaybeGzipped(file), file);
}

function expectMagic(idx: IdxArray, file: string, ndim: number, what: string): void {
  if (idx.dims.length !== ndim) {
    const magic = `0x0000080${idx.dims.length}`;
    throw fileError(file, `magic ${magic} is not an idx ${what} file (expected 0x0000080${ndim})`, `pass the ${what} file here`);
  }
}

/** Images: magic 0x00000803, dims [count, height, width]. */
export async function readIdxImages(file: string): Promise<{ count: number; height: number; width: number; data: Uint8Array }> {
  const idx = await readIdx(file);
  expectMagic(idx, file, 3, 'images');
  const [count, height, width] = idx.dims as [number, number, number];
  return { count, height, width, data: idx.data };
}

/** Labels: magic 0x00000801, dims [count]. */
export async function readIdxLabels(file: string): Promise<Uint8Array> {
  const idx = await readIdx(file);
  expectMagic(idx, file, 1, 'labels');
  return idx.data;
}

/** Serialise to idx bytes (uncompressed): used by the CSV import and by tests. */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  header[2] = UBYTE;
  header[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}
