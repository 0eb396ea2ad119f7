import tf from './tf.cjs';
import { Rng } from '../util/rng.js';

/**
 * Glorot kernel initialisers seeded per layer from one Rng, so that a model built twice with the
 * same seed starts from the same weights, without touching Math.random (which tfjs would
 * otherwise draw the seeds from). 'uniform' is Keras' default (the backbones, Keras-identical);
 * 'normal' is tfjs-layers' default, which the custom models' reference runs were trained with.
 */
export class SeededGlorot {
  private readonly rng: Rng;

  constructor(
    seed = 0,
    private readonly distribution: 'uniform' | 'normal' = 'uniform',
  ) {
    this.rng = new Rng(seed);
  }

  next(): ReturnType<typeof tf.initializers.glorotUniform> {
    const seed = this.rng.int(2 ** 31 - 1);
    return this.distribution === 'normal' ? tf.initializers.glorotNormal({ seed }) : tf.initializers.glorotUniform({ seed });
  }
}
