import type * as tf from '@tensorflow/tfjs';
import type { PreprocessingConfig } from '../data/preprocess.js';
import type { WeightsFile } from './weights-read.js';

export type InputShape = [number, number, number];

/** One downloadable file of a weights asset, with what is known to verify it. */
export interface WeightsFileEntry {
  /** File name inside the asset's cache folder (tfjs shards keep their model.json names). */
  name: string;
  url: string;
  /** null where no published or verified sha256 exists. */
  sha256: string | null;
  /** The md5 Keras checks (`file_hash` in keras/src/applications/*.py), where that is all there is. */
  md5?: string;
  bytes: number | null;
}

/**
 * A pretrained weights asset, one JSON file in the top-level `backbones/` catalog.
 * `files` is one .h5, or a tfjs layers model.json followed by its shards.
 */
export interface WeightsAsset {
  id: string;
  backbone: string;
  /** Width multiplier, for backbones that have one (MobileNet). */
  alpha?: number;
  includeTop: boolean;
  format: 'keras-h5' | 'tfjs-layers';
  /** The square input size the weights were trained at. */
  trainedInputSize: number;
  files: WeightsFileEntry[];
  description: string;
}

export interface BuildOptions {
  inputShape: InputShape;
  includeTop?: boolean;
  /** Width multiplier; only for specs with `alphas`. */
  alpha?: number;
  /** Units of the classifier when includeTop (default 1000). */
  classes?: number;
  /** Seed of the random initialisers, so `--weights none` is reproducible. */
  seed?: number;
  /**
   * Build the architecture as the Keras version that wrote a weights file did, where versions
   * differ in more than names (see each architecture's `buildOptionsFor`).
   */
  legacyPadding?: boolean;
}

/**
 * Everything downstream code needs to know about an architecture (timm `pretrained_cfg` style):
 * nothing outside src/backbones may branch on a backbone's name.
 */
export interface BackboneSpec {
  name: string;
  description: string;
  /** How raw 0..255 RGB pixels become this network's input. */
  preprocessing: PreprocessingConfig;
  defaultInputShape: InputShape;
  /** Smallest height/width the architecture accepts (Keras `min_size`). */
  minInputSize: number;
  /** The input size the ImageNet classifier (include_top) requires. */
  topInputSize: number;
  /** The layer whose output is the feature map a transfer head is put on. */
  featureLayer: string;
  /**
   * `tl train`'s default --scales (models/multi-scale.ts): 1,2 where it was measured to help and
   * fits; 1 for the large networks, whose 2x copy is 4x their work again and whose fine-tuning at
   * 2x overflows wasm's 4 GB heap (Xception, batch 32).
   */
  transferScales: string;
  /** Width multipliers the architecture supports; absent for fixed-width networks. */
  alphas?: readonly number[];
  defaultAlpha?: number;
  /**
   * Layers Keras builds without a name (e.g. Xception's residual 1x1 convs). Their names depend on
   * how many layers of that class existed before (conv2d_1 in files saved by Keras 2.0, conv2d in
   * tf.keras 2.x), so weights are matched to them by order among the file's layers of that base name.
   */
  autoNamedLayerBases?: readonly string[];
  /** Catalog entries for this architecture, keyed by asset id. */
  weights: Record<string, WeightsAsset>;
  build(opts: BuildOptions): tf.LayersModel;
  /** The width multiplier a weights file was saved at, read from its shapes (for specs with `alphas`). */
  widthOf?(file: WeightsFile): number | undefined;
  /** Build options a weights file implies (e.g. the padding of the Keras version that saved it). */
  buildOptionsFor?(layerNames: readonly string[] | undefined): Partial<BuildOptions>;
}
