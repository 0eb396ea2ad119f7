import type * as tf from '@tensorflow/tfjs';
import type { ConvGeometry } from './input-gradient.js';
import type { KernelScope } from './scope.js';
import { partials } from './partials.js';
import { reductionShares, runShares, runSplit, runTask, type Share, type SimdPool, type SimdTask } from './pool.js';
import { heapPtr, type SimdKernels, simdPoolFor } from './simd.js';

type TensorInfo = tf.TensorInfo;

/**
 * Conv2D's dx as one XNNPACK matrix product, dy . W^T, scattered back by simd.wat's col2im. Unlike
 * the convolution form it does no work on padding or on the zeros between strided outputs, and
 * XNNPACK packs only the small W^T. (dW the same way measured slower: XNNPACK would pack the large
 * fresh operand, dy or the patches, with a transposing copy.) The patch matrix is made for a few
 * images at a time so it stays under ~32 MB however large the layer.
 */
const MAX_PATCH_FLOATS = 8 << 20;

interface Chunk {
  first: number;
  count: number;
}

function chunks(batch: number, floatsPerImage: number): Chunk[] {
  const per = Math.max(1, Math.floor(MAX_PATCH_FLOATS / floatsPerImage));
  const out: Chunk[] = [];
  for (let first = 0; first < batch; first += per) out.push({ first, count: Math.min(per, batch - first) });
  return out;
}

/** Rows [first, first+count) of images of `t` as a [1, rows, channels] matrix. */
function imageRows(s: KernelScope, t: TensorInfo, chunk: Chunk): TensorInfo {
  const [batch, h, w, c] = t.shape as [number, number, number, number];
  const part = chunk.count === batch ? t : s.slice(t, [chunk.first, 0, 0, 0], [chunk.count, h, w, c]);
  return s.reshape(part, [1, chunk.count * h * w, c]);
}

/** Scatter-adds the chunk's patch gradients into dx, each thread of the pool taking a share of its images. */
function col2im(pool: SimdPool, x: number, cols: number, g: ConvGeometry, chunk: Chunk, channels: number): void {
  const { rows: r, cols: c } = g;
  const imageBytes = r.inSize * c.inSize * channels * 4;
  const rowBytes = r.outSize * c.outSize * r.kernel * c.kernel * channels * 4;
  runSplit(pool, chunk.count, (images) => [{
    kernel: 'col2im',
    args: [
      x + (chunk.first + images.first) * imageBytes, cols + images.first * rowBytes, images.count, r.inSize, c.inSize, channels,
      r.outSize, c.outSize, r.kernel, c.kernel, r.stride, c.stride, r.dilation, c.dilation, r.padBefore, c.padBefore,
    ],
  }]);
}

/** dx = col2im(dy . W^T), W as [KH*KW*Ci, Co]. */
export function inputGradGemm(s: KernelScope, simd: SimdKernels, dy: TensorInfo, filter: TensorInfo, g: ConvGeometry): TensorInfo {
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  const k = kh * kw * ci;
  const wT = s.reshape(s.transpose(s.reshape(filter, [k, co]), [1, 0]), [1, co, k]);
  const dx = s.alloc([g.batch, g.rows.inSize, g.cols.inSize, ci]);
  for (const chunk of chunks(g.batch, g.rows.outSize * g.cols.outSize * k)) {
    s.within(() => {
      const patchGrads = s.matMul(imageRows(s, dy, chunk), wT);
      col2im(simdPoolFor(s.backend)!, heapPtr(s.backend, dx), heapPtr(s.backend, patchGrads), g, chunk, ci);
    });
  }
  return dx;
}

/** im2col's and im2col_t's arguments before the image range: x, the output and the geometry. */
function patchArgs(x: number, out: number, g: ConvGeometry, filterShape: number[]): number[] {
  const [kh, kw, ci] = filterShape as [number, number, number, number];
  const { rows: r, cols: c } = g;
  return [x, out, ci, r.inSize, c.inSize, r.outSize, c.outSize, kh, kw, r.stride, c.stride, r.dilation, c.dilation, r.padBefore, c.padBefore];
}

/**
 * dW = P^T . dy as XNNPACK matrix products: P^T is the transposed patch matrix [KH*KW*Ci, B*OH*OW]
 * written by simd.wat's im2col_t straight from NHWC x, with rows already in the filter's
 * (kh, kw, ci) order and columns in dy's (b, oh, ow) row order, so neither operand needs a
 * transpose. (XNNPACK's convolution form of dW, dy as a huge filter, measured ~1.5x slower.)
 * A few images at a time keep P^T under ~32 MB; the chunks' products are summed.
 */
export function filterGradGemm(s: KernelScope, simd: SimdKernels, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  const [kh, kw, ci] = filterShape as [number, number, number, number];
  const { rows: r, cols: c } = g;
  const k = kh * kw * ci;
  const pixels = r.outSize * c.outSize;
  let dw: TensorInfo | undefined;
  for (const chunk of chunks(g.batch, pixels * k)) {
    const columns = chunk.count * pixels;
    const patches = s.alloc([1, k, columns]);
    runTask(simd, [{ kernel: 'im2col_t', args: [...patchArgs(heapPtr(s.backend, x), heapPtr(s.backend, patches), g, filterShape), chunk.first, chunk.first + chunk.count] }]);
    const part = s.matMul(patches, imageRows(s, dy, chunk));
    dw = dw ? s.run('Add', { a: dw, b: part }) : part;
  }
  return s.reshape(dw!, filterShape);
}

/**
 * Whether a convolution's dW = P^T . dy (P the patch matrix [B*OH*OW, K], K = KH*KW*Ci) is faster
 * in simd.wat's gemm_tn than as an XNNPACK product, in ns per element of dy ([B*OH*OW, Co]):
 * - XNNPACK multiplies at ~14 GMAC/s a thread (K / (14 T)), after packing dy on one thread: 5-18 ns
 *   a float inside a training step, so 8 here (a lone product in a micro-benchmark packs at ~1 ns
 *   and misleads); its transposed patch matrix (im2col_t, a scatter) costs ~1 ns more a patch value
 *   than gemm_tn's row-major one (K / Co per element of dy), and a 1x1 filter at stride 1 needs none.
 * - gemm_tn packs nothing and multiplies at ~13 GMAC/s on each of the SIMD pool's threads, as many
 *   as XNNPACK's (K / (13 T)).
 * Products under 16M multiply-adds go to gemm_tn as well: XNNPACK's threads cost more than they
 * save there (the seed CNN's last conv: 1.9 ms on 2 threads, 0.8 on 1).
 * Measured in training steps on 2 threads: MobileNet 1.0 at 75x75, 32 -> 64: 29 vs 138-161 ms;
 * 37x37, 128 -> 128: 65 vs 117-130 ms; level at 256 channels; 9x9, 512 -> 512: 55 vs 30-37 ms (XNNPACK
 * kept); the seed CNN's 13x13, 32 -> 64 3x3 conv: 4.5-4.9 vs 6.3 ms.
 */
export function filterGradTnFits(g: ConvGeometry, filterShape: number[]): boolean {
  const [kh, kw, ci, co] = filterShape as [number, number, number, number];
  const k = kh * kw * ci;
  const macs = g.batch * g.rows.outSize * g.cols.outSize * k * co;
  // Compared as on one thread, where XNNPACK's faster loop weighs most against its packing, so the
  // choice (and with it the rounding of dW) is the same on any thread count; on more threads
  // gemm_tn would win a few more of the largest layers, by a few per cent.
  const ours = k / 13;
  const theirs = k / 14 + 8 + (isPointwise(g, filterShape) ? 0 : k / co);
  return ci % 4 === 0 && co % 4 === 0 && (ours < theirs || macs < 16e6);
}

/** Whether x is its own patch matrix: a 1x1 filter at stride 1 without padding. */
function isPointwise(g: ConvGeometry, filterShape: number[]): boolean {
  const { rows: r, cols: c } = g;
  return filterShape[0] === 1 && filterShape[1] === 1 && r.stride === 1 && c.stride === 1 && r.padBefore === 0 && c.padBefore === 0 && r.inSize === r.outSize && c.inSize === c.outSize;
}

/**
 * dW = P^T . dy by gemm_tn, the patch matrix made (by im2col) a few images at a time unless x is
 * one. The rows (images) are split into the reduction's fixed shares (pool.ts `reductionShares`),
 * patches and product alike, each into a dW of its own that the pool's threads fill at once; one
 * pass then sums them.
 */
export function filterGradTn(s: KernelScope, simd: SimdKernels, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  const [kh, kw, ci, co] = filterShape as [number, number, number, number];
  const { rows: r, cols: c } = g;
  const k = kh * kw * ci;
  const pixels = r.outSize * c.outSize;
  const pool = simdPoolFor(s.backend)!;
  const dw = s.alloc(filterShape);
  const xPtr = heapPtr(s.backend, x);
  const dyPtr = heapPtr(s.backend, dy);
  if (isPointwise(g, filterShape)) {
    const sums = partials(s, simd, g.batch * pixels, dw);
    runShares(pool, g.batch * pixels, (rows, part) => [
      { kernel: 'gemm_tn', args: [xPtr + rows.first * ci * 4, dyPtr + rows.first * co * 4, sums.at(part), rows.count, ci, co, 0] },
    ]);
    sums.sum();
    return dw;
  }
  const sums = partials(s, simd, g.batch, dw);
  const shares = reductionShares(g.batch);
  for (const chunk of chunks(g.batch, pixels * k)) {
    s.within(() => {
      const patches = heapPtr(s.backend, s.alloc([chunk.count * pixels, k]));
      const tasks = shares.flatMap((share, part) => {
        const images = overlap(share, chunk);
        if (images.count === 0) return [];
        const rows = patches + (images.first - chunk.first) * pixels * k * 4;
        return [[
          { kernel: 'im2col', args: [...patchArgs(xPtr, rows, g, filterShape), images.first, images.first + images.count] },
          { kernel: 'gemm_tn', args: [rows, dyPtr + images.first * pixels * co * 4, sums.at(part), images.count * pixels, k, co, 0] },
        ] satisfies SimdTask];
      });
      pool.run(tasks);
    });
  }
  sums.sum();
  return dw;
}

/** The items two ranges share (count 0 if none). */
function overlap(a: Share, b: Share): Share {
  const first = Math.max(a.first, b.first);
  return { first, count: Math.max(0, Math.min(a.first + a.count, b.first + b.count) - first) };
}
