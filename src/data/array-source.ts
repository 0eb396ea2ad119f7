import tf from '../runtime/tf.cjs';
import { Rng } from '../util/rng.js';
import type { Batch, BatchSource } from './batch-source.js';
import type { DecodedImage } from './images.js';

/** Grayscale images held as bytes (count*h*w), turned into float batches only when needed. */
export interface ByteImages {
  images: Uint8Array;
  labels: Uint8Array;
  height: number;
  width: number;
}

export interface PixelScaling {
  scale: number;
  offset: number;
}

/** Row indices 0..n-1: a whole split. */
export function allRows(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/**
 * A BatchSource over the rows `rows` of `data`. Pixels become `p * scale + offset` one batch at a
 * time, so 100k images cost 100k*784 bytes, not four times that in floats. `augment` changes each
 * image of a training pass (one with an epoch seed) first, drawing from a generator seeded by it.
 */
export function byteImageSource(data: ByteImages, rows: ArrayLike<number>, scaling: PixelScaling, augment?: (img: DecodedImage, rng: Rng) => DecodedImage): BatchSource {
  const pixels = data.height * data.width;
  return {
    size: rows.length,
    async *batches(batchSize: number, epochSeed?: number): AsyncIterable<Batch> {
      const order = Int32Array.from(rows);
      if (epochSeed !== undefined) new Rng(epochSeed).shuffle(order as unknown as number[]);
      const change = epochSeed !== undefined ? augment : undefined;
      const rng = new Rng((epochSeed ?? 0) ^ 0xa09e);
      const image = (bytes: Uint8Array) => (change ? change({ data: bytes, height: data.height, width: data.width, channels: 1 }, rng).data : bytes);
      for (let start = 0; start < order.length; start += batchSize) {
        const n = Math.min(batchSize, order.length - start);
        const x = new Float32Array(n * pixels);
        const y = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const row = order[start + i]!;
          const src = image(data.images.subarray(row * pixels, (row + 1) * pixels));
          for (let p = 0; p < pixels; p++) x[i * pixels + p] = src[p]! * scaling.scale + scaling.offset;
          y[i] = data.labels[row]!;
        }
        yield { x: tf.tensor4d(x, [n, data.height, data.width, 1]), y: tf.tensor1d(y, 'int32') };
      }
    },
  };
}
