import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fetchAssets, readManifest, type AssetFile, type Manifest } from '../data/assets.js';
import { initBackend } from '../runtime/backend.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { fileError, TlError } from '../util/errors.js';
import { assetCacheDir, assetSubdir, findAsset } from './catalog.js';
import { assetsFor, describeVariant, getBackbone, resolveWidth } from './index.js';
import { matchWeights } from './weights-apply.js';
import { readWeightsFile } from './weights-read.js';
import type { InputShape, WeightsAsset, WeightsFileEntry } from './types.js';

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
  /** Whether `dir` is a temporary folder holding a link to the user's file under the catalog name. */
  standIn: boolean;
  /** Error messages should name the user's file, not its stand-in. */
  userPath: (message: string) => string;
  cleanup: () => Promise<void>;
}

async function sourceFolder(asset: WeightsAsset, from: string): Promise<SourceFolder> {
  const stat = await fs.stat(from).catch(() => {
    throw fileError(from, 'not found', 'pass the downloaded weights file or the folder holding the files to --from');
  });
  if (stat.isDirectory()) return { dir: from, standIn: false, userPath: (m) => m, cleanup: async () => {} };
  if (asset.files.length !== 1) {
    throw fileError(from, `is a file, but ${asset.id} has ${asset.files.length} files`, 'pass the folder that holds model.json and its shards');
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-fetch-'));
  const standIn = path.join(dir, asset.files[0]!.name);
  await fs.symlink(path.resolve(from), standIn);
  return {
    dir,
    standIn: true,
    userPath: (m) => m.split(standIn).join(from).split(dir).join(path.dirname(from)),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/** Kept by src/data/assets.ts in each cache sub-folder. */
const MANIFEST_FILE = 'tl-manifest.json';

async function editManifest(asset: WeightsAsset, edit: (manifest: Manifest) => void): Promise<void> {
  const manifest = await readManifest(assetSubdir(asset.id));
  edit(manifest);
  await writeJsonAtomic(path.join(assetCacheDir(asset.id), MANIFEST_FILE), manifest);
}

/** The manifest names the temporary stand-in of a renamed `--from` file: record the user's file instead. */
async function recordSource(asset: WeightsAsset, names: readonly string[], source: string): Promise<void> {
  await editManifest(asset, (manifest) => {
    for (const name of names) if (manifest[name]) manifest[name].source = source;
  });
}

/**
 * Where Keras publishes only an md5 (its `file_hash`), check that after the generic cache has
 * stored the file, and take the file and its manifest entry out again if it does not match.
 */
async function checkMd5(asset: WeightsAsset, entry: WeightsFileEntry, source: string): Promise<WeightsVerification> {
  if (entry.sha256 !== null) return 'sha256';
  if (!entry.md5) return 'none';
  const stored = path.join(assetCacheDir(asset.id), entry.name);
  const md5 = await md5File(stored);
  if (md5 !== entry.md5) {
    await fs.rm(stored, { force: true });
    await editManifest(asset, (manifest) => delete manifest[entry.name]);
    throw fileError(source, `md5 mismatch for ${entry.name}: expected ${entry.md5}, got ${md5}`, 'the file is corrupt or not the official Keras one');
  }
  return 'md5';
}

/** Whether some file of the asset has no published checksum at all: only opening it can tell whether it is right. */
function needsOpening(asset: WeightsAsset): boolean {
  return asset.files.some((f) => f.sha256 === null && !f.md5);
}

/**
 * Open the weights at `from` (the file, or the asset's first file in that folder) and match every
 * layer name and shape against the asset's architecture and width: a truncated, random or
 * other-width file fails here with one line naming it, before anything is stored.
 */
async function requireFittingWeights(asset: WeightsAsset, from: string): Promise<void> {
  const weightsPath = (await fs.stat(from)).isDirectory() ? path.join(from, asset.files[0]!.name) : from;
  if (!(await fs.stat(weightsPath).catch(() => undefined))) return; // fetchAssets names what is missing
  const spec = getBackbone(asset.backbone);
  const file = await readWeightsFile(weightsPath);
  await initBackend();
  const size = asset.includeTop ? spec.topInputSize : spec.defaultInputShape[0];
  const inputShape: InputShape = [size, size, 3];
  const model = spec.build({ inputShape, includeTop: asset.includeTop, alpha: asset.alpha, ...spec.buildOptionsFor?.(file.layerNames) });
  try {
    matchWeights(model, file, { autoNamedLayerBases: spec.autoNamedLayerBases, fitsWhat: describeVariant(spec, asset.alpha) });
  } finally {
    model.dispose();
  }
}

/** Download (or import with `from`) one weights asset into the cache, verifying every file. */
export async function fetchBackboneWeights(
  nameOrId: string,
  opts: { from?: string; alpha?: number; quiet?: boolean } = {},
): Promise<FetchBackboneResult> {
  const asset = resolveAsset(nameOrId, opts.alpha);
  const source = opts.from ? await sourceFolder(asset, opts.from) : undefined;
  try {
    if (opts.from && needsOpening(asset)) await requireFittingWeights(asset, opts.from);
    const result = await fetchAssets(assetSubdir(asset.id), asset.files.map(toAssetFile), {
      from: source?.dir,
      retry: `tl backbones fetch ${asset.id}${opts.from ? ' --from PATH' : ''}`,
      quiet: opts.quiet,
    });
    if (result.missing.length > 0) {
      const shown = result.missing.slice(0, 3).join(', ') + (result.missing.length > 3 ? `, ... (${result.missing.length} in all)` : '');
      throw fileError(opts.from!, `is missing ${shown} of ${asset.id}`, 'put every file of the asset in that folder');
    }
    if (source?.standIn && result.added.length > 0) await recordSource(asset, result.added.map((a) => a.name), path.resolve(opts.from!));
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
