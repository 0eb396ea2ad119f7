import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { referenceCrossEntropy, relativeError } from './helpers.js';
import { initBackend } from '../src/runtime/backend.js';
import { batchNormTraining, installFastBatchNorm, uninstallFastBatchNorm } from '../src/runtime/batchnorm.js';
import { buildCustomModel } from '../src/models/custom.js';

/** Deterministic pseudo-random numbers (mulberry32), so every backend sees the same data. */
function randoms(n: number, seed: number, offset = 0, spread = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = offset + spread * ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1);
  }
  return out;
}

interface Case {
  shape: number[];
  /** Inputs far from zero mean check that no cancellation creeps into the statistics. */
  offset: number;
}
const CASES: Case[] = [
  { shape: [4, 5, 6, 8], offset: 0 },
  { shape: [8, 14, 14, 4], offset: 3 },
  { shape: [3, 7, 5, 16], offset: -2 },
  { shape: [16, 10], offset: 1 },
  { shape: [61, 3], offset: 0 },
];

interface BnResult {
  y: Float32Array;
  dx: Float32Array;
  dGamma: Float32Array;
  dBeta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
}

/**
 * One forward/backward pass of a tfjs-layers BatchNormalization on the current backend:
 * loss = sum(y * w) with fixed random w; gradients for x, gamma and beta; moving statistics after.
 */
function runLayer(c: Case, training: boolean): BnResult {
  const channels = c.shape[c.shape.length - 1]!;
  const size = c.shape.reduce((a, b) => a * b, 1);
  const layer = tf.layers.batchNormalization({ momentum: 0.9 });
  layer.build(c.shape);
  const initial = [
    tf.tensor1d(randoms(channels, 11, 1, 0.5)),
    tf.tensor1d(randoms(channels, 12, 0, 0.5)),
    tf.tensor1d(randoms(channels, 13, c.offset, 0.5)),
    tf.tensor1d(randoms(channels, 14, 1.5, 0.5)),
  ];
  layer.setWeights(initial);
  tf.dispose(initial);
  const x = tf.tidy(() => tf.variable(tf.tensor(randoms(size, 15, c.offset, 2), c.shape)));
  const w = tf.tensor(randoms(size, 16), c.shape);
  const [gamma, beta] = layer.trainableWeights.map((v) => v.read() as tf.Variable);
  let y: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    y = tf.keep(layer.apply(x, { training }) as tf.Tensor);
    return tf.sum(tf.mul(y, w));
  }, [x, gamma!, beta!]);
  const read = (t: tf.Tensor) => t.dataSync() as Float32Array;
  const weights = layer.getWeights();
  const result = {
    y: read(y!),
    dx: read(grads[x.name]!),
    dGamma: read(grads[gamma!.name]!),
    dBeta: read(grads[beta!.name]!),
    movingMean: read(weights[2]!),
    movingVariance: read(weights[3]!),
  };
  tf.dispose([x, w, y!, value, ...Object.values(grads)]);
  // A layer applied to concrete tensors only has no inbound nodes, so Layer.dispose refuses it.
  layer.weights.forEach((v) => v.dispose());
  return result;
}

function assertClose(actual: BnResult, expected: BnResult, label: string): void {
  const tolerance: Record<keyof BnResult, number> = {
    y: 1e-5,
    dx: 1e-4,
    dGamma: 1e-4,
    dBeta: 1e-4,
    movingMean: 1e-5,
    movingVariance: 1e-5,
  };
  for (const key of Object.keys(tolerance) as (keyof BnResult)[]) {
    const err = relativeError(actual[key], expected[key]);
    assert.ok(err <= tolerance[key], `${label} ${key}: relative error ${err.toExponential(2)} > ${tolerance[key]}`);
  }
}

const FAST_BACKENDS = ['cpu', 'wasm'] as const;

before(async () => {
  await initBackend('wasm');
});

for (const training of [true, false]) {
  test(`BatchNormalization in ${training ? 'training' : 'inference'} mode: forward, gradients and moving statistics equal stock tfjs on cpu`, async () => {
    uninstallFastBatchNorm();
    await tf.setBackend('cpu');
    const expected = CASES.map((c) => runLayer(c, training));
    installFastBatchNorm();
    try {
      for (const backend of FAST_BACKENDS) {
        await tf.setBackend(backend);
        CASES.forEach((c, i) => assertClose(runLayer(c, training), expected[i]!, `${backend} ${JSON.stringify(c.shape)}`));
      }
    } finally {
      await tf.setBackend('wasm');
    }
  });
}

test('the fast path leaks no tensors and keeps the moving statistics untouched in inference mode', () => {
  installFastBatchNorm();
  const c = CASES[0]!;
  runLayer(c, false); // warm-up: backends and layers cache a few constants on first use
  const before = tf.memory().numTensors;
  const inference = runLayer(c, false);
  assert.equal(tf.memory().numTensors, before);
  const channels = c.shape[c.shape.length - 1]!;
  assert.deepEqual(inference.movingMean, randoms(channels, 13, c.offset, 0.5));
  runLayer(c, true);
  assert.equal(tf.memory().numTensors, before);
});

test('without gamma and beta (scale/center false) training mode equals gamma = 1, beta = 0', () => {
  installFastBatchNorm();
  const [shape, channels] = [[6, 3, 4, 5], 5];
  tf.tidy(() => {
    const x = tf.tensor(randoms(360, 51, 2, 3), shape);
    const w = tf.tensor(randoms(360, 52), shape);
    const loss = (gamma: tf.Tensor | null, beta: tf.Tensor | null) => (t: tf.Tensor) =>
      tf.sum(tf.mul(batchNormTraining(t, gamma, beta, 1e-3).y, w));
    const plain = tf.valueAndGrad(loss(null, null))(x);
    const unit = tf.valueAndGrad(loss(tf.ones([channels]), tf.zeros([channels])))(x);
    assert.ok(relativeError(plain.grad.dataSync(), unit.grad.dataSync()) < 1e-6);
    assert.ok(relativeError(plain.value.dataSync(), unit.value.dataSync()) < 1e-6);
  });
});

/** Shapes of x and of the batchNorm parameters: per channel, and full-shape as LayerNormalization uses. */
const KERNEL_CASES: { x: number[]; param: number[] }[] = [
  { x: [4, 5, 6, 8], param: [8] },
  { x: [16, 10], param: [10] },
  { x: [3, 4, 6], param: [3, 4, 6] },
];

/** Gradients of sum(tf.batchNorm(x, mean, variance, offset, scale) * w) for all five inputs. */
function fusedBatchNormGrads(shape: { x: number[]; param: number[] }): Float32Array[] {
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    const x = tf.tensor(randoms(size(shape.x), 41, 1, 2), shape.x);
    const w = tf.tensor(randoms(size(shape.x), 42), shape.x);
    const param = (seed: number, offset: number) => tf.tensor(randoms(size(shape.param), seed, offset, 0.5), shape.param);
    const f = (...t: tf.Tensor[]) => tf.sum(tf.mul(tf.batchNorm(t[0]!, t[1]!, t[2]!, t[3]!, t[4]!, 1e-3), w));
    return tf.grads(f)([x, param(43, 1), param(44, 1.5), param(45, 0), param(46, 1)]).map((g) => g.dataSync() as Float32Array);
  });
}

test('the FusedBatchNorm gradient (tf.batchNorm with given statistics) equals stock tfjs on cpu', async () => {
  uninstallFastBatchNorm();
  await tf.setBackend('cpu');
  const expected = KERNEL_CASES.map(fusedBatchNormGrads);
  installFastBatchNorm();
  try {
    for (const backend of FAST_BACKENDS) {
      await tf.setBackend(backend);
      KERNEL_CASES.forEach((c, i) => {
        fusedBatchNormGrads(c).forEach((g, input) => {
          const err = relativeError(g, expected[i]![input]!);
          assert.ok(err <= 1e-4, `${backend} ${JSON.stringify(c)} input ${input}: relative error ${err.toExponential(2)}`);
        });
      });
    }
  } finally {
    await tf.setBackend('wasm');
  }
});

/** One SGD step of the default custom CNN (conv-BN-ReLU x3) on a fixed batch: every weight after it. */
function cnnStep(initial: tf.Tensor[]): Float32Array[] {
  const model = buildCustomModel({ model: 'cnn', cnn: { dropout: 0 } }, [8, 8, 1], 4);
  model.setWeights(initial);
  const x = tf.tensor4d(randoms(6 * 64, 31, 0.3), [6, 8, 8, 1]);
  const y = tf.tensor1d([0, 1, 2, 3, 0, 1], 'int32');
  const optimizer = tf.train.sgd(0.1);
  optimizer.minimize(() => referenceCrossEntropy(model.apply(x, { training: true }) as tf.Tensor, y))?.dispose();
  const out = model.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([x, y]);
  optimizer.dispose();
  model.dispose();
  return out;
}

// Weights, not their updates, are compared: single updates such as sum(dy) for a BN beta cancel
// heavily, so even stock wasm and stock cpu differ there by up to ~5e-5 relative.
test('a training step of the BN CNN gives the weights and moving statistics stock tfjs gives', async () => {
  await tf.setBackend('cpu');
  try {
    const init = buildCustomModel({ model: 'cnn', cnn: { dropout: 0 } }, [8, 8, 1], 4, 7);
    const initial = init.getWeights().map((w) => w.clone());
    init.dispose();
    uninstallFastBatchNorm();
    const expected = cnnStep(initial);
    installFastBatchNorm();
    for (const backend of FAST_BACKENDS) {
      await tf.setBackend(backend);
      const actual = cnnStep(initial);
      expected.forEach((w, i) => {
        const err = relativeError(actual[i]!, w);
        assert.ok(err <= 1e-5, `${backend} weight ${i}: relative error ${err.toExponential(2)}`);
      });
    }
    tf.dispose(initial);
  } finally {
    await tf.setBackend('wasm');
  }
});
