import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fetchAssets, type AssetFile } from '../data/assets.js';
import { fileError, TlError } from '../util/errors.js';
import { assetCacheDir, assetSubdir, findAsset } from './catalog.js';
import { assetsFor, getBackbone, resolveWidth } from './index.js';
import type { WeightsAsset, WeightsFileEntry } from './types.js';

export type WeightsVerification = 'sha256' | 'md5' | 'none';

export interface FetchedFile {
  name: string;
  verifiedBy: WeightsVerification;
  /** false when it was already in the cache. */
  added: boolean;
}

export interface FetchBackboneResult {
  asset: WeightsAsset;
  dir: string;
  files: FetchedFile[];
}

/**
 * An asset id (`mobilenet-0.25-notop`), or a backbone name whose default asset is meant: the
 * include_top=False Keras file at the requested (or default) width.
 */
export function resolveAsset(nameOrId: string, alpha?: number): WeightsAsset {
  const asset = findAsset(nameOrId);
  if (asset) return asset;
  const spec = getBackbone(nameOrId);
  const width = resolveWidth(spec, alpha);
  const candidates = assetsFor(spec, width);
  const chosen = candidates.find((a) => !a.includeTop && a.format === 'keras-h5') ?? candidates[0];
  if (!chosen) throw new TlError(`no pretrained weights are catalogued for ${nameOrId}; see tl backbones list`);
  return chosen;
}

function toAssetFile(f: WeightsFileEntry): AssetFile {
  return { name: f.name, url: f.url, sha256: f.sha256, size: f.bytes };
}

async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * `--from` may name the single file of a one-file asset under any name: give the asset cache a
 * folder in which it has the catalog name.
 */
interface SourceFolder {
  dir: string;
  /** Error messages should name the user's file, not its stand-in. */
  userPath: (message: string) => string;
  cleanup: () => Promise<void>;
}

async function sourceFolder(asset: WeightsAsset, from: string): Promise<SourceFolder> {
  const stat = await fs.stat(from).catch(() => {
    throw fileError(from, 'not found', 'pass the downloaded weights file or the folder holding the files to --from');
  });
  if (stat.isDirectory()) return { dir: from, userPath: (m) => m, cleanup: async () => {} };
  if (asset.files.length !== 1) {
    throw fileError(from, `is a file, but ${asset.id} has ${asset.files.length} files`, 'pass the folder that holds model.json and its shards');
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-fetch-'));
  const standIn = path.join(dir, asset.files[0]!.name);
  await fs.symlink(path.resolve(from), standIn);
  return {
    dir,
    userPath: (m) => m.split(standIn).join(from).split(dir).join(path.dirname(from)),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Where Keras publishes only an md5 (its `file_hash`), check that after the generic cache has
 * stored the file, and take the file out again if it does not match.
 */
async function checkMd5(asset: WeightsAsset, entry: WeightsFileEntry, source: string): Promise<WeightsVerification> {
  if (entry.sha256 !== null) return 'sha256';
  if (!entry.md5) return 'none';
  const stored = path.join(assetCacheDir(asset.id), entry.name);
  const md5 = await md5File(stored);
  if (md5 !== entry.md5) {
    await fs.rm(stored, { force: true });
    throw fileError(source, `md5 mismatch for ${entry.name}: expected ${entry.md5}, got ${md5}`, 'the file is corrupt or not the official Keras one');
  }
  return 'md5';
}

/** Download (or import with `from`) one weights asset into the cache, verifying every file. */
export async function fetchBackboneWeights(
  nameOrId: string,
  opts: { from?: string; alpha?: number; quiet?: boolean } = {},
): Promise<FetchBackboneResult> {
  const asset = resolveAsset(nameOrId, opts.alpha);
  const source = opts.from ? await sourceFolder(asset, opts.from) : undefined;
  try {
    const result = await fetchAssets(assetSubdir(asset.id), asset.files.map(toAssetFile), {
      from: source?.dir,
      retry: `tl backbones fetch ${asset.id}${opts.from ? ' --from PATH' : ''}`,
      quiet: opts.quiet,
    });
    if (result.missing.length > 0) {
      const shown = result.missing.slice(0, 3).join(', ') + (result.missing.length > 3 ? `, ... (${result.missing.length} in all)` : '');
      throw fileError(opts.from!, `is missing ${shown} of ${asset.id}`, 'put every file of the asset in that folder');
    }
    const files: FetchedFile[] = [];
    for (const entry of asset.files) {
      const added = result.added.find((a) => a.name === entry.name);
      const verifiedBy = added ? await checkMd5(asset, entry, added.source) : entry.sha256 ? 'sha256' : entry.md5 ? 'md5' : 'none';
      files.push({ name: entry.name, verifiedBy, added: Boolean(added) });
    }
    return { asset, dir: result.dir, files };
  } catch (err) {
    if (err instanceof TlError && source) throw new TlError(source.userPath(err.message), err.exitCode);
    throw err;
  } finally {
    await source?.cleanup();
  }
}
