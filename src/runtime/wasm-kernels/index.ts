/**
 * Registers the gradient kernels the wasm backend lacks or runs slowly. Filled in by the
 * kernels work (issue 2, "Runtime"); until then wasm falls back to tfjs's own kernels.
 */
export function registerWasmKernels(): void {}
