import tf from './tf.cjs';
import wasm from './tfjs-wasm.cjs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { errorLine, TlError } from '../util/errors.js';
import { currentContext, emitEvent, emitMessage } from './context.js';
import { requestedThreads, wasmThreadChoice, type ThreadChoice } from './thread-count.js';
import { registerWasmKernels, useThreadedWasm } from './wasm-kernels/index.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

const require = createRequire(import.meta.url);
let chosen: BackendName | undefined;
/** The wasm backend's pool size is fixed when it starts: once per process. */
let wasmThreads: ThreadChoice | undefined;

/** `--backend` beats `TL_BACKEND` beats auto-detection (tfjs-node, then wasm, then cpu). */
export function requestedBackend(flag?: string): BackendName | undefined {
  const raw = flag ?? currentContext().backend ?? process.env.TL_BACKEND;
  if (!raw) return undefined;
  const name = (raw === 'node' || raw === 'tfjs-node' ? 'tensorflow' : raw) as BackendName;
  if (!BACKENDS.includes(name)) {
    throw new TlError(`unknown backend "${raw}"; use one of ${BACKENDS.join(', ')} (--backend or TL_BACKEND)`);
  }
  return name;
}

async function tryTfjsNode(): Promise<void> {
  // Optional dependency: absent wherever libtensorflow could not be downloaded at install time.
  // require(), as for tfjs itself (./tf.cts): an import would run Node's export lexer over it.
  require('@tensorflow/tfjs-node');
  if (tf.findBackend('tensorflow') === undefined && tf.engine().registryFactory['tensorflow'] === undefined) {
    throw new Error('@tensorflow/tfjs-node loaded but registered no backend');
  }
}

async function tryWasm(): Promise<void> {
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  wasm.setWasmPaths(dist);
  registerWasmKernels();
  if (tf.engine().registry['wasm']) return;
  wasmThreads = wasmThreadChoice();
  useThreadedWasm(wasmThreads.threads);
}

/** Start `name`; undefined when it runs, else why it could not. */
async function activate(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') await tryTfjsNode();
    if (name === 'wasm') await tryWasm();
    return (await tf.setBackend(name)) ? undefined : `tf.setBackend('${name}') failed`;
  } catch (err) {
    return errorLine(err);
  }
}

/**
 * Pick and initialise the tensor backend once per process. An explicitly requested backend
 * that cannot start is an error; auto-detection falls through to the next candidate and says why
 * when it passes over wasm (tfjs-node missing is the normal case and goes unsaid).
 */
export async function initBackend(flag?: string): Promise<BackendName> {
  const wanted = requestedBackend(flag);
  if (chosen && (!wanted || wanted === chosen)) return chosen;
  requestedThreads(); // a bad --threads is a usage error, not a backend that failed to start
  if (wanted) {
    const failure = await activate(wanted);
    if (failure) {
      throw new TlError(
        wanted === 'tensorflow'
          ? 'backend "tensorflow" is unavailable: @tensorflow/tfjs-node did not load; install it (npm i @tensorflow/tfjs-node) or use --backend wasm'
          : `backend "${wanted}" failed to initialise (${failure}); try --backend cpu`,
      );
    }
    chosen = wanted;
  } else {
    for (const name of BACKENDS) {
      const failure = await activate(name);
      if (!failure) {
        chosen = name;
        break;
      }
      if (name === 'wasm') emitMessage(`tl: the wasm backend did not start (${failure}); using the much slower cpu backend`);
    }
  }
  await tf.ready();
  const { threads, threadsReason } = await backendThreads();
  emitEvent({ event: 'backend', backend: chosen, threads, threadsReason });
  return chosen!;
}

export interface RuntimeInfo {
  backend: string;
  tfjs: string;
  tfjsNode: string | null;
  wasmSimd: boolean | null;
  threads: number;
  /** Why that many: --threads, TL_THREADS, available cores, the load average... */
  threadsReason: string;
  node: string;
}

/** The backend's threads and why: the wasm pool's size as it started, or as it would start. */
async function backendThreads(): Promise<{ threads: number; threadsReason: string }> {
  const backend = tf.getBackend() ?? expectedBackend();
  if (backend === 'wasm' && !tf.getBackend()) {
    const { threads, reason } = wasmThreadChoice();
    return { threads, threadsReason: reason };
  }
  if (backend === 'wasm') {
    return { threads: wasm.getThreadsCount(), threadsReason: wasmThreads?.reason ?? 'started outside tl' };
  }
  if (backend === 'tensorflow') return { threads: os.availableParallelism(), threadsReason: 'libtensorflow uses every core' };
  return { threads: 1, threadsReason: `the ${backend} backend runs on one thread` };
}

/**
 * The backend initBackend would pick, without starting one (starting is a global change): the
 * requested one, else the first whose package is installed. tf.getBackend() is undefined until a
 * backend has started.
 */
function expectedBackend(): BackendName {
  const installed = (pkg: string) => {
    try {
      require.resolve(`${pkg}/package.json`);
      return true;
    } catch {
      return false;
    }
  };
  return requestedBackend() ?? (installed('@tensorflow/tfjs-node') ? 'tensorflow' : installed('@tensorflow/tfjs-backend-wasm') ? 'wasm' : 'cpu');
}

export async function runtimeInfo(): Promise<RuntimeInfo> {
  let tfjsNode: string | null = null;
  try {
    tfjsNode = (require('@tensorflow/tfjs-node/package.json') as { version: string }).version;
  } catch {
    tfjsNode = null;
  }
  const wasmSimd = tf.getBackend() === 'wasm' ? ((await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean) : null;
  return { backend: chosen ?? expectedBackend(), tfjs: tf.version.tfjs, tfjsNode, wasmSimd, ...(await backendThreads()), node: process.version };
}
