import { Worker } from 'node:worker_threads';
import type { SimdKernels } from './simd-kernels.js';

/** One call of a simd.wat export; i32 and f32 arguments alike travel as float64. */
export interface SimdCall {
  kernel: keyof SimdKernels;
  args: number[];
}

/** Calls run in order on one thread. */
export type SimdTask = SimdCall[];

/**
 * Runs simd.wat's loops on several threads at once over the backend's shared wasm memory. XNNPACK
 * spreads its own products over its thread pool, but tl's loops (the filter gradients' patch
 * matrices and products above all) ran on the calling thread alone, so on 2 threads they were about
 * half of a seed-CNN training step.
 */
export interface SimdPool {
  /** Threads a `run` spreads over, the caller's included. */
  readonly threads: number;
  /**
   * Runs the tasks at the same time, each thread taking a contiguous group of them in order (the
   * first group here, the others on helper threads); returns when all are done.
   */
  run(tasks: SimdTask[]): void;
}

/** Runs every task on the calling thread: no shared memory, or one thread. */
export function serialPool(simd: SimdKernels): SimdPool {
  return { threads: 1, run: (tasks) => tasks.forEach((task) => runTask(simd, task)) };
}

/** Runs a task's calls in order on the calling thread. */
export function runTask(simd: SimdKernels, task: SimdTask): void {
  for (const { kernel, args } of task) (simd[kernel] as (...a: number[]) => void)(...args);
}

// A helper's control block: Int32 words [posted sequence, finished sequence, failed flag, started:
// 1 ready, -1 could not start], then float64 words: the call count, then per call its export index,
// argument count and arguments.
const POSTED = 0;
const FINISHED = 1;
const FAILED = 2;
const STARTED = 3;
/** How long the first task waits for a helper to start before the caller does the work itself. */
const START_TIMEOUT_MS = 10_000;
const HEADER_BYTES = 16;
const MAX_WORDS = 1024;

/**
 * The helper's whole program. It waits on the control block (Atomics.wait: no event loop, no
 * message passing, a wake-up costs a futex), runs what was posted on its own instance of simd.wat
 * over the same memory, and publishes the sequence number it finished.
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, names } = workerData;
const state = new Int32Array(control, 0, 4);
const words = new Float64Array(control, ${HEADER_BYTES});
let kernels;
try {
  kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
  Atomics.store(state, ${STARTED}, 1);
} catch {
  Atomics.store(state, ${STARTED}, -1);
}
Atomics.notify(state, ${STARTED});
let seen = 0;
while (kernels) {
  Atomics.wait(state, ${POSTED}, seen);
  seen = Atomics.load(state, ${POSTED});
  try {
    let p = 1;
    for (let c = 0; c < words[0]; c++) {
      const kernel = kernels[names[words[p]]];
      const args = Array.from(words.subarray(p + 2, p + 2 + words[p + 1]));
      p += 2 + words[p + 1];
      kernel(...args);
    }
  } catch {
    Atomics.store(state, ${FAILED}, 1);
  }
  Atomics.store(state, ${FINISHED}, seen);
  Atomics.notify(state, ${FINISHED});
}
`;

class Helper {
  private readonly state: Int32Array;
  private readonly words: Float64Array;
  private sequence = 0;

  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, private readonly names: string[]) {
    const control = new SharedArrayBuffer(HEADER_BYTES + MAX_WORDS * 8);
    this.state = new Int32Array(control, 0, 4);
    this.words = new Float64Array(control, HEADER_BYTES);
    // unref: a helper parked in Atomics.wait must never keep the process alive.
    new Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, control, names } }).unref();
  }

  /**
   * Whether the helper runs tasks: it has started (waiting for that the first time), rather than
   * failed to (no wasm SIMD in workers, say) or not started in time, when the caller works alone.
   */
  ready(): boolean {
    if (Atomics.load(this.state, STARTED) === 0) Atomics.wait(this.state, STARTED, 0, START_TIMEOUT_MS);
    return Atomics.load(this.state, STARTED) === 1;
  }

  post(task: SimdTask): void {
    let p = 1;
    for (const { kernel, args } of task) {
      if (p + 2 + args.length > MAX_WORDS) throw new Error('simd pool: task too long for the control block');
      this.words[p] = this.names.indexOf(kernel);
      this.words[p + 1] = args.length;
      this.words.set(args, p + 2);
      p += 2 + args.length;
    }
    this.words[0] = task.length;
    Atomics.store(this.state, POSTED, ++this.sequence);
    Atomics.notify(this.state, POSTED);
  }

  /** Blocks until the posted task is done; false if it threw. */
  wait(): boolean {
    for (let done = Atomics.load(this.state, FINISHED); done !== this.sequence; done = Atomics.load(this.state, FINISHED)) {
      Atomics.wait(this.state, FINISHED, done);
    }
    return Atomics.exchange(this.state, FAILED, 0) === 0;
  }
}

/** A pool of `threads - 1` helpers beside the calling thread, each with simd.wat on `memory` (shared). */
export function threadPool(simd: SimdKernels, module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number): SimdPool {
  const names = Object.keys(simd);
  let helpers = Array.from({ length: threads - 1 }, () => new Helper(module, memory, names));
  let checked = false;
  return {
    threads,
    run(ungrouped) {
      if (!checked) {
        helpers = helpers.filter((helper) => helper.ready());
        checked = true;
      }
      const tasks = splitRange(0, ungrouped.length, threads).map(({ first, count }) => ungrouped.slice(first, first + count).flat());
      const posted = helpers.slice(0, tasks.length - 1);
      posted.forEach((helper, i) => helper.post(tasks[i + 1]!));
      try {
        runTask(simd, tasks[0] ?? []);
        tasks.slice(posted.length + 1).forEach((task) => runTask(simd, task));
      } finally {
        // Always wait, so no helper still writes to the heap once the caller moves on.
        const failed = posted.map((helper) => helper.wait()).some((ok) => !ok);
        if (failed) throw new Error('a wasm SIMD kernel failed on a helper thread');
      }
    },
  };
}

/** [first, first + count) split into at most `parts` nonempty contiguous ranges, sizes within one. */
export function splitRange(first: number, count: number, parts: number): Share[] {
  const n = Math.max(1, Math.min(parts, count));
  return Array.from({ length: n }, (_, i) => {
    const from = first + Math.floor((count * i) / n);
    return { first: from, count: first + Math.floor((count * (i + 1)) / n) - from };
  });
}

export type Share = { first: number; count: number };

/** Runs `task` once per thread on that thread's share of `count` items (images, matrix rows). */
export function runSplit(pool: SimdPool, count: number, task: (share: Share, part: number) => SimdTask): void {
  pool.run(splitRange(0, count, pool.threads).map(task));
}

/**
 * How many partial sums a reduction over the batch (a filter or bias gradient) is split into,
 * whatever the thread count. Each share adds up its items in order into a copy of its own and the
 * copies are added in order, so the sum has the same bits on 1 thread as on 8: a run resumed on
 * another thread count (the load rule may pick one thread), or repeated with another `--threads`,
 * ends with the same weights. 8 keeps up to 8 threads busy; fewer threads take several shares each.
 */
export const REDUCTION_SHARES = 8;

/** [0, count) split into the reduction's shares (at most REDUCTION_SHARES, fewer for fewer items). */
export function reductionShares(count: number): Share[] {
  return splitRange(0, count, REDUCTION_SHARES);
}

/** Runs `task` once per reduction share of `count` items, the shares spread over the pool's threads. */
export function runShares(pool: SimdPool, count: number, task: (share: Share, part: number) => SimdTask): void {
  pool.run(reductionShares(count).map(task));
}
