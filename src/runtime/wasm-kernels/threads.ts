import tf from '../tf.cjs';
import wasmBackend from '../tfjs-wasm.cjs';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import workerThreads, { type WorkerOptions } from 'node:worker_threads';

const require = createRequire(import.meta.url);

interface PThreadWorker {
  unref(): void;
  terminate(): void;
}

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread: { unusedWorkers: PThreadWorker[]; runningWorkers: PThreadWorker[] };
  tfjs?: Record<string, unknown>;
}

type ModuleFactory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

/**
 * The worker script of tfjs's threaded build, written once to a file: tfjs hands Emscripten a
 * blob: URL, which Node's Worker cannot load (that is why setThreadsCount fails in Node).
 */
function workerScript(wasmOut: string): string {
  const { wasmWorkerContents } = require(path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  // As tfjs does before making its blob: the string holds literal newlines inside JS strings.
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `tl-tfjs-wasm-worker-${hash}.cjs`);
  if (!existsSync(file)) {
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, source);
    renameSync(temp, file);
  }
  return file;
}

// pthreadpool's spin loops in tfjs's threaded build: `i32.const 1000000` (PTHREADPOOL_SPIN_WAIT_ITERATIONS,
// signed LEB128 c0 84 3d), each shortly followed by the loop's i32.atomic.load (fe 10 02 00).
const SPIN_CONSTANT = [0x41, 0xc0, 0x84, 0x3d];
const ATOMIC_LOAD = [0xfe, 0x10, 0x02, 0x00];
const SPIN_SITES = 3;
// 1,000 as a three-byte LEB128, so no offset in the binary moves.
const SHORT_SPIN = [0xe8, 0x87, 0x00];

function matchesAt(bytes: Uint8Array, at: number, pattern: number[]): boolean {
  return pattern.every((b, i) => bytes[at + i] === b);
}

/**
 * tfjs's threaded build with XNNPACK's pool spinning 1,000 times instead of 1,000,000 before its
 * workers sleep on a futex. pthreadpool spins after every parallel operation (~4 ms here, measured
 * as CPU time beyond wall time) so that the next one starts sooner; in a training step, where tl's
 * own kernels run between XNNPACK's, that kept a worker spinning on the core that tl's SIMD pool
 * (pool.ts) and other processes needed. The count is a compile-time constant
 * (PTHREADPOOL_SPIN_WAIT_ITERATIONS) and XNNPACK's per-operation flag to skip the spin is not
 * reachable from tfjs, so the three spin loops' constant is rewritten in place. A binary whose
 * loops do not look exactly like that (another tfjs version) is used as it is.
 */
export function shortSpinBinary(file: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(file);
  const sites: number[] = [];
  for (let at = bytes.indexOf(SPIN_CONSTANT[0]!); at >= 0; at = bytes.indexOf(SPIN_CONSTANT[0]!, at + 1)) {
    if (!matchesAt(bytes, at, SPIN_CONSTANT)) continue;
    const loop = Array.from({ length: 24 }, (_, i) => at + SPIN_CONSTANT.length + i);
    if (loop.some((i) => matchesAt(bytes, i, ATOMIC_LOAD))) sites.push(at);
  }
  if (sites.length !== SPIN_SITES) return file;
  for (const at of sites) bytes.set(SHORT_SPIN, at + 1);
  return bytes;
}

/**
 * Starts the threaded SIMD module with an XNNPACK pool of `threads`. Its C++ side caps the pool
 * at half the logical cores reported while it starts (it assumes hyper-threading), so the core
 * count is reported as 2*threads for that moment. Its pool spins briefly (shortSpinBinary).
 */
async function startThreadedModule(threads: number): Promise<ThreadedModule> {
  const wasmOut = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  const mainScript = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  const factory = require(mainScript) as ModuleFactory;
  const worker = workerScript(wasmOut);
  const cpus = os.cpus;
  os.cpus = () => Array.from({ length: 2 * threads }, () => cpus()[0]!);
  // Emscripten takes worker_threads.Worker as it starts; its workers must not inherit flags that
  // only make sense for a main script (`node --input-type=module -e ...` makes every worker fail).
  const NodeWorker = workerThreads.Worker;
  (workerThreads as { Worker: typeof NodeWorker }).Worker = class extends NodeWorker {
    constructor(file: string | URL, options: WorkerOptions = {}) {
      super(file, { execArgv: process.execArgv.filter((arg) => !arg.startsWith('--input-type')), ...options });
    }
  };
  try {
    return await factory({
      wasmBinary: shortSpinBinary(readFileSync(path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.wasm'))),
      locateFile: (file: string) => (file.endsWith('.worker.js') ? worker : path.join(wasmOut, file)),
      mainScriptUrlOrBlob: mainScript,
    });
  } finally {
    os.cpus = cpus;
    (workerThreads as { Worker: typeof NodeWorker }).Worker = NodeWorker;
  }
}

/**
 * Replaces the 'wasm' backend with tfjs's multi-threaded SIMD build: XNNPACK's convolutions and
 * matrix products run on `threads` threads (worker_threads sharing the wasm memory). Every wasm
 * kernel, ours included, works unchanged. Call before tf.setBackend('wasm'); a no-op for
 * threads <= 1. The workers are unref'd so they never keep the process alive.
 */
export function useThreadedWasm(threads: number): void {
  if (threads <= 1) return;
  if (tf.engine().registry['wasm']) throw new Error('useThreadedWasm: the wasm backend has already started; call it before setBackend');
  wasmBackend.setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const module = await startThreadedModule(threads);
      const wrap = (name: string, args: string[], ret: string | null = null) => module.cwrap(name, ret, args);
      module.tfjs = {
        init: wrap('init', []),
        initWithThreadsCount: wrap('init_with_threads_count', ['number']),
        getThreadsCount: wrap('get_threads_count', [], 'number'),
        registerTensor: wrap('register_tensor', ['number', 'number', 'number']),
        disposeData: wrap('dispose_data', ['number']),
        dispose: wrap('dispose', []),
      };
      const backend = new wasmBackend.BackendWasm(module as unknown as ConstructorParameters<typeof wasmBackend.BackendWasm>[0]);
      // The pool's threads exist now; the other pre-started workers are never used.
      for (const w of module.PThread.unusedWorkers.splice(0)) w.terminate();
      for (const w of module.PThread.runningWorkers) w.unref();
      return backend;
    },
    2,
  );
}
