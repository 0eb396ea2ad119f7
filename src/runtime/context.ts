import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Where a tl operation reports, and what it runs on, for the length of that operation only. The
 * library writes nothing to the terminal and reads no process-wide setting it did not get here:
 * a caller passes sinks (callbacks) and choices, the CLI passes the console. Carried by
 * AsyncLocalStorage, so two operations in one process can report to different places.
 */
export interface TlContext {
  /** Structured events, one object each: batch, epoch, evaluation, report (the CLI's --log-json). */
  onEvent?: (event: Record<string, unknown>) => void;
  /** Lines for a person: epoch summaries, schedule changes, fallbacks (the CLI prints them on stderr). */
  onMessage?: (line: string) => void;
  /** Progress bars or periodic lines go to this stream; without one, progress is silent. */
  progressStream?: NodeJS.WriteStream;
  /** The tensor backend to start ('tensorflow', 'wasm', 'cpu'); default: TL_BACKEND, else the fastest that loads. */
  backend?: string;
  /** The inference engine ('onnxruntime', 'tfjs'); default: TL_ENGINE, else onnxruntime where it loads. */
  engine?: string;
  /** Threads for the engine and backend; default: TL_THREADS, else the available cores. */
  threads?: string | number;
}

const storage = new AsyncLocalStorage<TlContext>();

/** The context of the operation running now; an empty one (silent, defaults) outside any. */
export function currentContext(): TlContext {
  return storage.getStore() ?? {};
}

/** Run `fn` with `context` layered over the current one. */
export function withContext<T>(context: TlContext, fn: () => T): T {
  return storage.run({ ...currentContext(), ...context }, fn);
}

export function emitEvent(event: Record<string, unknown>): void {
  currentContext().onEvent?.({ time: new Date().toISOString(), ...event });
}

export function emitMessage(line: string): void {
  currentContext().onMessage?.(line);
}
