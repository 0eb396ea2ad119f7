import * as tf from '@tensorflow/tfjs';
import { hasFusedConvGradient } from '../runtime/wasm-kernels/index.js';

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

/** Run `fn` with every BatchNormalization layer forced into inference mode. */
export function withBatchNormInference<T>(model: tf.LayersModel, fn: () => Promise<T>): Promise<T> {
  return withPatchedCalls(
    model,
    (layer, original) =>
      layer.getClassName() === 'BatchNormalization' ? (inputs, kwargs) => original.call(layer, inputs, { ...kwargs, training: false }) : undefined,
    fn,
  );
}

/** The parts of a tfjs-layers Conv2D the fused kernel needs. */
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
  const plain = conv.rank === 2 && conv.dataFormat === 'channelsLast' && conv.padding !== 'causal' && conv.dilationRate.every((d) => d === 1);
  return plain && (activation === 'relu' || activation === 'linear') ? activation : undefined;
}

/**
 * Run `fn` with every Conv2D layer whose activation is ReLU or none computed as ONE FusedConv2D
 * kernel (convolution, bias and ReLU) with a gradient of its own (src/runtime/wasm-kernels/
 * fused-conv-grad.ts). tfjs-layers asks for the same fused op, but tfjs splits it into Conv2D, Add
 * and Relu whenever a gradient is recorded: two more full passes over every feature map forward,
 * two backward. Same arithmetic; only where the backend has the fused gradient kernel (wasm).
 */
export function withFusedConvolutions<T>(model: tf.LayersModel, fn: () => Promise<T>): Promise<T> {
  if (!hasFusedConvGradient()) return fn();
  return withPatchedCalls(
    model,
    (layer) => {
      const activation = fusableActivation(layer);
      if (!activation) return undefined;
      const conv = layer as unknown as Conv2DLayer;
      const attrs = { strides: conv.strides, pad: conv.padding, dataFormat: 'NHWC', dilations: conv.dilationRate, activation };
      return (inputs) =>
        tf.tidy(() => {
          const x = Array.isArray(inputs) ? inputs[0]! : inputs;
          const bias = conv.bias?.read();
          return tf.engine().runKernel(tf.FusedConv2D, { x, filter: conv.kernel.read(), ...(bias ? { bias } : {}) }, attrs) as tf.Tensor;
        });
    },
    fn,
  );
}
