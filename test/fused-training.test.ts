import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { readIdxImages, readIdxLabels } from '../src/data/idx.js';
import { withFastL2, withFusedConvolutions } from '../src/training/layer-patches.js';
import { setSimdEnabled } from '../src/runtime/wasm-kernels/simd.js';
import { relativeError, shared } from './helpers.js';

await initBackend('wasm');

const TOLERANCE = 1e-4;

/**
 * Every fusable Conv2D shape the patch meets: a one-channel 3x3 ReLU first layer feeding a 2x2 max
 * pool (run as one block, simd.wat's conv2d_c1_relu_pool), a strided ReLU layer with 6 channels
 * (XNNPACK; the bias/ReLU gradient's scalar path), a linear layer with a bias and a ReLU layer
 * without one.
 */
function buildModel(size: number, padding: 'same' | 'valid'): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [size, size, 1], filters: 8, kernelSize: 3, padding, activation: 'relu' }),
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
  /** The loss gradient of every weight, then of the input images. */
  grads: Float32Array[];
  kernels: string[];
}

/**
 * Softmax outputs, the gradients and the kernels of one training step (the images as a variable
 * too); `shapes` collects each kernel's output shapes.
 */
async function trainingStep(model: tf.LayersModel, images: tf.Tensor4D, labels: Int32Array, shapes?: Map<string, number[][]>): Promise<Result> {
  let probs = new Float32Array();
  let grads: Float32Array[] = [];
  const profile = await tf.profile(() => {
    const x = tf.variable(images);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10));
    const weights = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads: g } = tf.variableGrads(() => {
      const p = model.apply(x, { training: true }) as tf.Tensor;
      probs = p.dataSync() as Float32Array;
      return tf.losses.softmaxCrossEntropy(y, tf.log(p)) as tf.Scalar;
    }, [...weights, x]);
    grads = [...weights, x].map((w) => g[w.name]!.dataSync() as Float32Array);
    tf.dispose([x, y, value, ...Object.values(g)]);
  });
  for (const k of profile.kernels) shapes?.set(k.name, [...(shapes.get(k.name) ?? []), ...k.outputShapes]);
  return { probs, grads, kernels: profile.kernels.map((k) => k.name) };
}

const count = (kernels: string[], name: string) => kernels.filter((k) => k === name).length;

/**
 * One training step of the model `build` makes on the first 12 Fashion-MNIST test images cut to
 * size x size, fused on wasm against unfused on cpu from the same weights: the outputs and every
 * gradient agree, and the fused step leaks no tensor. Returns the wasm step and its kernels' output shapes.
 */
async function fusedMatchesCpu(build: () => tf.LayersModel, size: number): Promise<Result & { shapes: Map<string, number[][]> }> {
  const data = await readIdxImages(shared('datasets', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'));
  const allLabels = await readIdxLabels(shared('datasets', 'fashion-mnist', 't10k-labels-idx1-ubyte.gz'));
  const n = 12;
  const images = new Float32Array(n * size * size).map((_, i) => {
    const [img, r, c] = [Math.floor(i / (size * size)), Math.floor(i / size) % size, i % size];
    return data.data[img * 784 + r * 28 + c]! / 255;
  });
  const labels = Int32Array.from(allLabels.subarray(0, n));

  const model = build();
  const weights = model.getWeights().map((w) => ({ values: w.dataSync().slice(), shape: w.shape }));
  const shapes = new Map<string, number[][]>();
  const onBackend = async (backend: string, fused: boolean): Promise<Result> => {
    await tf.setBackend(backend);
    const copy = build();
    const initial = weights.map((w) => tf.tensor(w.values, w.shape));
    copy.setWeights(initial);
    const x = tf.tensor4d(images, [n, size, size, 1]);
    tf.dispose(initial);
    const run = () => trainingStep(copy, x, labels, fused ? shapes : undefined);
    const tensorsBefore = tf.memory().numTensors;
    const result = fused ? await withFusedConvolutions(copy, run) : await run();
    assert.equal(tf.memory().numTensors, tensorsBefore, `tensors leaked by a training step on ${backend}`);
    tf.dispose(x);
    copy.dispose();
    return result;
  };

  const expected = await onBackend('cpu', false);
  const actual = await onBackend('wasm', true);
  assert.ok(expected.kernels.includes('Relu') && expected.kernels.includes('MaxPool'), 'the cpu reference ran fused too');
  assert.ok(relativeError(actual.probs, expected.probs) <= TOLERANCE, 'outputs differ');
  const names = [...model.trainableWeights.map((w) => w.originalName), 'input images'];
  assert.equal(actual.grads.length, names.length);
  actual.grads.forEach((g, i) => {
    const err = relativeError(g, expected.grads[i]!);
    assert.ok(err <= TOLERANCE, `gradient of ${names[i]}: relative error ${err}`);
  });
  model.dispose();
  return { ...actual, shapes };
}

for (const [size, padding] of [[28, 'same'], [27, 'valid']] as const) {
  test(`Conv2D layers trained as fused kernels (wasm) give the unfused outputs and gradients (cpu), and leak nothing: ${size}x${size}, ${padding}`, async () => {
    // 27: the conv output is odd, the pool drops a row.
    const actual = await fusedMatchesCpu(() => buildModel(size, padding), size);
    assert.equal(count(actual.kernels, 'TlConvReluPool'), 1, `ran ${actual.kernels.join(' ')}`);
    assert.equal(count(actual.kernels, 'TlConvReluPoolGrad'), 1);
    assert.equal(count(actual.kernels, 'FusedConv2D'), 3);
    assert.ok(actual.kernels.includes('TlReluBiasGrad'));
    for (const unfused of ['Relu', 'MaxPool', 'MaxPoolGrad']) assert.equal(count(actual.kernels, unfused), 0, `${unfused} ran as its own kernel`);
  });
}

test('a Conv2D whose pooling layer reads fewer rows and columns than it makes computes only those (same outputs and gradients)', async () => {
  // 27 -> conv 25 -> pool 12 -> 'same' conv 12, of which a 3/2 max pool reads 11 -> 5 -> 'valid' conv 3, of which a 2x2 average pool reads 2.
  const build = () => tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [27, 27, 1], filters: 8, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }),
      tf.layers.averagePooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
  const actual = await fusedMatchesCpu(build, 27);
  assert.deepEqual(actual.shapes.get('FusedConv2D'), [[12, 11, 11, 8], [12, 2, 2, 8]]);
});

test('without wasm SIMD the first block is not fused into one kernel (its loops have no fallback); the layers still are', async () => {
  await tf.setBackend('wasm');
  const model = buildModel(28, 'same');
  const images = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
  setSimdEnabled(false);
  try {
    const { kernels } = await withFusedConvolutions(model, () => trainingStep(model, images, Int32Array.from([1, 2])));
    assert.equal(count(kernels, 'TlConvReluPool'), 0);
    assert.equal(count(kernels, 'FusedConv2D'), 4);
  } finally {
    setSimdEnabled(true);
    tf.dispose(images);
    model.dispose();
  }
});

test('the fused Conv2D patch is undone after training, even when training throws', async () => {
  await tf.setBackend('wasm');
  const model = buildModel(28, 'same');
  const calls = model.layers.map((l) => l.call);
  await assert.rejects(withFusedConvolutions(model, async () => {
    assert.notEqual(model.layers[0]!.call, calls[0]);
    assert.notEqual(model.layers[1]!.call, calls[1]);
    throw new Error('stop');
  }), /stop/);
  model.layers.forEach((l, i) => assert.equal(l.call, calls[i]));
  model.dispose();
});

/** The loss of `model` on a batch plus its regularizers' penalties, the gradient of every trainable weight, and how many elements the step's kernels wrote. */
async function regularizedStep(model: tf.LayersModel, x: tf.Tensor, labels: Int32Array): Promise<{ loss: number; grads: Float32Array[]; written: number }> {
  let loss = 0;
  let grads: Float32Array[] = [];
  // Awaited before anything else is profiled: tfjs keeps one active profile for the whole engine.
  const profile = await tf.profile(() => {
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10));
    const weights = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads: g } = tf.variableGrads(() => tf.addN([tf.losses.softmaxCrossEntropy(y, tf.log(model.apply(x, { training: true }) as tf.Tensor)), ...model.calculateLosses()]) as tf.Scalar, weights);
    loss = value.dataSync()[0]!;
    grads = weights.map((w) => g[w.name]!.dataSync() as Float32Array);
    tf.dispose([y, value, ...Object.values(g)]);
  });
  // Elements the step's kernels wrote.
  const written = profile.kernels.reduce((n, k) => n + k.outputShapes.reduce((m: number, shape) => m + (shape ?? []).reduce((a, b) => a * b, 1), 0), 0);
  return { loss, grads, written };
}

test('the L2 patch gives the stock L1L2 loss and gradients on a Fashion-MNIST batch in fewer full-size products, leaves L1 alone and is undone after', async () => {
  await tf.setBackend('wasm');
  const data = await readIdxImages(shared('datasets', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'));
  const labels = Int32Array.from((await readIdxLabels(shared('datasets', 'fashion-mnist', 't10k-labels-idx1-ubyte.gz'))).subarray(0, 32));
  const x = tf.tensor2d(Float32Array.from(data.data.subarray(0, 32 * 784), (v) => v / 255), [32, 784]);
  const l2 = tf.regularizers.l2({ l2: 1e-2 });
  const l1l2 = tf.regularizers.l1l2({ l1: 1e-3, l2: 1e-2 });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 256, activation: 'relu', kernelRegularizer: l2 }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelRegularizer: l1l2 }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelRegularizer: l2 }),
    ],
  });
  const stock = await regularizedStep(model, x, labels);
  const stockPenalty = tf.tidy(() => tf.addN(model.calculateLosses()).dataSync()[0]!);
  const tensorsBefore = tf.memory().numTensors;
  const { patched, patchedPenalty } = await withFastL2(model, async () => {
    assert.ok(Object.hasOwn(l2, 'apply'), 'the pure L2 regularizer is patched');
    assert.ok(!Object.hasOwn(l1l2, 'apply'), 'a regularizer with an L1 term is left alone');
    // Outside a gradient tape too, as validation and checkpoints compute it.
    const penalty = tf.tidy(() => tf.addN(model.calculateLosses()).dataSync()[0]!);
    return { patched: await regularizedStep(model, x, labels), patchedPenalty: penalty };
  });
  assert.equal(tf.memory().numTensors, tensorsBefore, 'tensors leaked by the patched penalty');
  assert.ok(Math.abs(patchedPenalty - stockPenalty) <= 1e-4 * stockPenalty, `penalty ${patchedPenalty} against ${stockPenalty}`);
  assert.ok(!Object.hasOwn(l2, 'apply'), 'the patch is undone');
  // sum(l2 * x^2) and l2 * sum(x^2) add up 200,000 squares in different orders: float32 rounding apart.
  assert.ok(Math.abs(patched.loss - stock.loss) <= 1e-4 * Math.abs(stock.loss), `loss ${patched.loss} against ${stock.loss}`);
  assert.ok(stock.loss > 1, 'the penalties are part of the loss');
  patched.grads.forEach((g, i) => {
    const err = relativeError(g, stock.grads[i]!);
    assert.ok(err <= 1e-6, `gradient of ${model.trainableWeights[i]!.originalName}: relative error ${err}`);
  });
  // The stock penalty writes several kernel-sized tensors per regularized layer (l2 * x * x, then the tape's products), the patched one one.
  const kernelSizes = 784 * 256 + 64 * 10;
  assert.ok(patched.written <= stock.written - 3 * kernelSizes, `elements written: ${patched.written} patched, ${stock.written} stock`);
  tf.dispose(x);
  model.dispose();
});
