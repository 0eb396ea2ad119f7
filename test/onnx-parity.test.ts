import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { getBackbone, loadBackbone } from '../src/backbones/index.js';
import { SCALE_TO_PLUS_MINUS_ONE } from '../src/backbones/layers.js';
import { buildCustomModel, CUSTOM_MODELS } from '../src/models/custom.js';
import { exportOnnx } from '../src/models/onnx/export.js';
import type { PreprocessingConfig } from '../src/artifacts/run.js';
import { initBackend } from '../src/runtime/backend.js';
import { onnxEngine } from '../src/runtime/engine.js';
import { relativeError, shared, tempDir } from './helpers.js';
import { flowerBatch, onnxVsTfjs, wave } from './onnx-fixtures.js';

/**
 * ONNX Runtime on the exported graph against tfjs on the layers model: every backbone, the
 * classifier top, both MobileNet paddings and the custom models, to 1e-4 (normwise relative).
 */

const TOLERANCE = 1e-4;
const work = tempDir('tl-onnx-parity-');
before(() => initBackend('wasm'));
after(() => fs.rm(work, { recursive: true, force: true }));

async function assertParity(model: tf.LayersModel, x: Float32Array, batch: number, what: string): Promise<void> {
  const error = await onnxVsTfjs(model, x, batch);
  assert.ok(error <= TOLERANCE, `${what}: relative error ${error}`);
}

for (const alpha of [0.25, 0.75]) {
  test(`MobileNet ${alpha} (ImageNet weights) features of real photos: ONNX Runtime = tfjs`, async () => {
    const backbone = await loadBackbone({ name: 'mobilenet', alpha, inputShape: [128, 128, 3], weights: shared('backbones', `mobilenet_v1_${alpha}_224`) });
    await assertParity(backbone.model, await flowerBatch(4, 128, backbone.spec.preprocessing), 4, `mobilenet ${alpha}`);
    backbone.model.dispose();
  });
}

test('MobileNet with the classifier top, both paddings, odd sizes: ONNX Runtime = tfjs', async () => {
  const spec = getBackbone('mobilenet');
  for (const legacyPadding of [false, true]) {
    const top = spec.build({ inputShape: [224, 224, 3], includeTop: true, alpha: 0.25, classes: 7, seed: 3, legacyPadding });
    await assertParity(top, await flowerBatch(2, 224, SCALE_TO_PLUS_MINUS_ONE), 2, `top, legacyPadding ${legacyPadding}`);
    top.dispose();
    // 75 -> 38 (same) or 37 (explicit pad + valid): where the two paddings differ.
    const odd = spec.build({ inputShape: [75, 75, 3], alpha: 0.5, seed: 4, legacyPadding });
    await assertParity(odd, wave(2 * 75 * 75 * 3), 2, `75x75, legacyPadding ${legacyPadding}`);
    odd.dispose();
  }
});

test('MobileNetV2 0.35 (Teachable Machine ImageNet weights) on real photos, and 1.4 at an odd size: ONNX Runtime = tfjs', async () => {
  // Residual Add, ReLU6 as Clip, DepthwiseConv2D, asymmetric (even maps) and symmetric (odd maps) ZeroPadding2D.
  const backbone = await loadBackbone({ name: 'mobilenetv2', inputShape: [150, 150, 3], weights: shared('backbones', 'mobilenet_v2_0.35_224_tm_export') });
  await assertParity(backbone.model, await flowerBatch(4, 150, backbone.spec.preprocessing), 4, 'mobilenetv2 0.35');
  backbone.model.dispose();
  const odd = getBackbone('mobilenetv2').build({ inputShape: [75, 75, 3], alpha: 1.4, seed: 6 });
  await assertParity(odd, wave(2 * 75 * 75 * 3), 2, 'mobilenetv2 1.4 at 75x75');
  odd.dispose();
});

test('VGG16 and Xception with seeded random weights: ONNX Runtime = tfjs', async () => {
  for (const [name, size] of [['vgg16', 48], ['xception', 71]] as const) {
    const backbone = await loadBackbone({ name, inputShape: [size, size, 3], weights: 'none', seed: 5 });
    await assertParity(backbone.model, wave(2 * size * size * 3), 2, name);
    backbone.model.dispose();
  }
});

test('every custom model (CNN/MLP, BatchNorm, LeakyReLU, tanh, sigmoid, GAP head): ONNX Runtime = tfjs', async () => {
  const specs = [
    ...CUSTOM_MODELS.map((model) => ({ model })),
    { model: 'cnn' as const, cnn: { head: 'gap' as const, activation: 'leakyrelu' as const } },
    { model: 'mlp' as const, mlp: { activation: 'tanh' as const } },
    { model: 'mlp' as const, mlp: { activation: 'sigmoid' as const } },
  ];
  for (const spec of specs) {
    const model = buildCustomModel(spec, [28, 28, 1], 10);
    // Give BatchNorm statistics that are not the identity, so folding is really tested.
    for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
      layer.setWeights(layer.getWeights().map((w, i) => tf.add(tf.mul(tf.randomUniform(w.shape, 0.5, 1.5, 'float32', 7 + i), i === 3 ? 1 : 0.5), 0)));
    }
    await assertParity(model, wave(3 * 28 * 28).map((v) => Math.abs(v)), 3, JSON.stringify(spec));
    model.dispose();
  }
});

test('baked preprocessing: the graph on raw pixels = the plain graph on preprocessed pixels', async () => {
  const input = tf.input({ shape: [16, 16, 3] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.flatten().apply(conv) as tf.SymbolicTensor });
  const raw = Float32Array.from({ length: 2 * 16 * 16 * 3 }, (_, i) => (i * 37) % 256);
  const configs: PreprocessingConfig[] = [SCALE_TO_PLUS_MINUS_ONE, { mode: 'caffe', mean: [103.939, 116.779, 123.68], bgr: true }];
  for (const preprocessing of configs) {
    const baked = await onnxEngine(exportOnnx(model, { preprocessing }), [16, 16, 3]);
    const plain = await onnxEngine(exportOnnx(model), [16, 16, 3]);
    const pre = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i += 3) {
      if (preprocessing.mode === 'caffe') {
        for (let c = 0; c < 3; c++) pre[i + c] = raw[i + 2 - c]! - preprocessing.mean[c]!;
      } else if (preprocessing.mode === 'scale') {
        for (let c = 0; c < 3; c++) pre[i + c] = raw[i + c]! * preprocessing.scale + preprocessing.offset;
      }
    }
    const error = relativeError(await baked.run(raw, 2), await plain.run(pre, 2));
    assert.ok(error <= 1e-5, `${preprocessing.mode}: ${error}`);
    await Promise.all([baked.dispose(), plain.dispose()]);
  }
  model.dispose();
});

test('an unexportable layer fails with one line naming it, its class and what is unsupported', () => {
  const input = tf.input({ shape: [8, 8, 3] });
  const cropped = tf.layers.cropping2D({ cropping: [[1, 1], [1, 1]], name: 'trim' }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: cropped });
  assert.throws(() => exportOnnx(model), (err: Error) => err.name === 'TlError' && /^layer trim \(Cropping2D\): layer class Cropping2D cannot be exported to ONNX; /.test(err.message) && !err.message.includes('\n'));
  const causal = tf.model({ inputs: input, outputs: tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'causal', name: 'odd_pad' }).apply(input) as tf.SymbolicTensor });
  assert.throws(() => exportOnnx(causal), /layer odd_pad \(Conv2D\): padding 'causal' cannot be exported/);
});

test('a corrupt or truncated model.onnx fails with one line naming the file', async () => {
  const model = buildCustomModel({ model: 'seed-mlp' }, [28, 28, 1], 10);
  const bytes = exportOnnx(model);
  model.dispose();
  const truncated = path.join(work, 'truncated.onnx');
  const garbage = path.join(work, 'garbage.onnx');
  await fs.writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await fs.writeFile(garbage, 'not a model at all');
  for (const file of [truncated, garbage]) {
    await assert.rejects(onnxEngine(file, [28, 28, 1]), (err: Error) => err.name === 'TlError' && err.message.startsWith(`${file}: is not a loadable ONNX model`) && !err.message.includes('\n'));
  }
});

test('conv geometry (strides, same/valid, dilation), separable conv + BatchNorm, pooling, merges: ONNX Runtime = tfjs', async () => {
  const input = tf.input({ shape: [23, 19, 3] });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const a = apply(tf.layers.conv2d({ filters: 6, kernelSize: 3, dilationRate: 2, padding: 'same' }), input);
  const b = apply(tf.layers.conv2d({ filters: 6, kernelSize: [3, 5], strides: 1, padding: 'same', activation: 'sigmoid' }), input);
  let x = apply(tf.layers.multiply(), [a, b]);
  x = apply(tf.layers.separableConv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2 }), x);
  const bn = tf.layers.batchNormalization();
  x = apply(bn, x);
  x = apply(tf.layers.activation({ activation: 'elu' }), x);
  const pooled = apply(tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x);
  const strided = apply(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same' }), x);
  x = apply(tf.layers.concatenate(), [pooled, strided]);
  x = apply(tf.layers.depthwiseConv2d({ kernelSize: 2, padding: 'valid', depthMultiplier: 3, activation: 'relu6' }), x);
  x = apply(tf.layers.globalMaxPooling2d({}), x);
  x = apply(tf.layers.dense({ units: 5, activation: 'softmax' }), x);
  const model = tf.model({ inputs: input, outputs: x });
  bn.setWeights(bn.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', 11 + i)));
  await assertParity(model, wave(2 * 23 * 19 * 3), 2, 'layer mix');
  model.dispose();
});
