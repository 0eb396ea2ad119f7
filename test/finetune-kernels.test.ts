import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { loadBackbone } from '../src/backbones/index.js';
import { withTlKernels } from '../src/runtime/patches.js';
import { withBatchNormInference, withFusedConvolutions } from '../src/training/layer-patches.js';
import { setSimdEnabled } from '../src/runtime/wasm-kernels/simd.js';
import { relativeError, shared } from './helpers.js';

/**
 * The kernels of a MobileNet fine-tuning step (BatchNorm on its moving statistics, ReLU6, depthwise
 * and pointwise convolutions), on wasm with tl's training kernels, against stock tfjs on the cpu
 * backend: the pretrained MobileNet 0.25 on real flower photos, so activations do reach ReLU6's
 * upper bound.
 */

await initBackend('wasm');

const TOLERANCE = 1e-4;
const SIZE = 64;

/** The first image of each flower class, stretched to SIZE x SIZE and scaled to -1..1 as MobileNet wants. */
async function flowerImages(): Promise<tf.Tensor4D> {
  const root = shared('datasets', 'oxford-flowers-5', 'train');
  const files = readdirSync(root).sort().map((c) => path.join(root, c, readdirSync(path.join(root, c)).sort()[0]!));
  const pixels = await Promise.all(files.map((f) => sharp(f).resize(SIZE, SIZE, { fit: 'fill' }).removeAlpha().raw().toBuffer()));
  const x = new Float32Array(files.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => x.set(Float32Array.from(p, (v) => v / 127.5 - 1), i * SIZE * SIZE * 3));
  return tf.tensor4d(x, [files.length, SIZE, SIZE, 3]);
}

interface Step {
  /** The gradient of every trainable weight, then of the images. */
  grads: Float32Array[];
  kernels: string[];
}

/** One fine-tuning step's gradients of sum(features^2)/n (BN in inference mode), and the kernels it ran. */
async function fineTuningStep(model: tf.LayersModel, images: Float32Array, shape: number[]): Promise<Step> {
  let grads: Float32Array[] = [];
  const profile = await tf.profile(() => {
    const x = tf.variable(tf.tensor4d(images, shape as [number, number, number, number]));
    const weights = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads: g } = tf.variableGrads(() => tf.mean(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, [...weights, x]);
    grads = [...weights, x].map((w) => g[w.name]!.dataSync() as Float32Array);
    tf.dispose([x, value, ...Object.values(g)]);
  });
  return { grads, kernels: profile.kernels.map((k) => k.name) };
}

const count = (kernels: string[], name: string) => kernels.filter((k) => k === name).length;

/**
 * One fine-tuning step of the pretrained MobileNet 0.25 on the flower images (all layers trainable,
 * BatchNorm on its moving statistics), on wasm inside tl's training patches and on cpu with stock
 * tfjs; every gradient must agree.
 */
async function compareFineTuningStep(): Promise<{ wasm: Step; cpu: Step }> {
  const weights = shared('backbones', 'mobilenet_v1_0.25_224');
  const { model } = await loadBackbone({ name: 'mobilenet', alpha: 0.25, inputShape: [SIZE, SIZE, 3], weights });
  for (const layer of model.layers) layer.trainable = true;
  const images = await flowerImages();
  const [pixels, shape] = [images.dataSync() as Float32Array, images.shape];
  images.dispose();
  const step = () => fineTuningStep(model, pixels, shape);
  const tuned = () => withBatchNormInference(model, step);
  const wasm = await withTlKernels(() => withFusedConvolutions(model, tuned));
  await tf.setBackend('cpu');
  const cpu = await tuned();
  await tf.setBackend('wasm');
  assert.equal(wasm.grads.length, cpu.grads.length);
  wasm.grads.forEach((g, i) => {
    const error = relativeError(g, cpu.grads[i]!);
    assert.ok(error <= TOLERANCE, `gradient ${i} (${model.trainableWeights[i]?.name ?? 'images'}): relative error ${error}`);
  });
  model.dispose();
  return { wasm, cpu };
}

for (const simd of [true, false]) {
  test(`fine-tuning MobileNet (BN on frozen statistics): each BN -> ReLU6 pair is one op on wasm, with stock tfjs gradients (cpu); ${simd ? 'SIMD' : 'JS'} loops`, async () => {
    setSimdEnabled(simd);
    try {
      const { wasm, cpu } = await compareFineTuningStep();
      assert.equal(count(wasm.kernels, 'TlAffineRelu'), 27);
      assert.equal(count(wasm.kernels, 'TlAffineReluGrad'), 27);
      for (const stock of ['ClipByValue', 'Relu', 'GreaterEqual']) assert.equal(count(wasm.kernels, stock), 0, stock);
      assert.equal(count(cpu.kernels, 'TlAffineRelu'), 0);
    } finally {
      setSimdEnabled(true);
    }
  });
}

/** Conv -> ReLU6 twice (no BatchNorm in between to fuse with), with activations well past 6. */
function reluSixNet(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [SIZE, SIZE, 3], filters: 8, kernelSize: 3, strides: 2, kernelInitializer: init(1), name: 'c1' }),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, depthwiseInitializer: init(2), name: 'd1' }),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.globalAveragePooling2d({}),
    ],
  });
}

test('ReLU6 without a BatchNorm before it: clipByValue\'s gradient is one kernel on wasm, and the stock one again afterwards', async () => {
  const stockClipGradient = tf.getGradient(tf.ClipByValue);
  const images = await flowerImages();
  // x10: a good share of the activations lands above 6, where the gradient is cut.
  const [pixels, shape] = [(images.dataSync() as Float32Array).map((v) => v * 10), images.shape];
  images.dispose();
  const model = reluSixNet();
  const wasm = await withTlKernels(() => fineTuningStep(model, pixels, shape));
  await tf.setBackend('cpu');
  const cpu = await fineTuningStep(model, pixels, shape);
  await tf.setBackend('wasm');
  wasm.grads.forEach((g, i) => assert.ok(relativeError(g, cpu.grads[i]!) <= TOLERANCE, `gradient ${i}`));
  assert.equal(count(wasm.kernels, 'TlClipGrad'), 2);
  for (const stockPart of ['GreaterEqual', 'LessEqual', 'LogicalAnd']) assert.equal(count(wasm.kernels, stockPart), 0, stockPart);
  assert.equal(count(cpu.kernels, 'TlClipGrad'), 0);
  assert.equal(tf.getGradient(tf.ClipByValue), stockClipGradient);
  model.dispose();
});

test('Slice on wasm (copied on the heap) gives the cpu result: boxes, size -1, full size, int32 left to stock', async () => {
  const images = await flowerImages();
  const pixels = images.dataSync() as Float32Array;
  const shape = images.shape;
  images.dispose();
  const cases: [number[], number[]][] = [[[0, 0, 0, 0], [-1, SIZE - 1, SIZE - 1, -1]], [[1, 3, 4, 1], [2, 7, 60, 2]], [[0, 0, 0, 0], shape], [[4, 63, 63, 2], [1, 1, 1, 1]]];
  for (const [begin, size] of cases) {
    const on = async (backend: string) => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(pixels, shape);
      const out = tf.slice(x, begin, size);
      const result = { shape: out.shape, values: out.dataSync() as Float32Array };
      tf.dispose([x, out]);
      return result;
    };
    const [wasm, cpu] = [await on('wasm'), await on('cpu')];
    assert.deepEqual(wasm.shape, cpu.shape);
    assert.deepEqual(wasm.values, cpu.values, `begin ${begin} size ${size}`);
  }
  await tf.setBackend('wasm');
  assert.deepEqual(Array.from(tf.slice(tf.tensor1d([1, 2, 3], 'int32'), [1], [2]).dataSync()), [2, 3]);
});

test('a Cast to the same dtype on wasm shares the input, which outlives either tensor alone; other casts convert', () => {
  const x = tf.tensor1d([1.5, -2, 3]);
  const same = tf.cast(x, 'float32');
  x.dispose();
  assert.deepEqual(Array.from(same.dataSync()), [1.5, -2, 3]);
  const ints = tf.cast(same, 'int32');
  assert.deepEqual([ints.dtype, Array.from(ints.dataSync())], ['int32', [1, -2, 3]]);
  tf.dispose([same, ints]);
});
