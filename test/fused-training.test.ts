import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { readIdxImages, readIdxLabels } from '../src/data/idx.js';
import { withFusedConvolutions } from '../src/training/layer-patches.js';
import { relativeError, shared } from './helpers.js';

await initBackend('wasm');

const TOLERANCE = 1e-4;

/**
 * Every fusable Conv2D shape the patch meets: a one-channel 3x3 first layer with ReLU and same
 * padding (simd.wat's loop), a strided ReLU layer with 6 channels (XNNPACK; the bias/ReLU
 * gradient's scalar path), a linear layer with a bias and a ReLU layer without one.
 */
function buildModel(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', seed: 1 } as tf.layers.ConvLayerArgs),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: 'relu' }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }),
      tf.layers.conv2d({ filters: 4, kernelSize: 2, useBias: false, activation: 'relu' }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
}

interface Result {
  probs: Float32Array;
  grads: Float32Array[];
  kernels: string[];
}

/** Softmax outputs, the loss gradient of every weight, and the kernels one training step ran. */
async function trainingStep(model: tf.LayersModel, images: Float32Array, labels: Int32Array): Promise<Result> {
  let probs = new Float32Array();
  let grads: Float32Array[] = [];
  const profile = await tf.profile(() => {
    const x = tf.tensor4d(images, [labels.length, 28, 28, 1]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10));
    const { value, grads: g } = tf.variableGrads(() => {
      const p = model.apply(x, { training: true }) as tf.Tensor;
      probs = p.dataSync() as Float32Array;
      return tf.losses.softmaxCrossEntropy(y, tf.log(p)) as tf.Scalar;
    });
    grads = model.trainableWeights.map((w) => g[w.originalName]!.dataSync() as Float32Array);
    tf.dispose([x, y, value, ...Object.values(g)]);
  });
  return { probs, grads, kernels: profile.kernels.map((k) => k.name) };
}

test('Conv2D layers trained as one fused kernel (wasm) give the unfused outputs and gradients (cpu), and leak nothing', async () => {
  const data = await readIdxImages(shared('datasets', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'));
  const allLabels = await readIdxLabels(shared('datasets', 'fashion-mnist', 't10k-labels-idx1-ubyte.gz'));
  const n = 12;
  const images = Float32Array.from(data.data.subarray(0, n * 784), (p) => p / 255);
  const labels = Int32Array.from(allLabels.subarray(0, n));

  const model = buildModel();
  const weights = model.getWeights().map((w) => ({ values: w.dataSync().slice(), shape: w.shape }));
  const onBackend = async (backend: string, fused: boolean): Promise<Result> => {
    await tf.setBackend(backend);
    const copy = buildModel();
    const initial = weights.map((w) => tf.tensor(w.values, w.shape));
    copy.setWeights(initial);
    tf.dispose(initial);
    const run = () => trainingStep(copy, images, labels);
    const tensorsBefore = tf.memory().numTensors;
    const result = fused ? await withFusedConvolutions(copy, run) : await run();
    assert.equal(tf.memory().numTensors, tensorsBefore, `tensors leaked by a training step on ${backend}`);
    copy.dispose();
    return result;
  };

  const expected = await onBackend('cpu', false);
  const actual = await onBackend('wasm', true);

  assert.ok(actual.kernels.filter((k) => k === 'FusedConv2D').length === 4, `ran ${actual.kernels.join(' ')}`);
  assert.ok(!actual.kernels.includes('Relu'), 'a ReLU ran as its own kernel');
  assert.ok(actual.kernels.includes('TlReluBiasGrad'));
  assert.ok(expected.kernels.includes('Relu'), 'the cpu reference ran fused too');
  assert.ok(relativeError(actual.probs, expected.probs) <= TOLERANCE, 'outputs differ');
  assert.equal(actual.grads.length, 9);
  actual.grads.forEach((g, i) => {
    const err = relativeError(g, expected.grads[i]!);
    assert.ok(err <= TOLERANCE, `gradient of ${model.trainableWeights[i]!.originalName}: relative error ${err}`);
  });
  model.dispose();
});

test('the fused Conv2D patch is undone after training, even when training throws', async () => {
  await tf.setBackend('wasm');
  const model = buildModel();
  const calls = model.layers.map((l) => l.call);
  await assert.rejects(withFusedConvolutions(model, async () => {
    assert.notEqual(model.layers[0]!.call, calls[0]);
    throw new Error('stop');
  }), /stop/);
  model.layers.forEach((l, i) => assert.equal(l.call, calls[i]));
  model.dispose();
});
