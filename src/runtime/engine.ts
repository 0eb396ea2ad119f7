import tf from './tf.cjs';
import type * as Ort from 'onnxruntime-node';
import { errorLine, fileError, TlError } from '../util/errors.js';
import { initBackend } from './backend.js';
import { currentContext, emitMessage } from './context.js';
import { threadChoice } from './thread-count.js';

/**
 * Inference engines: what runs a model forward when nothing trains it (the frozen base's
 * features, predict, evaluate). ONNX Runtime's native CPU kernels run these graphs 2-4x faster
 * than tfjs on wasm; training stays on tfjs. Selection: --engine beats TL_ENGINE beats
 * onnxruntime-if-it-loads.
 */
export type EngineName = 'onnxruntime' | 'tfjs';

/** The input and output names of every ONNX graph tl runs (and exports). */
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'output';
export const ENGINES: readonly EngineName[] = ['onnxruntime', 'tfjs'];

/**
 * Images per forward pass when a model only infers (features, predict, evaluate). Per image, 8 runs
 * as fast as 32 on ONNX Runtime (MobileNet 1.0 and VGG16 at 150x150, 2 threads), and a quarter of
 * the activation memory is a quarter of the page faults while a session's arena first fills: the
 * first batch of 32 through the two-scale MobileNet 0.25 took 330 ms against 57 once warm.
 */
export const INFERENCE_BATCH = 8;

export interface InferenceEngine {
  readonly name: EngineName;
  /** One NHWC float32 batch of model input ([batch, ...inputShape], row-major) -> the output, row-major. */
  run(x: Float32Array, batch: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** The engine asked for by --engine / TL_ENGINE, if any. */
export function requestedEngine(): EngineName | undefined {
  const raw = currentContext().engine ?? process.env.TL_ENGINE;
  if (!raw) return undefined;
  if (!ENGINES.includes(raw as EngineName)) throw new TlError(`unknown engine "${raw}"; use one of ${ENGINES.join(', ')} (--engine or TL_ENGINE)`);
  return raw as EngineName;
}

/** Intra-op threads: --threads / TL_THREADS, else every core this process may use. */
export function threadCount(): number {
  return threadChoice().threads;
}

type OrtModule = typeof Ort;
let ort: Promise<OrtModule | Error> | undefined;

function loadOrt(): Promise<OrtModule | Error> {
  ort ??= import('onnxruntime-node').then(
    (m) => ((m as unknown as { default?: OrtModule }).default ?? m) as OrtModule,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  return ort;
}

let warned = false;

/**
 * The engine to use: onnxruntime where onnxruntime-node loads; otherwise tfjs, with one line on
 * stderr, unless onnxruntime was asked for explicitly (then an error).
 */
export async function chooseEngine(): Promise<EngineName> {
  const wanted = requestedEngine();
  if (wanted === 'tfjs') return 'tfjs';
  const loaded = await loadOrt();
  if (!(loaded instanceof Error)) return 'onnxruntime';
  const reason = errorLine(loaded);
  if (wanted === 'onnxruntime') throw new TlError(`engine "onnxruntime" is unavailable: onnxruntime-node did not load (${reason}); run npm install, or use --engine tfjs`);
  if (!warned) emitMessage(`tl: onnxruntime-node did not load (${reason}); using the slower tfjs engine`);
  warned = true;
  return 'tfjs';
}

async function ortModule(): Promise<OrtModule> {
  const loaded = await loadOrt();
  if (loaded instanceof Error) throw new TlError(`onnxruntime-node did not load (${errorLine(loaded)}); run npm install, or use --engine tfjs`);
  return loaded;
}

/**
 * An ONNX Runtime session over an exported model (bytes, or a file whose name errors carry).
 * Sessions use `threadCount()` intra-op threads and one inter-op thread (our graphs are chains).
 */
export async function onnxEngine(model: Uint8Array | string, inputShape: readonly number[]): Promise<InferenceEngine> {
  const { InferenceSession, Tensor } = await ortModule();
  const options: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threadCount(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // A memory pattern is planned after the first run and allocated as one new block on the second,
    // so the second run faulted in all its activations again (390 ms against 57 warm); the arena
    // alone reuses the first run's memory.
    enableMemPattern: false,
    // Idle pool threads sleep instead of spin-waiting: image decoding (libuv threads) and other
    // processes share these cores, and spinning workers starve them (2 spinning threads ran MobileNet
    // at a third of the 1-thread speed on a busy 2-core machine).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  let session: Ort.InferenceSession;
  try {
    session = typeof model === 'string' ? await InferenceSession.create(model, options) : await InferenceSession.create(model, options);
  } catch (err) {
    const problem = `is not a loadable ONNX model (${errorLine(err)})`;
    if (typeof model === 'string') throw fileError(model, problem, 'export it again with tl export RUN --format onnx');
    throw new Error(`exported ONNX model ${problem}`);
  }
  return {
    name: 'onnxruntime',
    async run(x, batch) {
      const input = new Tensor('float32', x, [batch, ...inputShape]);
      const result = await session.run({ [ONNX_INPUT]: input });
      const output = result[ONNX_OUTPUT]!;
      const data = output.data as Float32Array;
      output.dispose();
      return data;
    },
    dispose: () => session.release(),
  };
}

/** A forward pass tfjs can run: models/fused.ts compiles a layers model into one. */
export interface ForwardPass {
  run(x: tf.Tensor): tf.Tensor;
  dispose(): void;
}

/** tfjs on the current backend, running `pass` on [batch, ...inputShape] inputs. */
export async function tfjsEngine(pass: ForwardPass, inputShape: readonly number[]): Promise<InferenceEngine> {
  await initBackend();
  return {
    name: 'tfjs',
    async run(x, batch) {
      const y = tf.tidy(() => pass.run(tf.tensor(x, [batch, ...inputShape], 'float32')));
      const data = (await y.data()) as Float32Array;
      y.dispose();
      return data;
    },
    dispose: async () => pass.dispose(),
  };
}

export interface EngineInfo {
  engine: EngineName;
  version: string;
  threads: number;
}

/** What `tl info` prints about inference. */
export async function engineInfo(): Promise<EngineInfo> {
  const engine = await chooseEngine();
  if (engine === 'tfjs') return { engine, version: tf.version.tfjs, threads: 1 };
  const { env } = await ortModule();
  return { engine, version: env.versions.node ?? env.versions.common, threads: threadCount() };
}
