import tf from '../tf.cjs';

/**
 * A replacement for a stock wasm kernel that handles the cases it is slow at and hands the
 * rest back to the stock implementation.
 */
export interface KernelOverride {
  kernelName: string;
  wrap(stock: tf.KernelFunc): tf.KernelFunc;
}

const installed = new Map<string, tf.KernelConfig>();

/**
 * Registers `override` over the kernel wasm registered under its name. The stock setupFunc is kept:
 * the engine runs it when the backend starts, and the stock kernelFunc needs it.
 */
export function installOverride(override: KernelOverride): void {
  const current = tf.getKernel(override.kernelName, 'wasm');
  if (!current || current === installed.get(override.kernelName)) return;
  const config: tf.KernelConfig = {
    kernelName: override.kernelName,
    backendName: 'wasm',
    kernelFunc: override.wrap(current.kernelFunc),
    ...(current.setupFunc ? { setupFunc: current.setupFunc } : {}),
    ...(current.disposeFunc ? { disposeFunc: current.disposeFunc } : {}),
  };
  tf.unregisterKernel(override.kernelName, 'wasm');
  tf.registerKernel(config);
  installed.set(override.kernelName, config);
}

/** Registers a kernel wasm lacks or whose stock version is replaced outright. */
export function installKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) === config) return;
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}
