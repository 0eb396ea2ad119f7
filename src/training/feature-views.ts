import { augmentImage, augmentText, isAugmenting, mirrorImage, parseAugment } from '../data/augment.js';
import type { ImageSample } from '../data/image-folder.js';
import { sha256 } from '../util/hash.js';
import { Rng } from '../util/rng.js';
import type { FeatureView } from './feature-cache.js';

/**
 * The extra pictures of a frozen-base run, each cached in the feature cache under a key derived
 * from the image's own content hash, so they are computed once and reused by every later run:
 * K augmented views per training image (`--augment-copies`), and the mirror of each test image
 * (`--tta`). A view's randomness comes from its key, so a view is the same picture in every run.
 */
export interface ViewOptions {
  augment: string;
  copies: number;
  seed: number;
}

function augmentedKeys(hash: string, o: ViewOptions): string[] {
  const spec = augmentText(parseAugment(o.augment)!);
  return Array.from({ length: o.copies }, (_, v) => sha256(`${hash} augment ${spec} seed ${o.seed} view ${v + 1}`));
}

function copiesWanted(o: ViewOptions): boolean {
  return o.copies > 0 && isAugmenting(parseAugment(o.augment)!);
}

/** K augmented views of every training image, to compute. */
export function augmentedViews(train: readonly ImageSample[], hashes: Map<string, string>, o: ViewOptions): FeatureView[] {
  if (!copiesWanted(o)) return [];
  const spec = parseAugment(o.augment)!;
  return train
    .filter((s) => hashes.has(s.file))
    .flatMap((sample) =>
      augmentedKeys(hashes.get(sample.file)!, o).map((key) => ({ sample, key, change: (img) => augmentImage(img, spec, new Rng(parseInt(key.slice(0, 8), 16))) }) satisfies FeatureView),
    );
}

/** Each training file's cached views: the image itself first, then its augmented copies. */
export function viewKeys(train: readonly ImageSample[], hashes: Map<string, string>, o: ViewOptions): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const s of train) {
    const hash = hashes.get(s.file);
    if (hash) keys.set(s.file, [hash, ...(copiesWanted(o) ? augmentedKeys(hash, o) : [])]);
  }
  return keys;
}

/** file -> the cache key of its mirror image, for test-time augmentation. */
export function mirrorKeys(samples: readonly ImageSample[], hashes: Map<string, string>): Map<string, string> {
  return new Map(samples.filter((s) => hashes.has(s.file)).map((s) => [s.file, sha256(`${hashes.get(s.file)!} mirror`)]));
}

/** The mirror of each image, to compute. */
export function mirroredViews(samples: readonly ImageSample[], hashes: Map<string, string>): FeatureView[] {
  const keys = mirrorKeys(samples, hashes);
  return samples.filter((s) => keys.has(s.file)).map((sample) => ({ sample, key: keys.get(sample.file)!, change: mirrorImage }));
}
