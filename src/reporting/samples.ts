import { promises as fs } from 'node:fs';
import type { RunConfig, SampleSource } from '../artifacts/run.js';
import { readSample } from '../data/datasets.js';
import type { DecodedImage } from '../data/images.js';
import { loadImageFor } from '../data/preprocess.js';
import type { SampleLoader } from './grids.js';

/** Photos are read from where they were at training time; dataset samples (upright) from the tl cache. */
export const defaultSampleLoader: SampleLoader = async (source: SampleSource) => {
  if (source.kind === 'file') return fs.readFile(source.path);
  const s = await readSample(source.dataset, source.split, source.index);
  return { data: s.pixels, height: s.height, width: s.width, channels: 1 };
};

/** One string per sample: a photo's path, a dataset sample's dataset/split/index. */
export function sourceKey(source: SampleSource): string {
  return source.kind === 'file' ? source.path : `${source.dataset}/${source.split}/${source.index}`;
}

/**
 * `load`, remembering each sample's result: a report's parts (thumbnails, Grad-CAM, augmented
 * views) show the same sample pictures, which would otherwise be read once per part.
 */
export function rememberingLoader(load: SampleLoader): SampleLoader {
  const loaded = new Map<string, ReturnType<SampleLoader>>();
  return (source) => {
    const key = sourceKey(source);
    if (!loaded.has(key)) loaded.set(key, load(source));
    return loaded.get(key)!;
  };
}

/**
 * A sample's picture as the model took it: a photo decoded for the run's input shape (stretched
 * to it, gray or colour), a dataset sample as stored when it has that shape already. Undefined
 * where the picture cannot be loaded or does not fit the model.
 */
export async function loadForModel(source: SampleSource, config: Pick<RunConfig, 'inputShape'>, load: SampleLoader): Promise<DecodedImage | undefined> {
  try {
    const raw = await load(source);
    if (!Buffer.isBuffer(raw)) {
      const [height, width, channels] = config.inputShape;
      return raw.height === height && raw.width === width && raw.channels === channels ? raw : undefined;
    }
    const decoded = await loadImageFor(raw, config.inputShape);
    return decoded.ok ? decoded.image : undefined;
  } catch {
    return undefined;
  }
}
