import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { filterGradAxis, phaseTaps } from './geometry.js';
import { type ConvGeometry, type InputGradPlan, convGeometry, inputGradPlan, inputGradient } from './input-gradient.js';
import { type KernelArgs, type KernelScope, scoped } from './scope.js';

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
  const th = plan.rows.taps;
  const tw = plan.cols.taps;
  const taps = phaseTaps(g.rows, g.cols, th, tw);
  const out = s.alloc([th, tw, co, plan.phases * ci]);
  const w = s.view(filter);
  const dst = s.view(out);
  let o = 0;
  for (let t = 0; t < th * tw; t++) {
    for (let c = 0; c < co; c++) {
      for (let p = 0; p < plan.phases; p++) {
        const k = taps[t * plan.phases + p]!;
        if (k < 0) {
          dst.fill(0, o, o + ci);
          o += ci;
          continue;
        }
        const base = k * ci * co + c;
        for (let i = 0; i < ci; i++) dst[o++] = w[base + i * co]!;
      }
    }
  }
  return out;
}

function conv2dBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { inputShape, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  requireNhwc('Conv2DBackpropInput', dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const g = convGeometry(info, dy.shape);
  return scoped(backend as BackendWasm, (s) => {
    const plan = inputGradPlan(g);
    const phaseFilter = conv2dPhaseFilter(s, filter, g, plan);
    return inputGradient(s, dy, g, plan, 'phase-major', (d, p, dilations) => s.conv2d(d, phaseFilter, p, [1, 1], dilations));
  });
}

/**
 * dW[kh,kw,ci,co] = sum over b,oh,ow of x[b, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[b,oh,ow,co]: one
 * convolution with the input channels as batch, the batch as channels and dy as the filter
 * (stride 1, dilation = forward stride), so XNNPACK contracts over B*OH*OW.
 */
function conv2dBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  requireNhwc('Conv2DBackpropFilter', dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const g = convGeometry(info, dy.shape);
  const [kh, kw, ci, co] = filterShape;
  return scoped(backend as BackendWasm, (s) => {
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
