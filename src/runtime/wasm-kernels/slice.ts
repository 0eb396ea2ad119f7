import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { scoped } from './scope.js';
import type { KernelOverride } from './stock.js';

/**
 * float32 Slice copied row by row on the heap (KernelScope.slice). The stock wasm Slice first
 * copies the whole input out to JS; as the gradient of every ZeroPadding2D (MobileNet's strided
 * blocks) it cost as much as a convolution gradient per fine-tuning step.
 */
export const sliceOverride: KernelOverride = {
  kernelName: tf.Slice,
  wrap: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32') return stock(args);
    const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
    const [from, extent] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
    return scoped(args.backend as BackendWasm, (s) => s.slice(x, from, extent));
  },
};
