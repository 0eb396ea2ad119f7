import tf from '../runtime/tf.cjs';
import path from 'node:path';
import { TlError } from '../util/errors.js';
import { assetWeightsPath, isAssetCached, weightsCatalog } from './catalog.js';
import { mobilenet } from './mobilenet.js';
import { mobilenetv2 } from './mobilenet-v2.js';
import { vgg16 } from './vgg16.js';
import { xception } from './xception.js';
import { resolveWidth } from './layers.js';
import { assignWeights } from './weights-apply.js';
import { readWeightsFile, type WeightsFile } from './weights-read.js';
import { parseWeightsSource, type WeightsSource } from './weights-source.js';
import type { BackboneSpec, BuildOptions, InputShape, WeightsAsset } from './types.js';

export { resolveWidth } from './layers.js';
export type { BackboneSpec, BuildOptions, InputShape, WeightsAsset, WeightsFileEntry } from './types.js';

const ARCHITECTURES: readonly BackboneSpec[] = [mobilenet, mobilenetv2, vgg16, xception];

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
  /** 'none' (random init, seeded), 'imagenet' (from the cache), a catalog asset id or a path (.h5, tfjs folder or model.json), or that parsed. */
  weights: string | WeightsSource;
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

/** The model truncated at the spec's feature layer (a no-op when that is already the output). */
function featureModel(model: tf.LayersModel, spec: BackboneSpec): tf.LayersModel {
  const feature = model.getLayer(spec.featureLayer);
  if (model.outputs[0] === feature.output) return model;
  return tf.model({ inputs: model.inputs, outputs: feature.output as tf.SymbolicTensor, name: model.name });
}

/** The cached ImageNet asset for this width, or an error saying how to fetch one. */
function cachedImageNetAsset(spec: BackboneSpec, alpha: number | undefined): WeightsAsset {
  const candidates = assetsFor(spec, alpha);
  const cached = candidates.find(isAssetCached);
  if (cached) return cached;
  const [first, ...others] = candidates.map((a) => a.id);
  const alternatives = others.length > 0 ? ` (or ${others.join(', ')})` : '';
  throw new TlError(
    `no ImageNet weights for ${describeVariant(spec, alpha)} in the cache; run \`tl backbones fetch ${first ?? spec.name}\`${alternatives}, with --from PATH for a downloaded copy, or pass --weights PATH`,
  );
}

/** A catalog asset must be for this architecture and be fetched; its width is the asset's. */
function requireUsableAsset(spec: BackboneSpec, asset: WeightsAsset, requested: number | undefined): number | undefined {
  if (asset.backbone !== spec.name) throw new TlError(`weights "${asset.id}" are for ${asset.backbone}, not ${spec.name}`);
  if (requested !== undefined && requested !== asset.alpha) throw new TlError(`weights "${asset.id}" are for alpha ${asset.alpha}, not --alpha ${requested}`);
  if (!isAssetCached(asset)) throw new TlError(`weights "${asset.id}" are not in the cache; run \`tl backbones fetch ${asset.id}\``);
  return resolveWidth(spec, asset.alpha);
}

/** The file behind a source and the width to build: from the asset, --alpha, or the file's own shapes. */
async function weightsAndWidth(spec: BackboneSpec, source: Exclude<WeightsSource, { kind: 'none' }>, requested: number | undefined): Promise<{ file: WeightsFile; alpha: number | undefined }> {
  if (source.kind === 'file') {
    const file = await readWeightsFile(source);
    return { file, alpha: resolveWidth(spec, requested ?? spec.widthOf?.(file)) };
  }
  const alpha = source.kind === 'catalog' ? requireUsableAsset(spec, source.asset, requested) : resolveWidth(spec, requested);
  const asset = source.kind === 'catalog' ? source.asset : cachedImageNetAsset(spec, alpha);
  return { file: await readWeightsFile(assetWeightsPath(asset)), alpha };
}

/** Build a backbone without its top and fill it with the requested weights. */
export async function loadBackbone(opts: LoadBackboneOptions): Promise<LoadedBackbone> {
  const spec = getBackbone(opts.name);
  const seed = opts.seed ?? 0;
  const source = typeof opts.weights === 'string' ? await parseWeightsSource(opts.weights) : opts.weights;
  const build = (alpha: number | undefined, fromFile: Partial<BuildOptions> = {}) =>
    featureModel(spec.build({ inputShape: opts.inputShape ?? spec.defaultInputShape, includeTop: false, alpha, seed, ...fromFile }), spec);
  if (source.kind === 'none') {
    const alpha = resolveWidth(spec, opts.alpha);
    return { model: build(alpha), spec, alpha, weightsSha256: null, weightsSource: `none (random init, seed ${seed})` };
  }
  const { file, alpha } = await weightsAndWidth(spec, source, opts.alpha);
  const model = build(alpha, spec.buildOptionsFor?.(file.layerNames));
  try {
    assignWeights(model, file, { autoNamedLayerBases: spec.autoNamedLayerBases, fitsWhat: describeVariant(spec, alpha) });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, spec, alpha, weightsSha256: file.sha256, weightsSource: path.resolve(file.source) };
}

export { readWeightsFile } from './weights-read.js';
export { parseWeightsSource, describeWeightsSource, type WeightsSource } from './weights-source.js';
export { assignWeights } from './weights-apply.js';
export { writeKerasH5Weights, writeTfjsWeights } from './weights-write.js';
