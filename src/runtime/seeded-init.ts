import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.js';

/**
 * Keras' default kernel initialiser (glorot_uniform), seeded per layer from one Rng, so that a
 * model built twice with the same seed starts from the same weights, without touching
 * Math.random (which tfjs would otherwise draw the seeds from).
 */
export class SeededGlorot {
  private readonly rng: Rng;

  constructor(seed = 0) {
    this.rng = new Rng(seed);
  }

  next(): ReturnType<typeof tf.initializers.glorotUniform> {
    return tf.initializers.glorotUniform({ seed: this.rng.int(2 ** 31 - 1) });
  }
}
