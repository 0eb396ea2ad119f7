import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot, tlHome } from '../util/paths.js';
import type { WeightsAsset } from './types.js';

/** The top-level `backbones/` folder: one JSON per pretrained weights asset. */
export function catalogDir(): string {
  return path.join(packageRoot(), 'backbones');
}

let cached: WeightsAsset[] | undefined;

export function weightsCatalog(): WeightsAsset[] {
  cached ??= readdirSync(catalogDir())
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(catalogDir(), f), 'utf8')) as WeightsAsset);
  return cached;
}

export function findAsset(id: string): WeightsAsset | undefined {
  return weightsCatalog().find((a) => a.id === id);
}

/** Cache sub-folder of an asset, relative to TL_HOME (the unit src/data/assets.ts works in). */
export function assetSubdir(id: string): string {
  return path.join('backbones', id);
}

/** Where fetched assets live: `$TL_HOME/backbones/<asset id>/`. */
export function assetCacheDir(id: string): string {
  return path.join(tlHome(), assetSubdir(id));
}

/** The file to read weights from once an asset is in the cache (its .h5, or model.json). */
export function assetWeightsPath(asset: WeightsAsset): string {
  return path.join(assetCacheDir(asset.id), asset.files[0]!.name);
}

/** The asset cache only ever holds verified files, so all of them present means usable. */
export function isAssetCached(asset: WeightsAsset): boolean {
  return asset.files.every((f) => existsSync(path.join(assetCacheDir(asset.id), f.name)));
}
