import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelOverride } from './stock.js';

/**
 * Identity shares the input's memory (one more reference) instead of copying it, as the cpu
 * backend does. Tensors are immutable, and the engine clones every tensor a gradient saves
 * (~40 per training step of the seed CNN, activations included), so the copies add up.
 */
export const identityOverride: KernelOverride = {
  kernelName: tf.Identity,
  wrap: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    return x.dtype === 'string' ? stock(args) : shared(args.backend as BackendWasm, x);
  },
};

/** x itself with one more reference. */
function shared(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * A Cast to the dtype x already has shares x too: it is the gradient of every clone the engine
 * records (customGrad's output among them, one full-size copy of dy per fused BN -> ReLU op).
 */
export const castOverride: KernelOverride = {
  kernelName: tf.Cast,
  wrap: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    return x.dtype === dtype && dtype !== 'string' ? shared(args.backend as BackendWasm, x) : stock(args);
  },
};
