import type { PredictionRecord, RunConfig } from '../artifacts/run.js';
import { augmentImage, augmentText, isAugmenting, parseAugment, type AugmentSpec } from '../data/augment.js';
import type { DecodedImage } from '../data/images.js';
import { Rng } from '../util/rng.js';
import { pickSamples } from './analysis.js';
import { captionedLayout, composeCaptionedGrid, thumbBox, thumbnail, type SampleLoader } from './grids.js';
import { loadForModel, sourceKey } from './samples.js';

/**
 * What a run's augmentation does to its pictures: a few sample pictures as the model took them,
 * each followed by random views drawn from the run's seed (the same figure every time).
 */

/** Sample pictures shown at most, and augmented views of each. */
export const AUGMENTED_PICTURES = 6;
export const AUGMENTED_VIEWS = 5;

const CAPTIONS = ['original', ...Array.from({ length: AUGMENTED_VIEWS }, (_, v) => `view ${v + 1}`)];
const LAYOUT = captionedLayout(CAPTIONS, CAPTIONS.length);

/** Where in the figure picture `row` is drawn: column 0 the original, column v its view v. */
export function augmentedTileBox(row: number, column: number): ReturnType<typeof thumbBox> {
  return thumbBox(LAYOUT, row * CAPTIONS.length + column);
}

interface Hyperparameters {
  augment?: unknown;
  augmentCopies?: unknown;
  finetune?: { augment?: unknown };
}

/**
 * The augmentation the run's training pictures went through, or undefined for none: a fine-tuning
 * run's own (its epochs augment online), a frozen-base run's only with augmented copies cached
 * (`--augment-copies 0` trains on the pictures alone), a custom run's as recorded.
 */
export function trainingAugmentation(config: RunConfig): AugmentSpec | undefined {
  const hp = config.hyperparameters as Hyperparameters;
  const recorded = config.kind === 'finetune' && hp.finetune ? hp.finetune.augment : config.kind === 'transfer' && hp.augmentCopies === 0 ? undefined : hp.augment;
  const spec = typeof recorded === 'string' ? parseAugment(recorded) : undefined;
  return spec && isAugmenting(spec) ? spec : undefined;
}

/** Up to AUGMENTED_PICTURES distinct pictures that load, in the order of the sample grid. */
async function samplePictures(predictions: PredictionRecord[], classes: number, config: RunConfig, load: SampleLoader): Promise<DecodedImage[]> {
  const seen = new Set<string>();
  const pictures: DecodedImage[] = [];
  for (const record of pickSamples(predictions, classes)) {
    if (pictures.length === AUGMENTED_PICTURES) break;
    const key = sourceKey(record.source);
    if (seen.has(key)) continue;
    seen.add(key);
    const picture = await loadForModel(record.source, config, load);
    if (picture) pictures.push(picture);
  }
  return pictures;
}

export interface AugmentedFigure {
  png: Buffer;
  /** The spec as runs record it (`flip,rotate=15`). */
  spec: string;
  pictures: number;
}

/**
 * The figure of `spec` applied to sample pictures of the run, as training applied it: to the
 * picture decoded for the model's input, before preprocessing. Undefined when no picture loads.
 */
export async function augmentedFigure(config: RunConfig, spec: AugmentSpec, predictions: PredictionRecord[], classes: number, load: SampleLoader): Promise<AugmentedFigure | undefined> {
  const pictures = await samplePictures(predictions, classes, config, load);
  if (!pictures.length) return undefined;
  const rng = new Rng(config.seed);
  const tiles: Buffer[] = [];
  for (const picture of pictures) {
    tiles.push(await thumbnail(picture));
    for (let v = 0; v < AUGMENTED_VIEWS; v++) tiles.push(await thumbnail(augmentImage(picture, spec, rng)));
  }
  const text = augmentText(spec);
  const captions = pictures.flatMap(() => CAPTIONS);
  const png = await composeCaptionedGrid(`Augmentation ${text}: each picture, then ${AUGMENTED_VIEWS} random views`, tiles, captions, CAPTIONS.length);
  return { png, spec: text, pictures: pictures.length };
}
