import { promises as fs } from 'node:fs';
import type { SampleSource } from '../artifacts/run.js';
import { readSample } from '../data/datasets.js';
import type { SampleLoader } from './grids.js';

/** Photos are read from where they were at training time; dataset samples (upright) from the tl cache. */
export const defaultSampleLoader: SampleLoader = async (source: SampleSource) => {
  if (source.kind === 'file') return fs.readFile(source.path);
  const s = await readSample(source.dataset, source.split, source.index);
  return { data: s.pixels, height: s.height, width: s.width, channels: 1 };
};
