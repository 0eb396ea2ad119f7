import tf from './tf.cjs';
import { installFastBatchNorm, uninstallFastBatchNorm } from './batchnorm.js';
import { TRAINING_GRADIENTS } from './wasm-kernels/index.js';

/**
 * tl's changes to tfjs's process-wide registries (the fast BatchNormalization call, the gradients
 * of its training kernels) exist only while a tl operation runs, and everything is put back as it
 * was when the last one ends: another model in the same process trains on stock tfjs. Reference
 * counted, so overlapping operations share one installation.
 */
let active = 0;
let saved: Map<string, tf.GradConfig | undefined> | undefined;

/** tfjs keeps gradients in a global Map with no public way to remove one. */
function gradientRegistry(): Map<string, tf.GradConfig> | undefined {
  const globals = (globalThis as { _tfGlobals?: Map<string, unknown> })._tfGlobals;
  return globals?.get('gradRegistry') as Map<string, tf.GradConfig> | undefined;
}

function install(): void {
  // installFastBatchNorm saves and restores the FusedBatchNorm gradient it replaces itself.
  saved = new Map(TRAINING_GRADIENTS.map((g) => [g.kernelName, tf.getGradient(g.kernelName)]));
  installFastBatchNorm();
  for (const g of TRAINING_GRADIENTS) tf.registerGradient(g);
}

function uninstall(): void {
  uninstallFastBatchNorm();
  for (const [kernelName, previous] of saved ?? []) {
    if (previous) tf.registerGradient(previous);
    else gradientRegistry()?.delete(kernelName);
  }
  saved = undefined;
}

/** Run `fn` with tl's fast BatchNorm and training gradients in place, then restore stock tfjs. */
export async function withTlKernels<T>(fn: () => Promise<T>): Promise<T> {
  if (active++ === 0) install();
  try {
    return await fn();
  } finally {
    if (--active === 0) uninstall();
  }
}
