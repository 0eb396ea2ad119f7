import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { TlError } from '../util/errors.js';
import { currentContext, emitMessage } from './context.js';
import { registerWasmKernels, useThreadedWasm } from './wasm-kernels/index.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

const require = createRequire(import.meta.url);
let chosen: BackendName | undefined;

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

/** Why a backend could not start, in one line. */
function reasonOf(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!;
}

async function tryTfjsNode(): Promise<void> {
  // Optional dependency: absent wherever libtensorflow could not be downloaded at install time.
  await import('@tensorflow/tfjs-node' as string);
  if (tf.findBackend('tensorflow') === undefined && tf.engine().registryFactory['tensorflow'] === undefined) {
    throw new Error('@tensorflow/tfjs-node loaded but registered no backend');
  }
}

async function tryWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  wasm.setWasmPaths(dist);
  registerWasmKernels();
  // Opt-in: XNNPACK's thread pool spin-waits, which helps on an idle machine (1.5x with 2 threads)
  // and hurts on a busy one, so one thread stays the default.
  const threads = Number(process.env.TL_WASM_THREADS ?? 1);
  if (Number.isInteger(threads) && threads > 1 && !tf.engine().registry['wasm']) useThreadedWasm(threads);
}

/** Start `name`; undefined when it runs, else why it could not. */
async function activate(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') await tryTfjsNode();
    if (name === 'wasm') await tryWasm();
    return (await tf.setBackend(name)) ? undefined : `tf.setBackend('${name}') failed`;
  } catch (err) {
    return reasonOf(err);
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
  return chosen!;
}

export interface RuntimeInfo {
  backend: string;
  tfjs: string;
  tfjsNode: string | null;
  wasmSimd: boolean | null;
  threads: number;
  node: string;
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
  const backend = tf.getBackend();
  let tfjsNode: string | null = null;
  try {
    tfjsNode = (require('@tensorflow/tfjs-node/package.json') as { version: string }).version;
  } catch {
    tfjsNode = null;
  }
  let wasmSimd: boolean | null = null;
  let threads = 1;
  if (backend === 'wasm') {
    wasmSimd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    threads = wasm.getThreadsCount();
  } else if (backend === 'tensorflow') {
    threads = (await import('node:os')).cpus().length;
  }
  return { backend: chosen ?? expectedBackend(), tfjs: tf.version.tfjs, tfjsNode, wasmSimd, threads, node: process.version };
}
