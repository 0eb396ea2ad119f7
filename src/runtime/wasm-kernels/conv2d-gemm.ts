import type * as tf from '@tensorflow/tfjs';
import type { ConvGeometry } from './input-gradient.js';
import type { KernelScope } from './scope.js';
import { heapPtr, type SimdKernels } from './simd.js';

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

function col2im(simd: SimdKernels, x: number, cols: number, g: ConvGeometry, chunk: Chunk, channels: number): void {
  const { rows: r, cols: c } = g;
  const imageBytes = r.inSize * c.inSize * channels * 4;
  simd.col2im(
    x + chunk.first * imageBytes, cols, chunk.count, r.inSize, c.inSize, channels, r.outSize, c.outSize,
    r.kernel, c.kernel, r.stride, c.stride, r.dilation, c.dilation, r.padBefore, c.padBefore,
  );
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
      col2im(simd, heapPtr(s.backend, dx), heapPtr(s.backend, patchGrads), g, chunk, ci);
    });
  }
  return dx;
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
    simd.im2col_t(
      heapPtr(s.backend, x), heapPtr(s.backend, patches), ci, r.inSize, c.inSize, r.outSize, c.outSize,
      kh, kw, r.stride, c.stride, r.dilation, c.dilation, r.padBefore, c.padBefore, chunk.first, chunk.first + chunk.count,
    );
    const part = s.matMul(patches, imageRows(s, dy, chunk));
    dw = dw ? s.run('Add', { a: dw, b: part }) : part;
  }
  return s.reshape(dw!, filterShape);
}

/**
 * Whether a 1x1 convolution's dW, x^T . dy with x as [B*H*W, Ci], is faster in simd.wat's gemm_tn
 * than as an XNNPACK product. XNNPACK multiplies at ~14 GMAC/s a thread, but first packs dy,
 * [B*H*W, Co], on one thread: 5-18 ns a float inside a MobileNet 1.0 training step (a lone
 * product in a micro-benchmark packs at ~1 ns and misleads). gemm_tn packs nothing and multiplies
 * at ~13 GMAC/s on one thread. Per layer of that step on 2 threads: 29 vs 138-161 ms at 75x75,
 * 32 -> 64; 65 vs 117-130 ms at 37x37, 128 -> 128; level at 256 channels; 55 vs 30-37 ms at 9x9,
 * 512 -> 512. So gemm_tn when Ci / 13 GMAC/s < Ci / (14 GMAC/s * T) + 8 ns, per element of dW's rows.
 */
export function pointwiseFilterGradFits(g: ConvGeometry, filterShape: number[], threads: number): boolean {
  const [kh, kw, ci, co] = filterShape as [number, number, number, number];
  const { rows: r, cols: c } = g;
  const oneToOne = kh === 1 && kw === 1 && r.stride === 1 && c.stride === 1 && r.padBefore === 0 && c.padBefore === 0 && r.inSize === r.outSize && c.inSize === c.outSize;
  return oneToOne && ci % 4 === 0 && co % 4 === 0 && ci * (14 * threads - 13) < 8 * 13 * 14 * threads;
}

/** dW of a 1x1 convolution at stride 1 without padding: x^T . dy over every pixel, by gemm_tn. */
export function pointwiseFilterGrad(s: KernelScope, simd: SimdKernels, x: TensorInfo, dy: TensorInfo, filterShape: number[]): TensorInfo {
  const [, , ci, co] = filterShape as [number, number, number, number];
  const dw = s.alloc(filterShape);
  simd.gemm_tn(heapPtr(s.backend, x), heapPtr(s.backend, dy), heapPtr(s.backend, dw), x.shape.slice(0, 3).reduce((a, b) => a * b, 1), ci, co, 1);
  return dw;
}
