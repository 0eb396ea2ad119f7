import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type SimdPool, serialPool, threadPool } from './pool.js';
import { SIMD_WASM_BASE64 } from './simd-binary.js';

export type { SimdKernels } from './simd-kernels.js';
import type { SimdKernels } from './simd-kernels.js';

interface EmscriptenHeap {
  asm?: { memory?: WebAssembly.Memory };
  wasmMemory?: WebAssembly.Memory;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

interface SimdInstance {
  kernels: SimdKernels;
  pool: SimdPool;
}

const instances = new WeakMap<object, SimdInstance | null>();
let enabled = true;

/** Turns the SIMD loops off (every kernel then takes its XNNPACK-only path): for tests and comparisons. */
export function setSimdEnabled(on: boolean): void {
  enabled = on;
}

function instantiate(backend: BackendWasm): SimdInstance | null {
  const heap = backend.wasm as unknown as EmscriptenHeap;
  const memory = heap.asm?.memory ?? heap.wasmMemory;
  if (!memory) return null;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  let module: WebAssembly.Module;
  let kernels: SimdKernels;
  try {
    module = new WebAssembly.Module(Buffer.from(SIMD_WASM_BASE64[shared ? 'shared' : 'local'], 'base64'));
    kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as SimdKernels;
  } catch {
    return null; // no wasm SIMD here: callers fall back to the stock kernels
  }
  // As many threads as XNNPACK's pool: the two never run at once (a kernel is a call on the main thread).
  const threads = xnnpackThreads(backend);
  return { kernels, pool: shared && threads > 1 ? threadPool(kernels, module, memory, threads) : serialPool(kernels) };
}

function instanceFor(backend: BackendWasm): SimdInstance | undefined {
  if (!enabled) return undefined;
  if (!instances.has(backend.wasm)) instances.set(backend.wasm, instantiate(backend));
  return instances.get(backend.wasm) ?? undefined;
}

/** simd.wat instantiated on this backend's memory, or undefined where wasm SIMD is unavailable. */
export function simdFor(backend: BackendWasm): SimdKernels | undefined {
  return instanceFor(backend)?.kernels;
}

/** The threads that run simd.wat's loops for this backend (a serial pool without SIMD threads). */
export function simdPoolFor(backend: BackendWasm): SimdPool | undefined {
  return instanceFor(backend)?.pool;
}

/** The threads XNNPACK splits a product over in this backend (1 in the single-threaded build). */
export function xnnpackThreads(backend: BackendWasm): number {
  const tfjs = (backend.wasm as unknown as { tfjs?: { getThreadsCount?: () => number } }).tfjs;
  return tfjs?.getThreadsCount?.() ?? 1;
}

/** Heap byte offset of a tensor's data. */
export function heapPtr(backend: BackendWasm, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}

/** Runs `body` with `bytes` of scratch heap memory. */
export function withScratch<T>(backend: BackendWasm, bytes: number, body: (ptr: number) => T): T {
  const heap = backend.wasm as unknown as EmscriptenHeap;
  const ptr = heap._malloc(bytes) >>> 0;
  try {
    return body(ptr);
  } finally {
    heap._free(ptr);
  }
}

/** Runs `body` with copies of `arrays` on the heap (their byte offsets). */
export function withInt32Arrays<T>(backend: BackendWasm, arrays: Int32Array[], body: (ptrs: number[]) => T): T {
  const total = arrays.reduce((n, a) => n + a.length, 0);
  return withScratch(backend, total * 4, (base) => {
    const ptrs: number[] = [];
    let offset = base;
    for (const a of arrays) {
      new Int32Array(backend.wasm.HEAPU8.buffer, offset, a.length).set(a);
      ptrs.push(offset);
      offset += a.length * 4;
    }
    return body(ptrs);
  });
}
