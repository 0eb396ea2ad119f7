import { Rng } from '../util/rng.js';

/**
 * tfjs draws its weight initialisers and dropout masks from seeds taken from Math.random() when no
 * explicit seed is given, so replacing Math.random with a seeded generator makes initialisation,
 * dropout and every shuffle that uses it reproducible from one number.
 */
export function seedEverything(seed: number): void {
  const rng = new Rng(seed ^ 0x5eed);
  Math.random = () => rng.next();
}
