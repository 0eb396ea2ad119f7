import tf from '../tf.cjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;
/** What tfjs hands a kernel function. */
export type KernelArgs = Parameters<tf.KernelFunc>[0];

type Pad = 'valid' | 'same' | number | number[][];

/**
 * Runs stock wasm kernels directly (not through the engine, so nothing is taped or profiled twice)
 * and owns every intermediate they return: `scoped()` frees them all when the composite kernel ends.
 */
export class KernelScope {
  private readonly owned: TensorInfo[] = [];

  constructor(readonly backend: BackendWasm) {}

  run(kernelName: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, 'wasm');
    if (!kernel) throw new Error(`wasm kernel ${kernelName} is not registered`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
    this.owned.push(out);
    return out;
  }

  /** Takes ownership of a tensor a stock kernel function returned, to be freed with the rest. */
  adopt(t: TensorInfo): TensorInfo {
    this.owned.push(t);
    return t;
  }

  /** A float32 tensor on the wasm heap; fill it through `view()` before allocating anything else. */
  alloc(shape: number[]): TensorInfo {
    const out = this.backend.makeOutput(shape, 'float32');
    this.owned.push(out);
    return out;
  }

  /** Live view of a tensor's heap memory. Any later allocation may grow the heap and detach it. */
  view(t: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(t) as Float32Array;
  }

  conv2d(x: TensorInfo, filter: TensorInfo, pad: Pad, strides: number[] = [1, 1], dilations: number[] = [1, 1]): TensorInfo {
    return this.run('Conv2D', { x, filter }, { strides, pad, dilations, dataFormat: 'NHWC', dimRoundingMode: undefined });
  }

  depthwise(x: TensorInfo, filter: TensorInfo, pad: Pad, strides: number[] = [1, 1], dilations: number[] = [1, 1]): TensorInfo {
    return this.run('DepthwiseConv2dNative', { x, filter }, { strides, pad, dilations, dimRoundingMode: undefined });
  }

  /** Transpose; an identity permutation costs nothing. */
  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    if (perm.every((p, i) => p === i)) return x;
    return this.run('Transpose', { x }, { perm });
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
    return this.run('Reshape', { x }, { shape });
  }

  /**
   * Slice of a float32 tensor, copied row by row on the heap (the stock wasm Slice first copies
   * the whole input out to JS). A full-size slice costs nothing.
   */
  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    if (begin.every((b) => b === 0) && size.every((s, i) => s === x.shape[i])) return x;
    const out = this.alloc(size);
    copyBox(this.view(x), x.shape, begin, this.view(out), size);
    return out;
  }

  sum(x: TensorInfo, axis: number[]): TensorInfo {
    return this.run('Sum', { x }, { axis, keepDims: false });
  }

  /** Runs `body` and frees every intermediate it made at once (per-chunk buffers of big layers). */
  within(body: () => void): void {
    const start = this.owned.length;
    try {
      body();
    } finally {
      for (const t of this.owned.splice(start)) this.backend.disposeData(t.dataId);
    }
  }

  matMul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  }

  disposeAll(): void {
    for (const t of this.owned.splice(0)) this.backend.disposeData(t.dataId);
  }
}

/** Runs `body` with a fresh scope whose tensors are all freed when it ends, also when it throws. */
export function withKernelScope<T>(backend: BackendWasm, body: (scope: KernelScope) => T): T {
  const scope = new KernelScope(backend);
  try {
    return body(scope);
  } finally {
    scope.disposeAll();
  }
}

/**
 * Runs `body` with a fresh scope and returns its result with exactly one reference held for the
 * engine; every other tensor the body created is freed, also when it throws. The result is always
 * a new TensorInfo: a body may return one of the kernel's inputs (a full-size slice, an identity
 * transpose), and the engine takes a returned Tensor as the output itself, so the tape would
 * record x -> x and count the gradient through it twice.
 */
export function scoped(backend: BackendWasm, body: (scope: KernelScope) => TensorInfo): TensorInfo {
  return withKernelScope(backend, (scope) => {
    const { dataId, shape, dtype } = body(scope);
    backend.incRef(dataId);
    return { dataId, shape, dtype };
  });
}

/**
 * The same box with every trailing axis the box spans whole merged into the axis before it, so
 * the copied runs are as long as memory allows: a ZeroPadding2D gradient, [B,H+1,W+1,C] -> [B,H,W,C],
 * copies B*H runs of W*C values instead of B*H*W runs of C.
 */
function mergeWholeAxes(shape: number[], begin: number[], size: number[]): [number[], number[], number[]] {
  const [sh, be, si] = [[...shape], [...begin], [...size]];
  while (sh.length > 1 && be[sh.length - 1] === 0 && si[sh.length - 1] === sh[sh.length - 1]) {
    const inner = sh.pop()!;
    be.pop();
    si.pop();
    const last = sh.length - 1;
    [sh[last], be[last], si[last]] = [sh[last]! * inner, be[last]! * inner, si[last]! * inner];
  }
  return [sh, be, si];
}

/** Copies the box `begin`..`begin+size` of a row-major array of shape `shape` into `dst`. */
function copyBox(src: Float32Array, fullShape: number[], fullBegin: number[], dst: Float32Array, fullSize: number[]): void {
  if (dst.length === 0) return;
  const [shape, begin, size] = mergeWholeAxes(fullShape, fullBegin, fullSize);
  const rank = shape.length;
  const strides = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  const row = size[rank - 1]!;
  const rows = dst.length / row;
  const index = new Array<number>(rank - 1).fill(0);
  for (let r = 0; r < rows; r++) {
    let from = begin[rank - 1]!;
    for (let d = 0; d < rank - 1; d++) from += (begin[d]! + index[d]!) * strides[d]!;
    dst.set(src.subarray(from, from + row), r * row);
    for (let d = rank - 2; d >= 0; d--) {
      if (++index[d]! < size[d]!) break;
      index[d] = 0;
    }
  }
}
