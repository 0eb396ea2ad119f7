import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { TlError } from '../util/errors.js';
import { assetWeightsPath, findAsset, isAssetCached, weightsCatalog } from './catalog.js';
import { mobilenet } from './mobilenet.js';
import { vgg16 } from './vgg16.js';
import { xception } from './xception.js';
import { assignWeights } from './weights-apply.js';
import { readWeightsFile } from './weights-read.js';
import type { BackboneSpec, BuildOptions, InputShape, WeightsAsset } from './types.js';

export type { BackboneSpec, BuildOptions, InputShape, WeightsAsset, WeightsFileEntry } from './types.js';

const ARCHITECTURES: readonly BackboneSpec[] = [mobilenet, vgg16, xception];

export function backboneNames(): string[] {
  return ARCHITECTURES.map((a) => a.name);
}

/** The spec of an architecture, with its catalog of pretrained weights filled in. */
export function getBackbone(name: string): BackboneSpec {
  const spec = ARCHITECTURES.find((a) => a.name === name.toLowerCase());
  if (!spec) throw new TlError(`unknown backbone "${name}"; known backbones: ${backboneNames().join(', ')}`);
  const weights = Object.fromEntries(weightsCatalog().filter((a) => a.backbone === spec.name).map((a) => [a.id, a]));
  return { ...spec, weights };
}

export function listBackbones(): BackboneSpec[] {
  return backboneNames().map(getBackbone);
}

/** The width multiplier to build with: the requested one, the spec's default, or none. */
export function resolveWidth(spec: BackboneSpec, alpha: number | undefined): number | undefined {
  if (!spec.alphas) {
    if (alpha !== undefined) throw new TlError(`${spec.name} has no width multiplier; drop --alpha`);
    return undefined;
  }
  const a = alpha ?? spec.defaultAlpha!;
  if (!spec.alphas.includes(a)) throw new TlError(`${spec.name}: alpha ${a} is not supported; use one of ${spec.alphas.join(', ')}`);
  return a;
}

/** `mobilenet alpha 0.25`, `vgg16`: how errors name what a weights file should fit. */
export function describeVariant(spec: BackboneSpec, alpha: number | undefined): string {
  return alpha === undefined ? spec.name : `${spec.name} alpha ${alpha}`;
}

/** Catalog assets whose weights fit this architecture and width. */
export function assetsFor(spec: BackboneSpec, alpha: number | undefined): WeightsAsset[] {
  return Object.values(spec.weights).filter((a) => a.alpha === alpha);
}

export interface LoadBackboneOptions {
  name: string;
  alpha?: number;
  inputShape?: InputShape;
  /** 'none' (random init, seeded), 'imagenet' (from the cache), a path (.h5, tfjs folder or model.json) or a catalog asset id. */
  weights: string;
  /** Seed of the random initialisers (used when weights is 'none'); default 0. */
  seed?: number;
}

export interface LoadedBackbone {
  /** No classifier top; the output is `spec.featureLayer`. */
  model: tf.LayersModel;
  spec: BackboneSpec;
  alpha?: number;
  weightsSha256: string | null;
  /** 'none (random init, seed 0)', or the file or folder the weights came from. */
  weightsSource: string;
}

/** Where 'imagenet' or an asset id points: the cached file, or an error saying how to fetch it. */
function resolveWeightsPath(spec: BackboneSpec, alpha: number | undefined, weights: string): string {
  if (weights === 'imagenet') {
    const candidates = assetsFor(spec, alpha);
    const cached = candidates.find(isAssetCached);
    if (cached) return assetWeightsPath(cached);
    const [first, ...others] = candidates.map((a) => a.id);
    const alternatives = others.length > 0 ? ` (or ${others.join(', ')})` : '';
    throw new TlError(
      `no ImageNet weights for ${describeVariant(spec, alpha)} in the cache; run \`tl backbones fetch ${first ?? spec.name}\`${alternatives}, with --from PATH for a downloaded copy, or pass --weights PATH`,
    );
  }
  if (existsSync(weights)) return weights;
  const asset = findAsset(weights);
  if (asset) {
    if (!isAssetCached(asset)) throw new TlError(`weights "${weights}" are not in the cache; run \`tl backbones fetch ${weights}\``);
    return assetWeightsPath(asset);
  }
  throw new TlError(`weights "${weights}" not found: use none, imagenet, a catalog id (tl backbones list) or a path to a .h5 file or tfjs model folder`);
}

/** The model truncated at the spec's feature layer (a no-op when that is already the output). */
function featureModel(model: tf.LayersModel, spec: BackboneSpec): tf.LayersModel {
  const feature = model.getLayer(spec.featureLayer);
  if (model.outputs[0] === feature.output) return model;
  return tf.model({ inputs: model.inputs, outputs: feature.output as tf.SymbolicTensor, name: model.name });
}

/**
 * Widths to try, in order. A weights file or folder given without --alpha is tried at every width
 * the architecture has (default first), so the width follows from the file; a catalog id knows its
 * width; 'none' and 'imagenet' use the requested or default width.
 */
function widthCandidates(spec: BackboneSpec, requested: number | undefined, weights: string): (number | undefined)[] {
  if (!spec.alphas || requested !== undefined || weights === 'none' || weights === 'imagenet') return [resolveWidth(spec, requested)];
  const asset = existsSync(weights) ? undefined : findAsset(weights);
  if (asset) return [resolveWidth(spec, asset.alpha)];
  return [spec.defaultAlpha!, ...spec.alphas.filter((a) => a !== spec.defaultAlpha)];
}

/** Build a backbone without its top and fill it with the requested weights. */
export async function loadBackbone(opts: LoadBackboneOptions): Promise<LoadedBackbone> {
  const spec = getBackbone(opts.name);
  const seed = opts.seed ?? 0;
  const build = (alpha: number | undefined, fromFile: Partial<BuildOptions> = {}) =>
    featureModel(spec.build({ inputShape: opts.inputShape ?? spec.defaultInputShape, includeTop: false, alpha, seed, ...fromFile }), spec);
  const widths = widthCandidates(spec, opts.alpha, opts.weights);
  if (opts.weights === 'none') {
    return { model: build(widths[0]), spec, alpha: widths[0], weightsSha256: null, weightsSource: `none (random init, seed ${seed})` };
  }
  const file = await readWeightsFile(resolveWeightsPath(spec, widths[0], opts.weights));
  const fitsWhat = widths.length > 1 ? `${spec.name} (any alpha of ${spec.alphas!.join(', ')})` : describeVariant(spec, widths[0]);
  let firstError: TlError | undefined;
  const fromFile = spec.buildOptionsFor?.(file.layerNames) ?? {};
  for (const alpha of widths) {
    const model = build(alpha, fromFile);
    try {
      assignWeights(model, file, { autoNamedLayerBases: spec.autoNamedLayerBases, fitsWhat });
      return { model, spec, alpha, weightsSha256: file.sha256, weightsSource: path.resolve(file.source) };
    } catch (err) {
      model.dispose();
      if (!(err instanceof TlError)) throw err;
      firstError ??= err;
    }
  }
  throw firstError!;
}

export { readWeightsFile } from './weights-read.js';
export { assignWeights } from './weights-apply.js';
export { writeKerasH5Weights, writeTfjsWeights } from './weights-write.js';
