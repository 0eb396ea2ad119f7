import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { loadBackbone } from '../src/backbones/index.js';
import { compileInference } from '../src/models/fused.js';
import { multiScaleFeatures, parseScales } from '../src/models/multi-scale.js';
import { initBackend } from '../src/runtime/backend.js';
import { relativeError, shared, tempDir, tlBin } from './helpers.js';
import { flowerBatch, onnxVsTfjs } from './onnx-fixtures.js';

/**
 * Multi-scale pooling (models/multi-scale.ts): the feature model is what it says (each scale's
 * pooled features, side by side), it survives a save and a stock load, and the fused plan and
 * ONNX Runtime compute the same thing as the layers model.
 */

const SIZE = 96;
before(() => initBackend('wasm'));

async function mobilenet(size: number) {
  return loadBackbone({ name: 'mobilenet', inputShape: [size, size, 3], weights: shared('backbones', 'mobilenet_v1_0.25_224') });
}

test('scales 1,2 give the pooled features of the photo and of its 2x bilinear upscaling, concatenated', async () => {
  const base = await mobilenet(SIZE);
  const twice = await mobilenet(2 * SIZE);
  const features = multiScaleFeatures(base.model, [1, 2]);
  const x = tf.tensor4d(await flowerBatch(3, SIZE, base.spec.preprocessing), [3, SIZE, SIZE, 3]);
  const got = features.predict(x) as tf.Tensor2D;
  const expected = tf.tidy(() => {
    const atOne = tf.mean(base.model.predict(x) as tf.Tensor, [1, 2]);
    const atTwo = tf.mean(twice.model.predict(tf.image.resizeBilinear(x, [2 * SIZE, 2 * SIZE])) as tf.Tensor, [1, 2]);
    return tf.concat([atOne, atTwo], 1);
  });
  assert.deepEqual(got.shape, [3, 2 * 256]);
  const error = relativeError(await got.data(), await expected.data());
  assert.ok(error < 1e-5, `relative error ${error}`);
  assert.equal(multiScaleFeatures(base.model, [1]), base.model, 'scale 1 alone is the base itself (the head pools its map)');
  assert.ok(features.getLayer('scale2_conv1') && features.getLayer('conv1'), 'the copy has its own names; the base keeps Keras\'s');
  tf.dispose([x, got, expected]);
  twice.model.dispose();
});

test('a multi-scale model saves and loads with stock tfjs, and the fused plan and ONNX Runtime agree with it', async () => {
  const base = await mobilenet(SIZE);
  const features = multiScaleFeatures(base.model, [1, 2, 3]);
  const input = await flowerBatch(2, SIZE, base.spec.preprocessing);
  const x = tf.tensor4d(input, [2, SIZE, SIZE, 3]);
  const reference = await (features.predict(x) as tf.Tensor).data();

  let saved: tf.io.ModelArtifacts | undefined;
  await features.save(tf.io.withSaveHandler(async (artifacts) => ((saved = artifacts), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
  const reloaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
  assert.ok(relativeError(await (reloaded.predict(x) as tf.Tensor).data(), reference) < 1e-6, 'reloaded');

  const plan = compileInference(features);
  const fused = relativeError(await plan.run(x).data(), reference);
  assert.ok(fused < 1e-4, `fused plan: relative error ${fused}`);
  const onnx = await onnxVsTfjs(features, input, 2);
  assert.ok(onnx < 1e-4, `ONNX Runtime: relative error ${onnx}`);
  plan.dispose();
  x.dispose();
  reloaded.dispose();
});

test('--scales takes whole factors, 1 first, and names the valid form otherwise', () => {
  assert.deepEqual(parseScales('1,2'), [1, 2]);
  assert.deepEqual(parseScales('1'), [1]);
  for (const bad of ['1,1.5', '2,1', '1,1', '1,9', '0', 'x']) assert.equal(parseScales(bad), undefined, bad);
  const run = spawnSync(process.execPath, [tlBin, 'train', '--backbone', 'mobilenet', '--scales', '1,1.5', shared('datasets', 'oxford-flowers-5', 'train')], {
    encoding: 'utf8',
    env: { ...process.env, TL_HOME: tempDir('tl-scales-') },
  });
  assert.equal(run.status, 1);
  const lines = run.stderr.trim().split('\n');
  assert.ok(lines.length <= 2, run.stderr);
  assert.match(lines[0]!, /--scales <list>' argument '1,1.5' is invalid. It must be whole numbers from 1 to 4, comma-separated, 1 first/);
});
