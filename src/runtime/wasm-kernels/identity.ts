import * as tf from '@tensorflow/tfjs';
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
    if (x.dtype === 'string') return stock(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};
