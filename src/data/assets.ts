import { promises as fs, createWriteStream } from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { TlError, fileError } from '../util/errors.js';
import { exists, moveIntoPlace, tempSibling, writeJsonAtomic } from '../util/atomic.js';
import { sha256File } from '../util/hash.js';
import { tlHome, writableCacheDir } from '../util/paths.js';
import { createProgress } from '../runtime/progress.js';
import { extractZipEntries } from './zip.js';

/**
 * A generic, checksum-verified asset cache under `tlHome()/<subdir>`: datasets and backbone
 * weights both go through here. A file appears under its final name only after it has been
 * verified, so whatever is in the cache is whole.
 */
export interface AssetFile {
  /** File name inside the cache sub-folder. */
  name: string;
  /** Where to download it; when `zipEntry` is set, the URL of the zip that holds it. */
  url: string;
  /** Tried in order when `url` cannot be reached. */
  mirrors?: string[];
  /** null: no published checksum; the file is checked by the zip's CRC-32 (or not at all) and its hash recorded. */
  sha256: string | null;
  size: number | null;
  /** Path of the file inside the zip at `url`. */
  zipEntry?: string;
  /** For a `.gz` file: its gunzipped form, stored as `name` without `.gz`, is accepted too. */
  raw?: { sha256: string | null; size: number | null };
}

export type Verification = 'sha256' | 'crc32' | 'none';

/** What the cache knows about a stored file; kept in `tl-manifest.json` of the sub-folder. */
export interface ManifestEntry {
  storedAs: string;
  sha256: string;
  size: number;
  source: string;
  verifiedBy: Verification;
  time: string;
}

export type Manifest = Record<string, ManifestEntry>;

export interface FetchOptions {
  /** Import from this local folder instead of downloading (files matched by name). */
  from?: string;
  /** The command that repeats this fetch, quoted in error messages. */
  retry?: string;
  quiet?: boolean;
}

export interface FetchResult {
  dir: string;
  added: (ManifestEntry & { name: string })[];
  alreadyCached: string[];
  /** Files that could not be found in `from` (downloads fail instead). */
  missing: string[];
}

const MANIFEST = 'tl-manifest.json';

export function assetDir(subdir: string): string {
  return path.join(tlHome(), subdir);
}

/** The gunzipped name of a `.gz` asset. */
export function rawName(file: AssetFile): string {
  return file.name.replace(/\.gz$/, '');
}

/** Path of the cached copy (gzipped or raw form), or null when it is not cached. */
export async function cachedPath(subdir: string, file: AssetFile): Promise<string | null> {
  const dir = assetDir(subdir);
  const candidates = file.raw ? [file.name, rawName(file)] : [file.name];
  for (const name of candidates) {
    if (await exists(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

export async function readManifest(subdir: string): Promise<Manifest> {
  try {
    return JSON.parse(await fs.readFile(path.join(assetDir(subdir), MANIFEST), 'utf8')) as Manifest;
  } catch {
    return {};
  }
}

async function recordInManifest(subdir: string, name: string, entry: ManifestEntry): Promise<void> {
  const manifest = await readManifest(subdir);
  manifest[name] = entry;
  await writeJsonAtomic(path.join(assetDir(subdir), MANIFEST), manifest);
}

interface Expected {
  sha256: string | null;
  size: number | null;
}

/**
 * Check a temp file against its expected size and hash, then rename it into the cache. On a
 * mismatch the temp file is removed, so nothing unverified is ever left behind.
 */
export async function verifyAndStore(
  subdir: string,
  file: AssetFile,
  tmp: string,
  opts: { raw: boolean; source: string; fallback: Verification; retry?: string },
): Promise<ManifestEntry & { name: string }> {
  const expected: Expected = opts.raw ? (file.raw ?? { sha256: null, size: null }) : file;
  const storedAs = opts.raw ? rawName(file) : file.name;
  const retry = opts.retry ?? 'fetch it again';
  try {
    const size = (await fs.stat(tmp)).size;
    if (expected.size !== null && size !== expected.size) {
      throw fileError(opts.source, `${storedAs} is ${size} bytes, expected ${expected.size}`, `the file is truncated or not the official one; ${retry}`);
    }
    const sha256 = await sha256File(tmp);
    if (expected.sha256 !== null && sha256 !== expected.sha256) {
      throw fileError(opts.source, `sha256 mismatch for ${storedAs}: expected ${expected.sha256}, got ${sha256}`, `the file is corrupt or not the official one; ${retry}`);
    }
    const target = path.join(assetDir(subdir), storedAs);
    await moveIntoPlace(tmp, target);
    await removeOtherForm(subdir, file, storedAs);
    const entry: ManifestEntry = {
      storedAs,
      sha256,
      size,
      source: opts.source,
      verifiedBy: expected.sha256 !== null ? 'sha256' : opts.fallback,
      time: new Date().toISOString(),
    };
    await recordInManifest(subdir, file.name, entry);
    return { name: file.name, ...entry };
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** A cache holds one form of a file: storing the raw form drops the .gz and vice versa. */
async function removeOtherForm(subdir: string, file: AssetFile, storedAs: string): Promise<void> {
  if (!file.raw) return;
  const other = storedAs === file.name ? rawName(file) : file.name;
  await fs.rm(path.join(assetDir(subdir), other), { force: true });
}

/**
 * Make every file in `files` present in `tlHome()/<subdir>`: from `opts.from` when given
 * (what is there is imported, the rest reported missing), else from the files' URLs.
 */
export async function fetchAssets(subdir: string, files: AssetFile[], opts: FetchOptions = {}): Promise<FetchResult> {
  const dir = await writableCacheDir(assetDir(subdir));
  const result: FetchResult = { dir, added: [], alreadyCached: [], missing: [] };
  const todo: AssetFile[] = [];
  for (const file of files) {
    if (await cachedPath(subdir, file)) result.alreadyCached.push(file.name);
    else todo.push(file);
  }
  if (opts.from) {
    await importLocal(subdir, todo, opts.from, opts, result);
    if (todo.length > 0 && result.added.length === 0) {
      throw fileError(opts.from, `holds none of ${todo.map((f) => f.name).join(', ')}`, 'pass the folder that holds the downloaded files (names as published, .gz or gunzipped)');
    }
  } else {
    await downloadAll(subdir, todo, opts, result);
  }
  return result;
}

async function importLocal(subdir: string, files: AssetFile[], from: string, opts: FetchOptions, result: FetchResult): Promise<void> {
  if (!(await exists(from))) throw fileError(from, 'folder does not exist', 'pass the folder that holds the downloaded files to --from');
  for (const file of files) {
    const found = await findLocal(file, from);
    if (!found) {
      result.missing.push(file.name);
      continue;
    }
    const tmp = tempSibling(path.join(assetDir(subdir), file.name));
    await fs.copyFile(found.path, tmp);
    await fs.chmod(tmp, 0o644); // sources may be read-only; the cache must stay replaceable
    result.added.push(await verifyAndStore(subdir, file, tmp, { raw: found.raw, source: found.path, fallback: 'none', retry: opts.retry }));
  }
}

async function findLocal(file: AssetFile, from: string): Promise<{ path: string; raw: boolean } | null> {
  const gz = path.join(from, file.name);
  if (await exists(gz)) return { path: gz, raw: false };
  const raw = path.join(from, rawName(file));
  if (file.raw && (await exists(raw))) return { path: raw, raw: true };
  return null;
}

async function downloadAll(subdir: string, files: AssetFile[], opts: FetchOptions, result: FetchResult): Promise<void> {
  const zips = new Map<string, AssetFile[]>();
  for (const file of files) {
    if (file.zipEntry) zips.set(file.url, [...(zips.get(file.url) ?? []), file]);
    else {
      const tmp = tempSibling(path.join(assetDir(subdir), file.name));
      const url = await downloadWithMirrors(file, tmp, opts);
      result.added.push(await verifyAndStore(subdir, file, tmp, { raw: false, source: url, fallback: 'none', retry: opts.retry }));
    }
  }
  for (const [, members] of zips) result.added.push(...(await downloadFromZip(subdir, members, opts)));
}

/** Download the zip once, extract the wanted members (CRC-checked), verify each, then drop the zip. */
async function downloadFromZip(subdir: string, members: AssetFile[], opts: FetchOptions): Promise<(ManifestEntry & { name: string })[]> {
  const first = members[0]!;
  const zipTmp = tempSibling(path.join(assetDir(subdir), path.basename(new URL(first.url).pathname)));
  const targets = members.map((m) => ({ file: m, entry: m.zipEntry!, target: tempSibling(path.join(assetDir(subdir), m.name)) }));
  try {
    const url = await downloadWithMirrors({ ...first, size: null }, zipTmp, opts);
    const total = members.reduce((s, m) => s + (m.size ?? 0), 0);
    const bar = createProgress({ label: 'extract', total: Math.max(1, Math.ceil(total / 1e6)), unit: 'MB', quiet: opts.quiet });
    const extracted = await extractZipEntries(zipTmp, targets, megabyteTicker(bar.tick));
    bar.done();
    const stored = [];
    for (const t of targets) {
      if (!extracted.some((e) => e.entry === t.entry)) {
        throw fileError(url, `the zip has no entry ${t.entry}`, 'the upstream archive changed; fetch the files by hand and use --from DIR');
      }
      stored.push(await verifyAndStore(subdir, t.file, t.target, { raw: false, source: `${url}#${t.entry}`, fallback: 'crc32', retry: opts.retry }));
    }
    return stored;
  } finally {
    await Promise.all([zipTmp, ...targets.map((t) => t.target)].map((f) => fs.rm(f, { force: true })));
  }
}

/** Turn byte counts into whole-megabyte ticks for a progress bar counted in MB. */
function megabyteTicker(tick: (n: number) => void): (bytes: number) => void {
  let bytes = 0;
  let shown = 0;
  return (n) => {
    bytes += n;
    const mb = Math.floor(bytes / 1e6);
    if (mb > shown) {
      tick(mb - shown);
      shown = mb;
    }
  };
}

async function downloadWithMirrors(file: AssetFile, tmp: string, opts: FetchOptions): Promise<string> {
  const urls = [file.url, ...(file.mirrors ?? [])];
  const failures: string[] = [];
  for (const url of urls) {
    try {
      await downloadTo(url, tmp, file.size, opts);
      return url;
    } catch (err) {
      failures.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
      await fs.rm(tmp, { force: true });
    }
  }
  throw new TlError(`download of ${file.name} failed (${failures.join('; ')}); check the network, or download the files yourself and use --from DIR`);
}

async function downloadTo(url: string, tmp: string, expectedSize: number | null, opts: FetchOptions): Promise<void> {
  const res = await fetch(url, { redirect: 'follow' }).catch((err: Error) => {
    throw new Error((err.cause as Error | undefined)?.message ?? err.message);
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const length = Number(res.headers.get('content-length')) || expectedSize || 0;
  const bar = createProgress({ label: `download ${path.basename(new URL(url).pathname)}`, total: Math.max(1, Math.ceil(length / 1e6)), unit: 'MB', quiet: opts.quiet });
  const onBytes = megabyteTicker(bar.tick);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), counter, createWriteStream(tmp));
  bar.done();
}

/** Which files of a list are cached, and where. */
export async function assetStatus(subdir: string, files: AssetFile[]): Promise<{ name: string; path: string | null }[]> {
  return Promise.all(files.map(async (f) => ({ name: f.name, path: await cachedPath(subdir, f) })));
}
