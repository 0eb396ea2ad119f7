import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type KernelScope, scoped, withKernelScope } from './scope.js';
import { heapPtr, simdFor } from './simd.js';
import type { KernelOverride } from './stock.js';

/**
 * The stock wasm BatchMatMul uses XNNPACK only for a plain product of batch 1; with transposeA or
 * transposeB (every Dense layer's backward pass) it runs a scalar loop 10-25x slower than
 * transposing the operand first and multiplying plainly (measured: [256,784]^T x [256,512]
 * 129 ms vs 5.4 ms). So transpose explicitly with the fast Transpose kernel (transpose.ts).
 *
 * XNNPACK also packs b, with a slow transposing copy, the first time each b tensor is used (it
 * keeps one packed operator per b). A Dense layer's kernel is a new tensor after every optimizer
 * step, so in training every forward product packed it again: 4-5 ms of the 5.2 ms that
 * [32,512] x [512,1024] took, against 0.9 ms once packed. When b is new and much wider than a has
 * rows, the product is taken the other way round, C = (op(b)^T op(a)^T)^T, which packs only the
 * small op(a)^T. Against a batch of few rows it is not packed at all (gemmTnFits).
 */
function swapLastTwo(scope: KernelScope, t: tf.TensorInfo): tf.TensorInfo {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [r - 1, r - 2];
  return scope.transpose(t, perm);
}

/**
 * b operands seen before. A b used twice is likely fixed weights (inference), worth packing once
 * and reusing; a kernel in training is a new tensor at every step.
 */
const seenOperands = new WeakSet<object>();

/** A product op(a) op(b) and what the choice of loop depends on, read once per call. */
interface Product {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  /** Rows of op(a), columns of op(b), and the length they are summed over. */
  rows: number;
  cols: number;
  inner: number;
  /** One matrix each (no batch). */
  single: boolean;
  /** op(b) is not a tensor XNNPACK has packed before (always when b is transposed). */
  bIsNew: boolean;
}

/** The product's sizes and operands' history; marks b as seen from then on. */
function describeProduct(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): Product {
  const [a1, a2] = a.shape.slice(-2) as [number, number];
  const [b1, b2] = b.shape.slice(-2) as [number, number];
  const single = (t: tf.TensorInfo) => tf.util.sizeFromShape(t.shape.slice(0, -2)) === 1;
  const bIsNew = transposeB || !seenOperands.has(b.dataId);
  if (!transposeB) seenOperands.add(b.dataId);
  return {
    a, b, transposeA, transposeB,
    rows: transposeA ? a2 : a1,
    cols: transposeB ? b1 : b2,
    inner: transposeA ? a1 : a2,
    single: single(a) && single(b),
    bIsNew,
  };
}

/** Whether packing op(b) would cost more than multiplying the other way round. */
function packsLessSwapped(p: Product): boolean {
  // Only where every transpose takes transpose.ts's 4x4 blocks: the stock one is slower than packing.
  const fastTransposes = p.rows % 4 === 0 && p.cols % 4 === 0 && p.inner % 4 === 0;
  return p.single && fastTransposes && p.bIsNew && p.cols >= 4 * p.rows;
}

/** Multiply-adds up to which a product with a new b runs in gemm_tn (see gemmTnFits). */
const GEMM_TN_MAX_MACS = 4e6;

/**
 * Whether the product runs in simd.wat's gemm_tn (C = A^T B, nothing packed) on the calling
 * thread: one matrix, a new b (a Dense kernel in training, or its transpose in the backward pass),
 * at most 4M multiply-adds (~0.3 ms there), sides multiples of 4. XNNPACK's threads save little on
 * so small a product and it first packs op(b) and transposes what needs it: the seed CNN's three
 * [32,576]-by-[576,64] products of a training step took 0.25-0.73 ms each on 2 threads, 0.1 ms this
 * way. A fixed bound rather than the thread count decides, so the rounding (and the weights a run
 * ends with) is the same on any number of threads.
 */
function gemmTnFits(p: Product): boolean {
  return p.single && p.bIsNew && p.rows * p.cols * p.inner <= GEMM_TN_MAX_MACS && p.rows % 4 === 0 && p.cols % 4 === 0;
}

/** op(a) op(b) as gemm_tn(op(a)^T, op(b)): a transposed unless it already is, b only if it is. */
function productByGemmTn(backend: BackendWasm, p: Product): tf.TensorInfo {
  const simd = simdFor(backend)!;
  return scoped(backend, (scope) => {
    const aT = p.transposeA ? p.a : swapLastTwo(scope, p.a);
    const opB = p.transposeB ? swapLastTwo(scope, p.b) : p.b;
    const c = scope.alloc([...p.a.shape.slice(0, -2), p.rows, p.cols]);
    simd.gemm_tn(heapPtr(backend, aT), heapPtr(backend, opB), heapPtr(backend, c), p.inner, p.rows, p.cols, 1);
    return c;
  });
}

export const batchMatMulOverride: KernelOverride = {
  kernelName: tf.BatchMatMul,
  wrap: (stock) => ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA?: boolean; transposeB?: boolean };
    const p = describeProduct(a, b, !!transposeA, !!transposeB);
    const plain = { ...attrs, transposeA: false, transposeB: false };
    if (simdFor(backend as BackendWasm) && a.dtype === 'float32' && gemmTnFits(p)) return productByGemmTn(backend as BackendWasm, p);
    const swapped = packsLessSwapped(p);
    if (!swapped && !p.transposeA && !p.transposeB) return stock({ inputs, backend, attrs });
    if (swapped) {
      return scoped(backend as BackendWasm, (scope) => {
        const opBT = p.transposeB ? b : swapLastTwo(scope, b);
        const opAT = p.transposeA ? a : swapLastTwo(scope, a);
        return swapLastTwo(scope, scope.adopt(stock({ inputs: { a: opBT, b: opAT }, backend, attrs: plain }) as tf.TensorInfo));
      });
    }
    // The product is the engine's output; only the transposed copies are freed here.
    return withKernelScope(backend as BackendWasm, (scope) =>
      stock({ inputs: { a: p.transposeA ? swapLastTwo(scope, a) : a, b: p.transposeB ? swapLastTwo(scope, b) : b }, backend, attrs: plain }),
    );
  },
};
