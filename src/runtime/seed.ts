import { Rng } from '../util/rng.js';

let seeded: Rng | undefined;

/**
 * tfjs draws its weight initialisers and dropout masks from seeds taken from Math.random() when no
 * explicit seed is given, so replacing Math.random with a seeded generator makes initialisation,
 * dropout and every shuffle that uses it reproducible from one number.
 */
export function seedEverything(seed: number): void {
  const rng = new Rng(seed ^ 0x5eed);
  seeded = rng;
  Math.random = () => rng.next();
}

/** Where the seeded generator is, for a checkpoint; undefined when nothing was seeded. */
export function randomPosition(): number | undefined {
  return seeded?.position;
}

/** Put the seeded generator back where a checkpoint found it, so a resumed run draws the same dropout masks. */
export function restoreRandomPosition(position: number | undefined): void {
  if (position !== undefined && seeded) seeded.restore(position);
}
