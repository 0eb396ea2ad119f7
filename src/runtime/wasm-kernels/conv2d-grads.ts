import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { filterGradAxis } from './geometry.js';
import { type ConvGeometry, type InputGradPlan, convGeometry, inputGradPlan, inputGradient, nhwcConv2DInfo, phaseFilter } from './input-gradient.js';
import { filterGradGemm, filterGradTn, filterGradTnFits, inputGradGemm } from './conv2d-gemm.js';
import { depthwiseFilterGrad } from './depthwise-grads.js';
import { isOneChannel3x3, oneChannelFilterGrad } from './conv2d-c1.js';
import { type KernelArgs, type KernelScope, scoped } from './scope.js';
import { simdFor } from './simd.js';

type TensorInfo = tf.TensorInfo;

export function requireNhwc(kernel: string, dataFormat: unknown): void {
  if (dataFormat === 'NCHW') {
    throw new Error(`wasm ${kernel}: dataFormat NCHW is not supported; use NHWC (channels last)`);
  }
}

/**
 * Filter of the phase convolution for Conv2D's dx: [tapsRows, tapsCols, outChannels, phases*inChannels],
 * the forward filter flipped, transposed (in <-> out) and split into stride phases.
 */
function conv2dPhaseFilter(s: KernelScope, filter: TensorInfo, g: ConvGeometry, plan: InputGradPlan): TensorInfo {
  const [, , ci, co] = filter.shape as [number, number, number, number];
  const { phases } = plan;
  return phaseFilter(s, filter, g, plan, [co, phases * ci], (dst, w, taps) => {
    let o = 0;
    for (let t = 0; t < plan.rows.taps * plan.cols.taps; t++) {
      for (let c = 0; c < co; c++) {
        for (let p = 0; p < phases; p++) {
          const k = taps[t * phases + p]!;
          const base = k * ci * co + c;
          for (let i = 0; i < ci; i++) dst[o++] = k < 0 ? 0 : w[base + i * co]!;
        }
      }
    }
  });
}

/** Forward geometry of the Conv2D whose gradient a kernel computes (dilation is always 1 here). */
function conv2dInfo(xShape: number[], filterShape: number[], attrs: tf.Conv2DBackpropInputAttrs | tf.Conv2DBackpropFilterAttrs, kernel: string) {
  requireNhwc(kernel, attrs.dataFormat);
  return nhwcConv2DInfo(xShape, filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
}

function conv2dBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const g = convGeometry(conv2dInfo(a.inputShape, filter.shape, a, 'Conv2DBackpropInput'), dy.shape);
  const simd = simdFor(backend as BackendWasm);
  return scoped(backend as BackendWasm, (s) => {
    if (simd) return inputGradGemm(s, simd, dy, filter, g);
    const plan = inputGradPlan(g);
    const phased = conv2dPhaseFilter(s, filter, g, plan);
    return inputGradient(s, dy, g, plan, 'phase-major', (d, p, dilations) => s.conv2d(d, phased, p, [1, 1], dilations));
  });
}

/**
 * dW[kh,kw,ci,co] = sum over b,oh,ow of x[b, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[b,oh,ow,co]: with wasm
 * SIMD either simd.wat's gemm_tn on the row-major patch matrix (x itself for a 1x1 filter) or an
 * XNNPACK product with the transposed one, whichever conv2d-gemm.ts's cost model prefers; without, one
 * convolution with the input channels as batch, the batch as channels and dy as the filter
 * (stride 1, dilation = forward stride), so XNNPACK contracts over B*OH*OW.
 */
function conv2dBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = conv2dInfo(x.shape, filterShape, attrs as unknown as tf.Conv2DBackpropFilterAttrs, 'Conv2DBackpropFilter');
  const g = convGeometry(info, dy.shape);
  const [kh, kw, ci, co] = filterShape;
  const simd = simdFor(backend as BackendWasm);
  return scoped(backend as BackendWasm, (s) => {
    if (simd && isOneChannel3x3(info)) return oneChannelFilterGrad(s, simd, x, dy, info);
    // Other one-channel filters: the depthwise dW loop (multiplier Co) beats the product, whose
    // cost of packing dy does not shrink with the few-row patch matrix.
    if (ci === 1) return depthwiseFilterGrad(s, x, dy, g, filterShape);
    if (simd && filterGradTnFits(g, filterShape)) return filterGradTn(s, simd, x, dy, g, filterShape);
    if (simd) return filterGradGemm(s, simd, x, dy, g, filterShape);
    const rows = filterGradAxis(g.rows);
    const cols = filterGradAxis(g.cols);
    const xT = s.transpose(x, [3, 1, 2, 0]);
    const dyT = s.transpose(dy, [1, 2, 0, 3]);
    const pads = [[0, 0], [g.rows.padBefore, rows.padAfter], [g.cols.padBefore, cols.padAfter], [0, 0]];
    const full = s.conv2d(xT, dyT, pads, [1, 1], [g.rows.stride, g.cols.stride]);
    const cut = s.slice(full, [0, 0, 0, 0], [ci, kh, kw, co]);
    return s.transpose(cut, [1, 2, 0, 3]);
  });
}

export const conv2dGradKernels: tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropInput, backendName: 'wasm', kernelFunc: conv2dBackpropInput as tf.KernelFunc },
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2dBackpropFilter as tf.KernelFunc },
];
