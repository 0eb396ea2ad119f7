import tf from '../runtime/tf.cjs';
import { TlError } from '../util/errors.js';
import type { PreprocessingConfig } from '../data/preprocess.js';
import type { BackboneSpec, BuildOptions, InputShape } from './types.js';

export { SeededGlorot } from '../runtime/seeded-init.js';

/** keras.applications `preprocess_input` mode "tf" (MobileNet, Xception): 0..255 -> -1..1. */
export const SCALE_TO_PLUS_MINUS_ONE: PreprocessingConfig = { mode: 'scale', scale: 1 / 127.5, offset: -1, grayscale: false };

/** Keras BatchNormalization defaults (epsilon 1e-3, momentum 0.99), which tfjs shares, unless an architecture sets its own momentum. */
export function batchNorm(name: string, momentum?: number): tf.layers.Layer {
  return tf.layers.batchNormalization({ axis: -1, name, ...(momentum === undefined ? {} : { momentum }) });
}

/** Keras `ReLU(6.0)`: the MobileNets' activation. */
export function relu6(name: string): tf.layers.Layer {
  return tf.layers.reLU({ maxValue: 6, name });
}

/**
 * The largest input side tl builds a backbone for. The ImageNet weights were trained at 224-299
 * px; at 4x that their filters see texture, not objects, and one VGG16 image at 1024x1024 already
 * needs 256 MB for its first feature map. A larger `--size` is refused before any image is decoded.
 */
export const MAX_INPUT_SIZE = 1024;

/** Refuses inputs the architecture cannot take, as Keras' obtain_input_shape does, and inputs above MAX_INPUT_SIZE. */
export function checkInputShape(spec: Pick<BackboneSpec, 'name' | 'minInputSize' | 'topInputSize'>, opts: BuildOptions): InputShape {
  const { name: backbone, minInputSize: minSize, topInputSize: topSize } = spec;
  const [h, w, c] = opts.inputShape;
  if (c !== 3) throw new TlError(`${backbone}: input must have 3 channels, got ${c}`);
  if (h < minSize || w < minSize) {
    throw new TlError(`${backbone}: input ${h}x${w} is smaller than the minimum ${minSize}x${minSize}; use a larger --size`);
  }
  if (h > MAX_INPUT_SIZE || w > MAX_INPUT_SIZE) {
    throw new TlError(`${backbone}: input ${h}x${w} is larger than the maximum ${MAX_INPUT_SIZE}x${MAX_INPUT_SIZE}; use --size ${MAX_INPUT_SIZE} or less (the ImageNet weights were trained at 224-299 px)`);
  }
  if (opts.includeTop && (h !== topSize || w !== topSize)) {
    throw new TlError(`${backbone}: the classifier top needs a ${topSize}x${topSize} input, got ${h}x${w}; drop the top or resize`);
  }
  return [h, w, c];
}

/** The width multiplier to build with: the requested one, the spec's default, or none. */
export function resolveWidth(spec: Pick<BackboneSpec, 'name' | 'alphas' | 'defaultAlpha'>, alpha: number | undefined): number | undefined {
  if (!spec.alphas) {
    if (alpha !== undefined) throw new TlError(`${spec.name} has no width multiplier; drop --alpha`);
    return undefined;
  }
  const a = alpha ?? spec.defaultAlpha!;
  if (!spec.alphas.includes(a)) throw new TlError(`${spec.name}: alpha ${a} is not supported; use one of ${spec.alphas.join(', ')}`);
  return a;
}
