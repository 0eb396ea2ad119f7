import os from 'node:os';
import { TlError } from '../util/errors.js';
import { currentContext } from './context.js';

/** How many threads an engine or backend runs on, and why (`tl info` prints both). */
export interface ThreadChoice {
  threads: number;
  reason: string;
}

/** Where an explicit thread count can come from, strongest first. TL_WASM_THREADS is the older name. */
function explicitSetting(): { raw: string; source: string } | undefined {
  const fromContext = currentContext().threads?.toString();
  if (fromContext) return { raw: fromContext, source: '--threads' };
  for (const name of ['TL_THREADS', 'TL_WASM_THREADS']) {
    const raw = process.env[name];
    if (raw) return { raw, source: name };
  }
  return undefined;
}

/** --threads / TL_THREADS / TL_WASM_THREADS when one is set; a bad value is a one-line error. */
export function requestedThreads(): ThreadChoice | undefined {
  const setting = explicitSetting();
  if (!setting) return undefined;
  const n = Number(setting.raw);
  if (!(Number.isInteger(n) && n >= 1)) throw new TlError(`--threads (TL_THREADS) must be a positive integer (got ${setting.raw})`);
  return { threads: n, reason: setting.source };
}

/** The explicit setting, else every core this process may use. */
export function threadChoice(): ThreadChoice {
  return requestedThreads() ?? { threads: os.availableParallelism(), reason: 'available cores' };
}

/**
 * The wasm backend's XNNPACK pool: the explicit setting, else every core, unless the 1-minute load
 * average says other processes already keep every core busy. The pool's workers spin-wait between
 * operations (pthreadpool's spin is compiled into tfjs's wasm and cannot be turned off), so on
 * cores that are all taken they steal time from the thread doing the work; one thread is then the
 * faster choice (measured in the README's Benchmarks).
 */
export function wasmThreadChoice(): ThreadChoice {
  const requested = requestedThreads();
  if (requested) return requested;
  const cores = os.availableParallelism();
  const load = os.loadavg()[0]!;
  if (cores > 1 && load >= cores) return { threads: 1, reason: `load average ${load.toFixed(1)} on ${cores} cores: busy; --threads ${cores} to use them all` };
  return { threads: cores, reason: 'available cores' };
}
