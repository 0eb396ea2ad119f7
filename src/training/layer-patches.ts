import tf from '../runtime/tf.cjs';
import type { Rng } from '../util/rng.js';
import { withTlKernels } from '../runtime/patches.js';
import { affineReluSupports, batchNormRelu, CONV_RELU_POOL, convReluPoolSupports, fusedConvSupports, hasFusedConvGradient } from '../runtime/wasm-kernels/index.js';
import { reluCap, soleConsumer, soleInput, validPool2D } from '../models/graph-patterns.js';

type LayerWithChildren = tf.layers.Layer & { layers?: tf.layers.Layer[] };
type LayerCall = tf.layers.Layer['call'];

function allLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const out: tf.layers.Layer[] = [];
  const visit = (layer: LayerWithChildren) => {
    out.push(layer);
    for (const child of layer.layers ?? []) visit(child as LayerWithChildren);
  };
  for (const layer of model.layers) visit(layer as LayerWithChildren);
  return out;
}

/**
 * Runs `fn` with `call` of every layer `patch` has a replacement for swapped out (patch gets the
 * original call), and puts the originals back afterwards, however `fn` ends.
 */
async function withPatchedCalls<T>(model: tf.LayersModel, patch: (layer: tf.layers.Layer, original: LayerCall) => LayerCall | undefined, fn: () => Promise<T>): Promise<T> {
  const patched: Array<[tf.layers.Layer, LayerCall]> = [];
  for (const layer of allLayers(model)) {
    const replacement = patch(layer, layer.call);
    if (!replacement) continue;
    patched.push([layer, layer.call]);
    layer.call = replacement;
  }
  try {
    return await fn();
  } finally {
    for (const [layer, original] of patched) layer.call = original;
  }
}

/** The parts of a tfjs-layers BatchNormalization the fused BN -> ReLU op needs. */
interface BatchNormLayer {
  axis: number;
  epsilon: number;
  scale: boolean;
  center: boolean;
  gamma: { read(): tf.Tensor };
  beta: { read(): tf.Tensor };
  movingMean: { read(): tf.Tensor };
  movingVariance: { read(): tf.Tensor };
}

/** The rectifier that alone consumes BatchNormalization `layer`, and its cap, when the fused BN -> ReLU op can run the pair. */
function reluAfterBatchNorm(layer: tf.layers.Layer): { relu: tf.layers.Layer; maxValue: number } | undefined {
  if (layer.getClassName() !== 'BatchNormalization') return undefined;
  const bn = layer as unknown as BatchNormLayer;
  const rank = soleInput(layer)?.shape.length ?? 0;
  const relu = soleConsumer(layer);
  const maxValue = relu && reluCap(relu);
  const channelsLast = bn.axis === -1 || bn.axis === rank - 1;
  return relu && maxValue !== undefined && affineReluSupports({ scale: bn.scale, center: bn.center, channelsLast }, maxValue) ? { relu, maxValue } : undefined;
}

/** The BN layer's call as the one fused BN(frozen statistics) -> ReLU op. */
function batchNormReluCall(layer: tf.layers.Layer, maxValue: number): LayerCall {
  const bn = layer as unknown as BatchNormLayer;
  return (inputs) => {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const stats = { mean: bn.movingMean.read() as tf.Tensor1D, variance: bn.movingVariance.read() as tf.Tensor1D, epsilon: bn.epsilon };
    return batchNormRelu(x, bn.gamma.read() as tf.Tensor1D, bn.beta.read() as tf.Tensor1D, stats, maxValue);
  };
}

/**
 * Run `fn` with every BatchNormalization layer forced into inference mode. Where the backend has
 * the fused kernels (wasm), a BN layer whose only consumer is a ReLU layer runs with it as one op
 * (src/runtime/wasm-kernels/affine-relu.ts) and the ReLU layer passes its input through.
 */
export function withBatchNormInference<T>(model: tf.LayersModel, fn: () => Promise<T>): Promise<T> {
  const absorbedRelus = new Set<tf.layers.Layer>();
  return withPatchedCalls(
    model,
    (layer, original) => {
      if (absorbedRelus.has(layer)) return (inputs) => (Array.isArray(inputs) ? inputs[0]! : inputs);
      if (layer.getClassName() !== 'BatchNormalization') return undefined;
      const fused = reluAfterBatchNorm(layer);
      if (!fused) return (inputs, kwargs) => original.call(layer, inputs, { ...kwargs, training: false });
      absorbedRelus.add(fused.relu);
      return batchNormReluCall(layer, fused.maxValue);
    },
    fn,
  );
}

/**
 * Run `fn` with every Dropout layer drawing each mask from `rng`. A tfjs Dropout without a seed
 * takes one from Math.random (unseeded, and a global a library must not replace); with a fixed
 * seed it draws the same mask at every step. Here each call gets the next seed of the run's own
 * generator, so masks vary per step and a run (or a resumed one) is reproducible from its seed.
 */
export function withSeededDropout<T>(model: tf.LayersModel, rng: Rng, fn: () => Promise<T>): Promise<T> {
  const seeds = new Map<tf.layers.Layer, unknown>();
  return withPatchedCalls(
    model,
    (layer, original) => {
      if (layer.getClassName() !== 'Dropout') return undefined;
      const seeded = layer as unknown as { seed?: number };
      seeds.set(layer, seeded.seed);
      return (inputs, kwargs) => {
        seeded.seed = rng.int(2 ** 31 - 1);
        return original.call(layer, inputs, kwargs);
      };
    },
    fn,
  ).finally(() => {
    for (const [layer, seed] of seeds) (layer as unknown as { seed?: unknown }).seed = seed;
  });
}

/** The parts of a tfjs-layers L1L2 regularizer (what tf.regularizers.l2 makes) the L2 patch reads. */
interface L1L2Regularizer {
  l1: number;
  l2: number;
  getClassName(): string;
  apply(x: tf.Tensor): tf.Scalar;
}

/**
 * l2 * sum(x^2), whose gradient is the one product 2 * l2 * x. tfjs's L1L2 computes sum(l2 * x * x),
 * so the tape takes the penalty and its gradient through seven full-size ops (a broadcast of the
 * sum's gradient, three products, an add): for the head's 512x1024 kernel, a quarter of a step.
 */
function l2Penalty(l2: number): (x: tf.Tensor) => tf.Scalar {
  // customGrad's inputs are typed as tensors or the save function alike; here they are (x, save).
  const penalty = ((x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x]);
    return {
      value: tf.mul(tf.sum(tf.square(x)), l2) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => tf.mul(saved!, tf.mul(dy, 2 * l2)),
    };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Scalar>>[0];
  return tf.customGrad(penalty) as (x: tf.Tensor) => tf.Scalar;
}

/**
 * Run `fn` with every pure-L2 kernel regularizer of `model` computing its penalty as l2Penalty does:
 * the same penalty up to float rounding, and the saved model still names the stock L1L2. A layer's
 * regularizer loss calls `regularizer.apply` when the loss is computed, so shadowing `apply` on the
 * instance for the duration of `fn` is enough.
 */
export async function withFastL2<T>(model: tf.LayersModel, fn: () => Promise<T>): Promise<T> {
  const patched = new Set<L1L2Regularizer>();
  try {
    for (const layer of allLayers(model)) {
      const regularizer = (layer as unknown as { kernelRegularizer?: L1L2Regularizer }).kernelRegularizer;
      // An `apply` of the instance's own is someone else's patch (or a fit already running on a model sharing it): left alone.
      if (!regularizer || Object.hasOwn(regularizer, 'apply') || regularizer.getClassName() !== 'L1L2' || regularizer.l1 !== 0 || regularizer.l2 === 0) continue;
      Object.defineProperty(regularizer, 'apply', { value: l2Penalty(regularizer.l2), configurable: true, writable: true });
      patched.add(regularizer);
    }
    return await fn();
  } finally {
    for (const regularizer of patched) delete (regularizer as Partial<L1L2Regularizer>).apply;
  }
}

/** The parts of a tfjs-layers Conv2D the fused kernels need. */
interface Conv2DLayer {
  rank: number;
  strides: number[];
  padding: 'valid' | 'same' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: number[];
  activation: { getClassName(): string };
  kernel: { read(): tf.Tensor };
  bias?: { read(): tf.Tensor } | null;
}

/** The fused kernel's activation for a Conv2D layer it can run, else undefined. */
function fusableActivation(layer: tf.layers.Layer): 'relu' | 'linear' | undefined {
  if (layer.getClassName() !== 'Conv2D') return undefined;
  const conv = layer as unknown as Conv2DLayer;
  const activation = conv.activation.getClassName();
  return fusedConvSupports({ ...conv, activation }) ? (activation as 'relu' | 'linear') : undefined;
}

/**
 * The MaxPooling2D(2) that alone consumes `layer`, when `layer` is a ReLU 3x3 stride-1 Conv2D of the
 * model's one-channel input: the block CONV_RELU_POOL runs whole. (The model input never needs a
 * gradient, so the block's dense pre-pool gradient is never built.)
 */
function poolOfFirstBlock(model: tf.LayersModel, layer: tf.layers.Layer): tf.layers.Layer | undefined {
  const activation = fusableActivation(layer);
  const conv = layer as unknown as Conv2DLayer;
  if (!activation || !convReluPoolSupports({ kernelShape: conv.kernel.read().shape, strides: conv.strides, hasBias: !!conv.bias, activation })) return undefined;
  const input = soleInput(layer);
  const pool = soleConsumer(layer);
  if (!input || !pool || !model.inputs.some((t) => t.id === input.id)) return undefined;
  const window = validPool2D(pool);
  const twoByTwo = (v: number[] | undefined) => v?.every((d) => d === 2);
  return pool.getClassName() === 'MaxPooling2D' && twoByTwo(window?.poolSize) && twoByTwo(window?.strides) ? pool : undefined;
}

/**
 * The rows and columns of `layer`'s output that its sole consumer, a 'valid' pooling layer, reads,
 * when that is fewer than the layer makes: over n values a window p with stride s reads only the
 * first (floor((n - p) / s) * s + p). The seed CNN's second convolution makes 11x11 and its pool
 * reads 10x10, so computing only those saves 17% of that layer forward and backward.
 */
function pooledExtent(layer: tf.layers.Layer): [number, number] | undefined {
  const pool = soleConsumer(layer);
  const window = pool && validPool2D(pool);
  const [, rows, cols] = layer.outputShape as number[];
  if (!window || !rows || !cols) return undefined;
  const read = (n: number, p: number, s: number) => (n < p ? n : Math.floor((n - p) / s) * s + p);
  const extent: [number, number] = [read(rows, window.poolSize[0], window.strides[0]), read(cols, window.poolSize[1], window.strides[1])];
  return extent[0] < rows || extent[1] < cols ? extent : undefined;
}

/**
 * `x` cut to the input rows and columns that a convolution's first `extent` outputs read, and the
 * explicit padding that keeps those outputs where they were (dilation 1): the same outputs, from
 * the same products, and gradients that differ only by the zeros the pool would have sent back.
 */
function cropToExtent(x: tf.Tensor4D, filterShape: number[], conv: Conv2DLayer, extent: [number, number]): { x: tf.Tensor4D; pad: tf.Conv2DAttrs['pad'] } {
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape as [number, number, number, number], conv.strides as [number, number], 1, conv.padding as 'valid' | 'same');
  const axis = (size: number, kernel: number, stride: number, padBefore: number, outputs: number) => {
    const reach = (outputs - 1) * stride + kernel - padBefore;
    return { size: Math.min(size, reach), padAfter: Math.max(0, reach - size) };
  };
  const rows = axis(info.inHeight, info.filterHeight, info.strideHeight, info.padInfo.top, extent[0]);
  const cols = axis(info.inWidth, info.filterWidth, info.strideWidth, info.padInfo.left, extent[1]);
  const cropped = rows.size < info.inHeight || cols.size < info.inWidth ? tf.slice(x, [0, 0, 0, 0], [-1, rows.size, cols.size, -1]) : x;
  return { x: cropped, pad: [[0, 0], [info.padInfo.top, rows.padAfter], [info.padInfo.left, cols.padAfter], [0, 0]] };
}

/**
 * The conv layer's call as one kernel: FusedConv2D (on the input its pooling consumer reads, given
 * `extent`), or CONV_RELU_POOL for a first block.
 */
function fusedCall(conv: Conv2DLayer, activation: 'relu' | 'linear', pooled: boolean, extent?: [number, number]): LayerCall {
  const attrs = { strides: conv.strides, pad: conv.padding, dataFormat: 'NHWC', dilations: conv.dilationRate, activation };
  return (inputs) =>
    tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
      const filter = conv.kernel.read();
      const bias = conv.bias?.read();
      if (pooled) return (tf.engine().runKernel(CONV_RELU_POOL, { x, filter, bias: bias! }, { pad: conv.padding }) as tf.Tensor[])[0]!;
      const input = extent ? cropToExtent(x, filter.shape, conv, extent) : { x, pad: attrs.pad };
      return tf.engine().runKernel(tf.FusedConv2D, { x: input.x, filter, ...(bias ? { bias } : {}) }, { ...attrs, pad: input.pad }) as tf.Tensor;
    });
}

/**
 * Run `fn` with every Conv2D layer whose activation is ReLU or none computed as ONE FusedConv2D
 * kernel (convolution, bias and ReLU) with a gradient of its own (src/runtime/wasm-kernels/
 * fused-conv-grad.ts). tfjs-layers asks for the same fused op, but tfjs splits it into Conv2D, Add
 * and Relu whenever a gradient is recorded: two more full passes over every feature map forward,
 * two backward. A grayscale model's first Conv2D(3x3, ReLU) -> MaxPooling2D(2) runs as one block
 * (conv-relu-pool.ts), the pool layer passing its input through; a Conv2D that a 'valid' pool
 * reads only part of computes only that part (pooledExtent). Same arithmetic; only where the
 * backend has the fused gradient kernels (wasm).
 */
export function withFusedConvolutions<T>(model: tf.LayersModel, fn: () => Promise<T>): Promise<T> {
  if (!hasFusedConvGradient()) return fn();
  const absorbedPools = new Set<tf.layers.Layer>();
  // The fused kernels' gradients are registered for as long as the patch stands.
  return withTlKernels(() => withPatchedCalls(
    model,
    (layer) => {
      if (absorbedPools.has(layer)) return (inputs) => (Array.isArray(inputs) ? inputs[0]! : inputs);
      const activation = fusableActivation(layer);
      if (!activation) return undefined;
      const pool = poolOfFirstBlock(model, layer);
      if (pool) absorbedPools.add(pool);
      return fusedCall(layer as unknown as Conv2DLayer, activation, pool !== undefined, pool ? undefined : pooledExtent(layer));
    },
    fn,
  ));
}
