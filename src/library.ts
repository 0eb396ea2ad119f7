import { initBackend, runtimeInfo, type BackendName, type RuntimeInfo } from './runtime/backend.js';
import { withContext, type TlContext } from './runtime/context.js';
import { trainTransfer, type TransferTrainOptions, type TransferTrainResult } from './training/transfer.js';
import { finetune, type FinetuneOptions, type FinetuneResult } from './training/finetune.js';
import { trainCustom, type CustomTrainOptions, type CustomTrainResult } from './training/custom.js';
import { evaluateRun, openRun, predictFiles, expandImagePaths, type FilePrediction, type RunEvaluation } from './training/predict.js';
import type { RunConfig } from './artifacts/run.js';

export interface RuntimeOptions {
  /** Tensor backend: 'tensorflow' (tfjs-node), 'wasm' or 'cpu'; default: the fastest that loads. */
  backend?: BackendName;
  /** Inference engine for frozen bases, predict and evaluate: 'onnxruntime' or 'tfjs'; default: onnxruntime where it loads. */
  engine?: 'onnxruntime' | 'tfjs';
  /** Threads of the wasm backend (fixed when it first starts) and of inference; default: the available cores. */
  threads?: number;
  /** Structured events (batch, epoch, evaluation...), as the CLI's --log-json writes them. */
  onEvent?: (event: Record<string, unknown>) => void;
  /** Lines a person would read (epoch summaries, fallbacks). Without it, tl is silent. */
  onMessage?: (line: string) => void;
  /** Draw progress bars on this stream (process.stderr, say); without it, progress is silent. */
  progress?: NodeJS.WriteStream;
}

/** A trained run, loaded once, that classifies image files (the shape of tfjs-models' `classify`). */
export interface Classifier {
  readonly dir: string;
  readonly labels: readonly string[];
  readonly config: RunConfig;
  /** Ranked top-k predictions (default: PREDICT_OPTIONS.topK) for image files and folders (searched recursively). */
  classify(paths: string | readonly string[], topK?: number): Promise<FilePrediction[]>;
  /** Accuracy, per-class metrics and confusion on a folder of class sub-folders. */
  evaluate(dataDir: string): Promise<RunEvaluation>;
  dispose(): void;
}

/**
 * tl as a library: every call runs with this runtime's backend, engine, threads and sinks, and
 * changes nothing in the process beyond the tensor backend it starts (no environment, no
 * Math.random, no signal handlers, no output unless a sink is given). Cancel training by aborting
 * the `signal` of its options; watch it with `callbacks`.
 */
export interface Runtime {
  readonly backend: BackendName;
  /** Transfer learning: a frozen pretrained base and a new head, trained on an image folder. */
  train(opts: TransferTrainOptions): Promise<TransferTrainResult>;
  /** Fine-tune a transfer run end to end (BatchNorm statistics frozen) into a new run. */
  finetune(opts: FinetuneOptions): Promise<FinetuneResult>;
  /** Train one of the custom models (cnn, mlp, seed-*) on a cached idx dataset. */
  trainCustom(opts: CustomTrainOptions): Promise<CustomTrainResult>;
  load(runDir: string): Promise<Classifier>;
  info(): Promise<RuntimeInfo>;
}

export async function createRuntime(opts: RuntimeOptions = {}): Promise<Runtime> {
  const context: TlContext = {
    ...(opts.backend ? { backend: opts.backend } : {}),
    ...(opts.engine ? { engine: opts.engine } : {}),
    ...(opts.threads ? { threads: opts.threads } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.onMessage ? { onMessage: opts.onMessage } : {}),
    ...(opts.progress ? { progressStream: opts.progress } : {}),
  };
  const within = <T>(fn: () => Promise<T>): Promise<T> => withContext(context, fn);
  const backend = await within(() => initBackend());
  return {
    backend,
    train: (o) => within(() => trainTransfer(o)),
    finetune: (o) => within(() => finetune(o)),
    trainCustom: (o) => within(() => trainCustom(o)),
    info: () => within(() => runtimeInfo()),
    load: (runDir) =>
      within(async () => {
        const run = await openRun(runDir);
        return {
          dir: run.dir,
          labels: run.labels,
          config: run.config,
          classify: (paths, topK) =>
            within(async () => {
              const files = await expandImagePaths(typeof paths === 'string' ? [paths] : paths);
              return (await predictFiles(run, files, { topK })).predictions;
            }),
          evaluate: (dataDir) => within(() => evaluateRun(run, dataDir)),
          dispose: () => run.model.dispose(),
        };
      }),
  };
}
