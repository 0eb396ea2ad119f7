import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { withTlKernels } from '../src/runtime/patches.js';
import { setSimdEnabled } from '../src/runtime/wasm-kernels/simd.js';
import { shortSpinBinary } from '../src/runtime/wasm-kernels/threads.js';
import { SIMD_WASM_BASE64 } from '../src/runtime/wasm-kernels/simd-binary.js';
import { FusedAdamOptimizer, sparseCrossEntropy } from '../src/training/optimizers.js';
import { Rng } from '../src/util/rng.js';
import { repoRoot, referenceCrossEntropy, relativeError as normwiseRelativeError } from './helpers.js';

type Pad = 'valid' | 'same' | number | [[0, 0], [number, number], [number, number], [0, 0]];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
interface Data {
  shape: number[];
  values: Float32Array;
}

await initBackend('wasm');

function randomData(rng: Rng, shape: number[]): Data {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng.next() * 2 - 1;
  return { shape, values };
}

/** Run one kernel on a backend from plain arrays; the result comes back as an array. */
async function runOn(backend: string, kernel: string, inputs: Record<string, Data>, attrs: object): Promise<Data> {
  await tf.setBackend(backend);
  const tensors = Object.fromEntries(Object.entries(inputs).map(([k, d]) => [k, tf.tensor(d.values, d.shape)]));
  const out = tf.engine().runKernel(kernel, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const result = { shape: out.shape, values: out.dataSync() as Float32Array };
  tf.dispose([out, ...Object.values(tensors)]);
  await tf.setBackend('wasm');
  return result;
}

/** max |a - b| / max |b| of two results of the same shape. */
function relativeError(a: Data, b: Data): number {
  assert.deepEqual(a.shape, b.shape);
  return normwiseRelativeError(a.values, b.values);
}

interface ConvCase {
  batch: number;
  h: number;
  w: number;
  ci: number;
  /** Output channels (conv2d) or channel multiplier (depthwise). */
  co: number;
  k: [number, number];
  stride: number;
  dilation: number;
  pad: Pad;
  rounding: Rounding;
}

function randomPad(rng: Rng): { pad: Pad; rounding: Rounding } {
  switch (rng.int(4)) {
    case 0:
      return { pad: 'valid', rounding: undefined };
    case 1:
      return { pad: 'same', rounding: undefined };
    case 2:
      return { pad: rng.int(3), rounding: (['floor', 'round', 'ceil'] as const)[rng.int(3)] };
    default:
      return { pad: [[0, 0], [rng.int(3), rng.int(3)], [rng.int(3), rng.int(3)], [0, 0]], rounding: undefined };
  }
}

/** A seeded grid of legal cases; `depthwise` adds dilation 2 (with stride 1) and multipliers. */
function cases(seed: number, count: number, depthwise: boolean): ConvCase[] {
  const rng = new Rng(seed);
  const out: ConvCase[] = [];
  while (out.length < count) {
    const stride = 1 + rng.int(2);
    const dilation = depthwise && stride === 1 ? 1 + rng.int(2) : 1;
    const c: ConvCase = {
      batch: 1 + rng.int(3),
      h: 4 + rng.int(7),
      w: 4 + rng.int(7),
      ci: [1, 2, 3, 4, 8][rng.int(5)]!,
      co: depthwise ? 1 + rng.int(2) : 1 + rng.int(6),
      k: [1 + rng.int(3), 1 + rng.int(3)],
      stride,
      dilation,
      ...randomPad(rng),
    };
    try {
      const info = tf.backend_util.computeConv2DInfo([c.batch, c.h, c.w, c.ci], [c.k[0], c.k[1], c.ci, c.co], c.stride, c.dilation, c.pad, c.rounding, depthwise);
      if (info.outHeight > 0 && info.outWidth > 0) out.push(c);
    } catch {
      // an illegal combination (e.g. a fractional explicit pad): draw again
    }
  }
  return out;
}

function outShape(c: ConvCase, depthwise: boolean): number[] {
  return tf.backend_util.computeConv2DInfo([c.batch, c.h, c.w, c.ci], [c.k[0], c.k[1], c.ci, c.co], c.stride, c.dilation, c.pad, c.rounding, depthwise).outShape;
}

/** The definition of a depthwise convolution's gradients, for dilations the cpu kernels ignore. */
function depthwiseReference(c: ConvCase, x: Data, filter: Data, dy: Data): { dx: Data; dw: Data } {
  const info = tf.backend_util.computeConv2DInfo([c.batch, c.h, c.w, c.ci], [c.k[0], c.k[1], c.ci, c.co], c.stride, c.dilation, c.pad, c.rounding, true);
  const dx = new Float32Array(x.values.length);
  const dw = new Float32Array(filter.values.length);
  const m = c.co;
  for (let b = 0; b < c.batch; b++)
    for (let oh = 0; oh < info.outHeight; oh++)
      for (let ow = 0; ow < info.outWidth; ow++)
        for (let kh = 0; kh < c.k[0]; kh++)
          for (let kw = 0; kw < c.k[1]; kw++) {
            const ih = oh * c.stride - info.padInfo.top + kh * c.dilation;
            const iw = ow * c.stride - info.padInfo.left + kw * c.dilation;
            if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
            for (let ch = 0; ch < c.ci; ch++)
              for (let j = 0; j < m; j++) {
                const g = dy.values[((b * info.outHeight + oh) * info.outWidth + ow) * c.ci * m + ch * m + j]!;
                const xi = ((b * c.h + ih) * c.w + iw) * c.ci + ch;
                const wi = ((kh * c.k[1] + kw) * c.ci + ch) * m + j;
                dx[xi] += g * filter.values[wi]!;
                dw[wi] += g * x.values[xi]!;
              }
          }
  return { dx: { shape: x.shape, values: dx }, dw: { shape: filter.shape, values: dw } };
}

const TOLERANCE = 1e-4;

async function checkConvCase(c: ConvCase, depthwise: boolean, rng: Rng): Promise<string[]> {
  const x = randomData(rng, [c.batch, c.h, c.w, c.ci]);
  const filter = randomData(rng, [c.k[0], c.k[1], c.ci, c.co]);
  const dy = randomData(rng, outShape(c, depthwise));
  const common = { strides: c.stride, pad: c.pad, dimRoundingMode: c.rounding };
  const kernels = depthwise
    ? [
        ['DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...common, dilations: c.dilation, inputShape: x.shape }] as const,
        ['DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...common, dilations: c.dilation, filterShape: filter.shape }] as const,
      ]
    : [
        ['Conv2DBackpropInput', { dy, filter }, { ...common, dataFormat: 'NHWC', inputShape: x.shape }] as const,
        ['Conv2DBackpropFilter', { x, dy }, { ...common, dataFormat: 'NHWC', filterShape: filter.shape }] as const,
      ];
  const reference = depthwise && c.dilation > 1 ? depthwiseReference(c, x, filter, dy) : undefined;
  const failures: string[] = [];
  for (const [i, [kernel, inputs, attrs]] of kernels.entries()) {
    const expected = reference ? (i === 0 ? reference.dx : reference.dw) : await runOn('cpu', kernel, inputs, attrs);
    for (const simd of [true, false]) {
      setSimdEnabled(simd);
      const actual = await runOn('wasm', kernel, inputs, attrs);
      const err = relativeError(actual, expected);
      if (!(err <= TOLERANCE)) failures.push(`${kernel} simd=${simd} ${JSON.stringify(c)}: relative error ${err}`);
    }
    setSimdEnabled(true);
  }
  return failures;
}

test('Conv2D gradients on wasm match the cpu kernels on a seeded grid (strides, paddings, rounding, batch, odd/even sizes)', async () => {
  const rng = new Rng(7);
  const failures: string[] = [];
  for (const c of cases(11, 60, false)) failures.push(...(await checkConvCase(c, false, rng)));
  assert.deepEqual(failures, []);
});

test('Conv2D filter gradients by the own A^T B loop match cpu: 1x1 at strides 1 and 2, padded 3x3, channel counts, rows across its 256-row slices, 4-column tails', async () => {
  const rng = new Rng(14);
  const failures: string[] = [];
  for (const [batch, h, ci, co] of [[2, 9, 4, 4], [3, 17, 8, 12], [1, 5, 16, 8], [2, 23, 16, 20], [1, 7, 32, 16], [2, 3, 12, 4], [1, 3, 256, 8]]) {
    // Stride 1: x is its own patch matrix; stride 2: im2col picks every other pixel.
    for (const stride of [1, 2]) {
      failures.push(...(await checkConvCase({ batch: batch!, h: h!, w: h! + 1, ci: ci!, co: co!, k: [1, 1], stride, dilation: 1, pad: 'valid', rounding: undefined }, false, rng)));
    }
  }
  // Padded 3x3 filters through im2col, with 8-column tiles and a 4-column tail.
  for (const [co, pad] of [[8, 'same'], [12, 1], [16, [[0, 0], [2, 0], [0, 1], [0, 0]]]] as const) {
    failures.push(...(await checkConvCase({ batch: 2, h: 11, w: 9, ci: 8, co, k: [3, 3], stride: 1, dilation: 1, pad: pad as Pad, rounding: undefined }, false, rng)));
  }
  assert.deepEqual(failures, []);
});

test('Conv2D dx of a layer whose patch matrix is built a few images at a time matches cpu', async () => {
  // 5 images x 62x62 outputs x 3*3*64 patch values = 11M floats > the 8M-float chunk budget.
  const c: ConvCase = { batch: 5, h: 64, w: 64, ci: 64, co: 8, k: [3, 3], stride: 1, dilation: 1, pad: 'valid', rounding: undefined };
  const failures = await checkConvCase(c, false, new Rng(10));
  assert.deepEqual(failures, []);
});

test('Conv2D dW whose patch matrix rows are made a few images at a time (own A^T B loop) matches cpu', async () => {
  // 7 images x 96x96 outputs x 3*3*16 patch values = 9.3M floats > the 8M-float chunk budget: chunks
  // of 6 and 1 images, so on 2 threads the second chunk leaves one thread's partial dW as it was.
  const c: ConvCase = { batch: 7, h: 98, w: 98, ci: 16, co: 8, k: [3, 3], stride: 1, dilation: 1, pad: 'valid', rounding: undefined };
  const failures = await checkConvCase(c, false, new Rng(15));
  assert.deepEqual(failures, []);
});

test('Conv2D dW by XNNPACK over a patch matrix made a few images at a time (Co not a multiple of 4) matches cpu', async () => {
  // 5 images x 62x62 outputs x 3*3*64 patch values = 11M floats > the 8M-float chunk budget; Co 6 keeps XNNPACK.
  const c: ConvCase = { batch: 5, h: 64, w: 64, ci: 64, co: 6, k: [3, 3], stride: 1, dilation: 1, pad: 'valid', rounding: undefined };
  const failures = await checkConvCase(c, false, new Rng(16));
  assert.deepEqual(failures, []);
});

test('Conv2D and its filter gradient for one-channel images on wasm (own 3x3 loops) match cpu: strides, paddings, odd sizes', async () => {
  const rng = new Rng(14);
  const failures: string[] = [];
  for (const c of cases(15, 40, false)) {
    const one = { ...c, ci: 1, co: 4 * (1 + rng.int(3)), k: [3, 3] as [number, number] };
    if (outShape(one, false).some((d) => d <= 0)) continue;
    const x = randomData(rng, [one.batch, one.h, one.w, 1]);
    const filter = randomData(rng, [one.k[0], one.k[1], 1, one.co]);
    const dy = randomData(rng, outShape(one, false));
    const attrs = { strides: one.stride, pad: one.pad, dimRoundingMode: one.rounding, dilations: 1, dataFormat: 'NHWC' };
    for (const [kernel, inputs, extra] of [
      ['Conv2D', { x, filter }, {}],
      ['Conv2DBackpropFilter', { x, dy }, { filterShape: filter.shape }],
    ] as const) {
      const expected = await runOn('cpu', kernel, inputs, { ...attrs, ...extra });
      const err = relativeError(await runOn('wasm', kernel, inputs, { ...attrs, ...extra }), expected);
      if (!(err <= TOLERANCE)) failures.push(`${kernel} ${JSON.stringify(one)}: relative error ${err}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('depthwise gradients on wasm match the cpu kernels (dilation 1) and the definition (dilation 2)', async () => {
  const rng = new Rng(8);
  // Plus wide layers, which take the gather loop at stride 1 too (dilated, explicit padding).
  const wide = (over: Partial<ConvCase>): ConvCase => ({ batch: 2, h: 9, w: 8, ci: 64, co: 1, k: [3, 3], stride: 1, dilation: 1, pad: 'same', rounding: undefined, ...over });
  const grid = [
    ...cases(12, 60, true),
    wide({ dilation: 2 }),
    wide({ k: [2, 3], pad: 'valid' }),
    wide({ stride: 2, pad: [[0, 0], [2, 0], [1, 2], [0, 0]] }),
  ];
  assert.ok(grid.some((c) => c.dilation === 2) && grid.some((c) => c.co === 2) && grid.some((c) => c.stride === 2));
  const failures: string[] = [];
  for (const c of grid) failures.push(...(await checkConvCase(c, true, rng)));
  assert.deepEqual(failures, []);
});

test('the definition-based depthwise reference agrees with the cpu kernels where they are right', async () => {
  const rng = new Rng(9);
  for (const c of cases(13, 8, true).filter((d) => d.dilation === 1)) {
    const x = randomData(rng, [c.batch, c.h, c.w, c.ci]);
    const filter = randomData(rng, [c.k[0], c.k[1], c.ci, c.co]);
    const dy = randomData(rng, outShape(c, true));
    const ref = depthwiseReference(c, x, filter, dy);
    const attrs = { strides: c.stride, pad: c.pad, dimRoundingMode: c.rounding, dilations: 1 };
    const cpuDw = await runOn('cpu', 'DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: filter.shape });
    assert.ok(relativeError(ref.dw, cpuDw) <= TOLERANCE);
  }
});

test('MaxPoolGrad on wasm matches cpu, ties included (first maximum wins)', async () => {
  const rng = new Rng(3);
  for (const [shape, size, stride, pad] of [
    [[2, 8, 8, 8], 2, 2, 'valid'],
    [[3, 9, 7, 4], 2, 2, 'valid'],
    [[2, 9, 9, 8], 3, 2, 'same'],
    [[1, 7, 8, 12], 3, 1, 'same'],
    [[2, 7, 7, 6], 2, 2, 'valid'],
  ] as const) {
    // Few distinct values (many ReLU-like zeros) so windows have ties.
    const x = randomData(rng, [...shape]);
    x.values.forEach((v, i) => (x.values[i] = Math.max(0, Math.round(v * 2))));
    const attrs = { filterSize: size, strides: stride, pad };
    const y = await runOn('cpu', 'MaxPool', { x }, attrs);
    const dy = randomData(rng, y.shape);
    const inputs = { dy, input: x, output: y };
    const expected = await runOn('cpu', 'MaxPoolGrad', inputs, attrs);
    for (const simd of [true, false]) {
      setSimdEnabled(simd);
      // Overlapping windows sum in another order than on cpu; a wrong tie choice would be O(1).
      assert.ok(relativeError(await runOn('wasm', 'MaxPoolGrad', inputs, attrs), expected) <= 1e-6, `${shape} simd=${simd}`);
    }
    setSimdEnabled(true);
  }
});

/** A small conv + depthwise network touching every replaced kernel and gradient. */
function smallNet(x: tf.Tensor4D, [w1, b1, w2, w3, w4, b4]: tf.Tensor[]): tf.Scalar {
  let h = tf.relu(tf.add(tf.conv2d(x, w1 as tf.Tensor4D, 2, 'same'), b1!)) as tf.Tensor4D;
  h = tf.relu(tf.depthwiseConv2d(h, w2 as tf.Tensor4D, 1, 'same')) as tf.Tensor4D;
  h = tf.maxPool(h, 2, 2, 'valid');
  h = tf.conv2d(h, w3 as tf.Tensor4D, 1, 'valid');
  const logits = tf.add(tf.matMul(tf.reshape(h, [x.shape[0], -1]), w4 as tf.Tensor2D), b4!);
  return tf.sum(tf.mul(tf.softmax(logits), tf.range(0, 10).reshape([1, 10])));
}

async function netGrads(backend: string, x: Data, params: Data[]): Promise<Data[]> {
  await tf.setBackend(backend);
  const xt = tf.tensor(x.values, x.shape) as tf.Tensor4D;
  const ps = params.map((p) => tf.tensor(p.values, p.shape));
  const grads = tf.grads((...vars: tf.Tensor[]) => smallNet(xt, vars))(ps);
  const out = grads.map((g) => ({ shape: g.shape, values: g.dataSync() as Float32Array }));
  tf.dispose([xt, ...ps, ...grads]);
  await tf.setBackend('wasm');
  return out;
}

test('tf.grads of a small conv + depthwise model are the same on wasm and cpu, and nothing leaks', async () => {
  const rng = new Rng(5);
  const x = randomData(rng, [3, 12, 12, 3]);
  const params = [[3, 3, 3, 8], [8], [3, 3, 8, 2], [2, 2, 16, 4], [4 * 2 * 2, 10], [10]].map((s) => randomData(rng, s));
  const expected = await netGrads('cpu', x, params);
  const backend = tf.engine().findBackend('wasm') as unknown as { numDataIds(): number };
  const tensorsBefore = tf.memory().numTensors;
  const dataBefore = backend.numDataIds();
  for (const simd of [true, false]) {
    setSimdEnabled(simd);
    const actual = await netGrads('wasm', x, params);
    actual.forEach((g, i) => assert.ok(relativeError(g, expected[i]!) <= TOLERANCE, `gradient ${i} simd=${simd}`));
  }
  setSimdEnabled(true);
  assert.equal(tf.memory().numTensors, tensorsBefore);
  assert.equal(backend.numDataIds(), dataBefore, 'wasm heap tensors leaked by a kernel');
});

test('matrix products on wasm match cpu in every transpose combination, with b new or used before, and free what they make', async () => {
  const rng = new Rng(11);
  const backend = tf.engine().findBackend('wasm') as unknown as { numDataIds(): number };
  const dataBefore = backend.numDataIds();
  // While b is new (with transposeB always): [32,512] x [512,1024], [32,576] x [576,64] and [8,12] x [12,40]
  // run in gemm_tn (at most 128 rows, every side a multiple of 4); [160,64] x [64,1024] takes the swapped
  // product (much wider than a has rows); the others, and a b used before, the plain one.
  for (const [m, k, n] of [[32, 512, 1024], [32, 576, 64], [8, 12, 40], [160, 64, 1024], [3, 5, 30], [2, 6, 4]] as const) {
    for (const [transposeA, transposeB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const a = randomData(rng, transposeA ? [k, m] : [m, k]);
      const b = randomData(rng, transposeB ? [n, k] : [k, n]);
      const attrs = { transposeA, transposeB };
      const expected = await runOn('cpu', 'BatchMatMul', { a, b }, attrs);
      const [ta, tb] = [tf.tensor(a.values, a.shape), tf.tensor(b.values, b.shape)];
      for (const use of ['new b', 'b used before']) {
        const out = tf.engine().runKernel('BatchMatMul', { a: ta, b: tb }, attrs) as tf.Tensor;
        const actual = { shape: out.shape, values: out.dataSync() as Float32Array };
        out.dispose();
        assert.ok(relativeError(actual, expected) <= TOLERANCE, `[${m},${k}]x[${k},${n}] transposeA=${transposeA} transposeB=${transposeB}, ${use}`);
      }
      tf.dispose([ta, tb]);
    }
  }
  assert.equal(backend.numDataIds(), dataBefore, 'wasm heap tensors leaked by BatchMatMul');
});

test('Transpose of the last two axes on wasm (own 4x4 blocks where the sides allow) is exact', async () => {
  const rng = new Rng(12);
  for (const shape of [[512, 1024], [3, 8, 12], [2, 1, 4, 4], [5, 7], [4, 6]]) {
    const perm = shape.map((_, i) => i);
    [perm[shape.length - 2], perm[shape.length - 1]] = [shape.length - 1, shape.length - 2];
    const x = randomData(rng, shape);
    const expected = await runOn('cpu', 'Transpose', { x }, { perm });
    const actual = await runOn('wasm', 'Transpose', { x }, { perm });
    assert.deepEqual(actual, expected, `shape ${shape}`);
  }
});

test('Slice on wasm (copied on the heap) has the gradient of the cpu Slice, a full-size slice included, and leaks nothing', async () => {
  const rng = new Rng(13);
  const x = randomData(rng, [2, 5, 6, 4]);
  for (const [begin, size] of [[[0, 0, 0, 0], [-1, -1, -1, -1]], [[0, 0, 0, 0], [-1, 4, 5, -1]], [[1, 1, 2, 0], [1, 3, 3, 4]]]) {
    const gradient = async (backend: string) => {
      await tf.setBackend(backend);
      const input = tf.tensor(x.values, x.shape);
      const before = tf.memory().numTensors;
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.slice(t, begin!, size!))))(input);
      const values = dx.dataSync().slice();
      tf.dispose(dx);
      assert.equal(tf.memory().numTensors, before, `tensors leaked on ${backend}`);
      tf.dispose(input);
      return values;
    };
    assert.deepEqual(await gradient('wasm'), await gradient('cpu'), `slice ${begin} ${size}`);
  }
  await tf.setBackend('wasm');
});

test("Sum's training gradient (no JavaScript-filled ones) equals tfjs's own, for whole and partial reductions", async () => {
  const rng = new Rng(13);
  const x = randomData(rng, [6, 8, 4]);
  const gradsOf = (axis: number[] | undefined) => {
    const t = tf.tensor(x.values, x.shape);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.square(v), tf.sum(v, axis, true))))(t);
    const values = g.dataSync() as Float32Array;
    tf.dispose([t, g]);
    return { shape: x.shape, values };
  };
  for (const axis of [undefined, [0], [1, 2]]) {
    const stock = gradsOf(axis);
    const patched = await withTlKernels(async () => gradsOf(axis));
    assert.ok(relativeError(patched, stock) <= 1e-6, `axis ${axis}`);
  }
});

test('FusedAdamOptimizer follows tfjs AdamOptimizer step for step and keeps the same state', async () => {
  const rng = new Rng(4);
  const init = [randomData(rng, [3, 3, 2, 5]), randomData(rng, [7])];
  const grads = Array.from({ length: 4 }, () => init.map((d) => randomData(rng, d.shape)));
  const run = async (optimizer: tf.Optimizer) => {
    const vars = init.map((d, i) => tf.variable(tf.tensor(d.values, d.shape), true, `adam-test-${optimizer.constructor.name}-${i}`));
    for (const step of grads) {
      const named = Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(step[i]!.values, step[i]!.shape)]));
      optimizer.applyGradients(named);
      tf.dispose(Object.values(named));
    }
    const values = vars.map((v) => ({ shape: v.shape, values: v.dataSync() as Float32Array }));
    const state = (await optimizer.getWeights()).map((w) => w.name.replace(/adam-test-\w+-/, ''));
    tf.dispose(vars);
    optimizer.dispose();
    return { values, state };
  };
  const stock = await run(tf.train.adam(0.01));
  const fused = await run(new FusedAdamOptimizer(0.01, 0.9, 0.999));
  fused.values.forEach((v, i) => assert.ok(relativeError(v, stock.values[i]!) <= 1e-6, `variable ${i}`));
  assert.deepEqual(fused.state, stock.state);
});

test('sparseCrossEntropy has the value and gradient of the graph-op cross-entropy, clipping included, and counts top-1 hits', () => {
  const rng = new Rng(6);
  const logits = randomData(rng, [9, 5]);
  logits.values.forEach((v, i) => (logits.values[i] = v * (i % 3 === 0 ? 30 : 3))); // some probabilities clip
  const probs = tf.softmax(tf.tensor2d(logits.values, [9, 5]));
  const labels = tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2, 3], 'int32');
  const stock = tf.valueAndGrad((p: tf.Tensor) => referenceCrossEntropy(p, labels))(probs);
  let correct = -1;
  const fused = tf.valueAndGrad((p: tf.Tensor) => {
    const scored = sparseCrossEntropy(p, labels);
    correct = scored.correct;
    return scored.loss;
  })(probs);
  assert.ok(Math.abs(fused.value.dataSync()[0]! - stock.value.dataSync()[0]!) <= 1e-6 * Math.abs(stock.value.dataSync()[0]!));
  const g = (t: tf.Tensor) => ({ shape: t.shape, values: t.dataSync() as Float32Array });
  assert.ok(relativeError(g(fused.grad), g(stock.grad)) <= 1e-6);
  const expectedCorrect = tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), labels), 'int32')).dataSync()[0];
  assert.equal(correct, expectedCorrect);
  tf.dispose([probs, labels, stock.value, stock.grad, fused.value, fused.grad]);
});

test('unsupported cases fail with one clear line', async () => {
  const dy = tf.zeros([1, 2, 3, 3]);
  const filter = tf.zeros([2, 2, 2, 3]);
  assert.throws(
    () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { inputShape: [1, 2, 3, 3], strides: 1, pad: 'valid', dataFormat: 'NCHW' } as unknown as tf.NamedAttrMap),
    (err: Error) => /wasm Conv2DBackpropInput: dataFormat NCHW is not supported; use NHWC/.test(err.message) && !err.message.includes('\n'),
  );
  tf.dispose([dy, filter]);
});

test('the committed SIMD binary is simd.wat compiled (rebuild: npx tsx src/runtime/wasm-kernels/build-simd.ts)', async (t) => {
  const { compileSimd } = await import('../src/runtime/wasm-kernels/build-simd.js');
  let local: Uint8Array;
  try {
    local = await compileSimd('local');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return t.skip('wabt (devDependency) not installed');
    throw err;
  }
  assert.equal(Buffer.from(local).toString('base64'), SIMD_WASM_BASE64.local);
  assert.equal(Buffer.from(await compileSimd('shared')).toString('base64'), SIMD_WASM_BASE64.shared);
});

test('the threaded wasm backend starts in Node and computes the same gradients', async () => {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    import { useThreadedWasm } from './src/runtime/wasm-kernels/threads.ts';
    import { initBackend } from './src/runtime/backend.ts';
    import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
    useThreadedWasm(2);
    await initBackend('wasm');
    const x = tf.tensor4d(Array.from({ length: 2 * 9 * 9 * 4 }, (_, i) => Math.sin(i)), [2, 9, 9, 4]);
    const w = tf.tensor4d(Array.from({ length: 3 * 3 * 4 * 8 }, (_, i) => Math.cos(i)), [3, 3, 4, 8]);
    const g = tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a, b, 2, 'same'))))([x, w]);
    console.log(JSON.stringify({ threads: getThreadsCount(), grads: g.map((t) => Array.from(t.dataSync())) }));
  `;
  // A file, not -e: the pool's worker threads inherit the parent's execArgv.
  const file = path.join(repoRoot, `.threads-test-${process.pid}.ts`);
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  rmSync(file, { force: true });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { threads: number; grads: number[][] };
  assert.equal(out.threads, 2);
  await tf.setBackend('cpu');
  const x = tf.tensor4d(Array.from({ length: 2 * 9 * 9 * 4 }, (_, i) => Math.sin(i)), [2, 9, 9, 4]);
  const w = tf.tensor4d(Array.from({ length: 3 * 3 * 4 * 8 }, (_, i) => Math.cos(i)), [3, 3, 4, 8]);
  const expected = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([x, w]);
  expected.forEach((e, i) => {
    const values = e.dataSync() as Float32Array;
    assert.ok(relativeError({ shape: e.shape, values: Float32Array.from(out.grads[i]!) }, { shape: e.shape, values }) <= TOLERANCE);
  });
  tf.dispose([x, w, ...expected]);
  await tf.setBackend('wasm');
});

test("with 2 threads, the kernels that split their images over the SIMD pool's helper thread match cpu, and XNNPACK's pool spins briefly", async () => {
  // The gradients of a seed-CNN-sized step, each through a kernel whose work the pool splits: dW by
  // im2col + gemm_tn (3x3) and gemm_tn alone (1x1, split by rows), dx's col2im, the 2x2 MaxPoolGrad,
  // and the fused one-channel conv + ReLU + pool block with its gradient.
  const script = `
    import * as tf from '@tensorflow/tfjs';
    import { useThreadedWasm } from './src/runtime/wasm-kernels/threads.ts';
    import { initBackend } from './src/runtime/backend.ts';
    import { CONV_RELU_POOL } from './src/runtime/wasm-kernels/index.ts';
    import { simdPoolFor } from './src/runtime/wasm-kernels/simd.ts';
    import { withTlKernels } from './src/runtime/patches.ts';
    useThreadedWasm(2);
    await initBackend('wasm');
    const seeded = (shape, k) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * k)), shape);
    const out = await withTlKernels(async () => {
      const x = seeded([9, 13, 13, 32], 0.7), w = seeded([3, 3, 32, 64], 1.3), p = seeded([9, 13, 13, 16], 0.3);
      const conv = tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a, b, 1, 'valid'))))([x, w]);
      const pointwise = tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a, b, 1, 'valid'))))([x, seeded([1, 1, 32, 16], 0.9)]);
      const pool = tf.grad((a) => tf.sum(tf.square(tf.maxPool(a, 2, 2, 'valid'))))(p);
      const img = seeded([9, 28, 28, 1], 0.11), f = seeded([3, 3, 1, 8], 0.5), bias = seeded([8], 2.1);
      const block = tf.grads((a, b, c) => tf.sum(tf.square(tf.engine().runKernel(CONV_RELU_POOL, { x: a, filter: b, bias: c }, { pad: 'valid' })[0])))([img, f, bias]);
      return [...conv, ...pointwise, pool, ...block.slice(1)].map((t) => Array.from(t.dataSync()));
    });
    console.log(JSON.stringify({ threads: simdPoolFor(tf.backend()).threads, out }));
  `;
  const file = path.join(repoRoot, `.threads-pool-test-${process.pid}.ts`);
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  rmSync(file, { force: true });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { threads: number; out: number[][] };
  assert.equal(got.threads, 2);
  await tf.setBackend('cpu');
  const seeded = (shape: number[], k: number) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * k)), shape);
  const expected = tf.tidy(() => {
    const x = seeded([9, 13, 13, 32], 0.7), w = seeded([3, 3, 32, 64], 1.3), p = seeded([9, 13, 13, 16], 0.3);
    const squaredConv = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid')));
    const conv = tf.grads(squaredConv)([x, w]);
    const pointwise = tf.grads(squaredConv)([x, seeded([1, 1, 32, 16], 0.9)]);
    const pool = tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid'))))(p);
    const img = seeded([9, 28, 28, 1], 0.11), f = seeded([3, 3, 1, 8], 0.5), bias = seeded([8], 2.1);
    const block = tf.grads((b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.square(tf.maxPool(tf.relu(tf.add(tf.conv2d(img as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid'), c)), 2, 2, 'valid'))))([f, bias]);
    return [...conv, ...pointwise, pool, ...block].map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
  });
  await tf.setBackend('wasm');
  assert.equal(got.out.length, expected.length);
  expected.forEach((e, i) => {
    const err = relativeError({ shape: e.shape, values: Float32Array.from(got.out[i]!) }, e);
    assert.ok(err <= TOLERANCE, `gradient ${i}: relative error ${err}`);
  });
  // tfjs's threaded build as loaded: its three pthreadpool spin loops count 1,000, not 1,000,000.
  const wasmFile = path.join(repoRoot, 'node_modules/@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.wasm');
  const stock = new Uint8Array(readFileSync(wasmFile));
  const patched = shortSpinBinary(stock);
  const spins = (bytes: Uint8Array, leb: number[]) => bytes.reduce((n, b, i) => n + (b === 0x41 && leb.every((v, j) => bytes[i + 1 + j] === v) ? 1 : 0), 0);
  assert.equal(spins(stock, [0xc0, 0x84, 0x3d]), 3);
  assert.equal(spins(patched, [0xc0, 0x84, 0x3d]), 0);
  assert.equal(spins(patched, [0xe8, 0x87, 0x00]), 3);
  assert.ok(WebAssembly.validate(patched));
});
