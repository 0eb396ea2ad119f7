import tf from '../runtime/tf.cjs';
import sharp from 'sharp';
import type { PredictionRecord, RunConfig } from '../artifacts/run.js';
import type { DecodedImage } from '../data/images.js';
import { imagesToArray } from '../data/preprocess.js';
import type { MultiOutputEngine } from '../models/engine.js';
import { layerGraph, type LayerNode } from '../models/fused.js';
import { isHeadLayer } from '../models/head.js';
import { THUMB, type SampleLoader } from './grids.js';
import { loadForModel } from './samples.js';

/**
 * Grad-CAM (Selvaraju et al. 2017): which parts of a photo made the model choose its class.
 * The gradient of the class score with respect to the feature layer's activations, averaged over
 * the map, weighs each feature channel; the weighted sum of the channels, clipped at 0, is the
 * heatmap. A transfer run's model.json is base + head as one model, so it is split at the
 * feature layer: the base gives the activations, the head is differentiated on them.
 */

/**
 * A run's model cut at its feature layer: base (image -> feature map, plus whatever else the rest
 * of the model reads that does not come from that map: the other scales' pooled features of a
 * multi-scale run) and the rest (those -> class scores).
 */
export interface SplitModel {
  /** Outputs: the feature map, then the side inputs of the rest. */
  base: tf.LayersModel;
  classes: number;
  /** Class scores before the softmax (see classLogits). */
  scores(features: tf.Tensor4D, sides: readonly tf.Tensor[]): tf.Tensor2D;
}

/**
 * The pre-softmax score of the head's final Dense layer: the softmax saturates at confident
 * predictions (d p / d z -> 0), which leaves the heatmap of a 99% prediction mostly rounding noise.
 */
function classLogits(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor2D {
  if (layer.getClassName() !== 'Dense') return layer.apply(x) as tf.Tensor2D;
  const [kernel, bias] = layer.getWeights();
  const z = tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D);
  return (bias ? tf.add(z, bias) : z) as tf.Tensor2D;
}

/** The split, or undefined for a model without that layer or without a tl head (nothing to differentiate). */
export function splitAtFeatureLayer(model: tf.LayersModel, featureLayer: string): SplitModel | undefined {
  if (!model.layers.some(isHeadLayer) || !model.layers.some((l) => l.name === featureLayer)) return undefined;
  const feature = model.getLayer(featureLayer).output as tf.SymbolicTensor;
  // The layer calls downstream of the feature map, in order; what they read from elsewhere is a side input.
  const downstream: LayerNode[] = [];
  const derived = new Set([feature.id]);
  const sides = new Map<number, tf.SymbolicTensor>();
  for (const call of layerGraph(model, 'Grad-CAM').layerNodes) {
    if (!call.node.inputTensors.some((t) => derived.has(t.id))) continue;
    downstream.push(call);
    for (const t of call.node.inputTensors) if (!derived.has(t.id)) sides.set(t.id, t);
    for (const t of call.node.outputTensors) derived.add(t.id);
  }
  const sideIds = [...sides.keys()];
  return {
    base: tf.model({ inputs: model.inputs, outputs: [feature, ...sides.values()] }),
    classes: model.outputs[0]!.shape.at(-1)!,
    scores: (features, sideValues) => {
      const values = new Map<number, tf.Tensor>([[feature.id, features], ...sideIds.map((id, i) => [id, sideValues[i]!] as const)]);
      downstream.forEach(({ layer, node }, i) => {
        const inputs = node.inputTensors.map((t) => values.get(t.id)!);
        const last = i === downstream.length - 1;
        values.set(node.outputTensors[0]!.id, last ? classLogits(layer, inputs[0]!) : (layer.apply(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor));
      });
      return values.get(downstream.at(-1)!.node.outputTensors[0]!.id) as tf.Tensor2D;
    },
  };
}

/**
 * One heatmap per image, [n, h, w] in 0..1 (1 = the map's maximum), for the class each image is
 * given, from the base's outputs for those images (the feature map, then the side inputs).
 */
export function gradCam(model: SplitModel, [features, ...sides]: readonly [tf.Tensor4D, ...tf.Tensor[]], classes: readonly number[]): tf.Tensor3D {
  return tf.tidy(() => {
    const chosen = tf.oneHot(tf.tensor1d(classes as number[], 'int32'), model.classes);
    // Images are independent through the head, so one gradient of the summed scores gives each its own.
    const gradients = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(model.scores(a as tf.Tensor4D, sides), chosen)))(features);
    const channelWeights = tf.mean(gradients, [1, 2], true);
    const cam = tf.relu(tf.sum(tf.mul(features, channelWeights), -1)) as tf.Tensor3D;
    const peak = tf.max(cam, [1, 2], true);
    return tf.div(cam, tf.maximum(peak, 1e-12)) as tf.Tensor3D;
  });
}

/**
 * A split model with its base on an inference engine (ONNX Runtime by default): the base is all
 * the arithmetic of a forward pass, so only the small rest is differentiated on tfjs.
 */
export interface GradCamModel {
  split: SplitModel;
  base: MultiOutputEngine;
}

/** Blue (cold) through cyan, yellow to red (hot): the 'jet' colours Grad-CAM figures use. */
function heatColour(v: number): [number, number, number] {
  const channel = (centre: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - centre))));
  return [channel(3), channel(2), channel(1)];
}

/**
 * The heatmap over the picture the model saw (its input, stretched to a square as the model got it,
 * so hot regions line up), as a THUMB x THUMB PNG. The heat sets its own opacity, so cold regions
 * show the photo as it is.
 */
export async function overlayHeatmap(picture: DecodedImage, heat: Float32Array, heatShape: [number, number]): Promise<Buffer> {
  const toThumb = { width: THUMB, height: THUMB, fit: 'fill' as const, kernel: 'linear' as const };
  const photo = await sharp(Buffer.from(picture.data), { raw: { width: picture.width, height: picture.height, channels: picture.channels } })
    .resize(toThumb)
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer();
  const [h, w] = heatShape;
  const levels = Buffer.from(heat.map((v) => Math.round(v * 255)));
  // sharp turns a one-channel raw input into sRGB; one channel is asked back.
  const smooth = await sharp(levels, { raw: { width: w, height: h, channels: 1 } }).resize(toThumb).extractChannel(0).raw().toBuffer();
  const out = Buffer.alloc(THUMB * THUMB * 3);
  for (let p = 0; p < THUMB * THUMB; p++) {
    const v = smooth[p]! / 255;
    const colour = heatColour(v);
    const alpha = 0.15 + 0.5 * v;
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round((1 - alpha) * photo[p * 3 + c]! + alpha * colour[c]!);
  }
  return sharp(out, { raw: { width: THUMB, height: THUMB, channels: 3 } }).png().toBuffer();
}

/** Whether a run has a feature layer to look at (transfer and fine-tuned runs on a backbone). */
export function gradCamLayer(config: RunConfig): string | undefined {
  return config.inputShape[2] === 3 ? config.backbone?.featureLayer : undefined;
}

const BATCH = 16;

/**
 * Grad-CAM tiles for `records`, in order, for the class each was predicted as (what the model
 * looked at to decide); undefined where the picture cannot be read. Pictures are decoded as the
 * model took them (run.json's input shape and preprocessing).
 */
export async function gradCamThumbnails(
  model: GradCamModel,
  config: RunConfig,
  records: PredictionRecord[],
  load: SampleLoader,
): Promise<(Buffer | undefined)[]> {
  const tiles: (Buffer | undefined)[] = [];
  for (let start = 0; start < records.length; start += BATCH) {
    const batch = records.slice(start, start + BATCH);
    const pictures = await Promise.all(batch.map((r) => loadForModel(r.source, config, load)));
    const usable = pictures.flatMap((p, i) => (p ? [{ picture: p, record: batch[i]! }] : []));
    const heat = usable.length ? await heatmaps(model, config, usable) : [];
    const overlays = await Promise.all(usable.map((u, i) => overlayHeatmap(u.picture, heat[i]!.values, heat[i]!.shape)));
    let next = 0;
    for (const p of pictures) tiles.push(p ? overlays[next++] : undefined);
  }
  return tiles;
}

async function heatmaps(
  { split, base }: GradCamModel,
  config: RunConfig,
  usable: { picture: DecodedImage; record: PredictionRecord }[],
): Promise<{ values: Float32Array; shape: [number, number] }[]> {
  const { data, shape } = imagesToArray(usable.map((u) => u.picture), config.preprocessing);
  const outputs = await base.run(data, shape[0]);
  const tensors = split.base.outputs.map((o, i) => tf.tensor(outputs[i]!, [shape[0], ...o.shape.slice(1)] as number[])) as [tf.Tensor4D, ...tf.Tensor[]];
  const cams = gradCam(split, tensors, usable.map((u) => u.record.predicted));
  tf.dispose(tensors);
  const [n, h, w] = cams.shape;
  const values = (await cams.data()) as Float32Array;
  cams.dispose();
  return Array.from({ length: n }, (_, i) => ({ values: values.slice(i * h * w, (i + 1) * h * w), shape: [h, w] }));
}
