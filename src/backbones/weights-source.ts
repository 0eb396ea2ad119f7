import { existsSync } from 'node:fs';
import { TlError } from '../util/errors.js';
import { findAsset } from './catalog.js';
import { locateWeightsFile, type WeightsFileRef } from './weights-read.js';
import type { WeightsAsset } from './types.js';

/**
 * What `--weights` names, decided once. Catalog ids are looked up before the file system, so a
 * folder in the working directory that happens to share an asset's name does not hide the asset
 * (write `./NAME` for the folder).
 */
export type WeightsSource =
  | { kind: 'none' }
  /** The cached ImageNet asset for the backbone and width, chosen once the width is known. */
  | { kind: 'imagenet' }
  | { kind: 'catalog'; asset: WeightsAsset }
  | ({ kind: 'file' } & WeightsFileRef);

export async function parseWeightsSource(text: string): Promise<WeightsSource> {
  if (text === 'none' || text === 'imagenet') return { kind: text };
  const asset = findAsset(text);
  if (asset) return { kind: 'catalog', asset };
  if (!existsSync(text)) {
    throw new TlError(`weights "${text}" not found: use none, imagenet, a catalog id (tl backbones list) or a path to a .h5 file or tfjs model folder`);
  }
  return { kind: 'file', ...(await locateWeightsFile(text)) };
}

/** How run.json, the feature cache and errors name a source that has no file yet. */
export function describeWeightsSource(source: WeightsSource): string {
  switch (source.kind) {
    case 'none':
    case 'imagenet':
      return source.kind;
    case 'catalog':
      return source.asset.id;
    case 'file':
      return source.path;
  }
}
