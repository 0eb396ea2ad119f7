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
  /** Runs the tasks at the same time, each thread taking the next one left; returns when all are done. */
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

// The pool's control block, shared by the caller and every helper. Int32 words: the claim word
// (run generation << INDEX_BITS | next task index), the task count, the tasks done, a failed flag,
// the posted sequence helpers sleep on, then per helper its start state (1 ready, -1 could not
// start). Then float64 words: per task the offset of its calls, then each task's call count and
// per call its export index, argument count and arguments.
const CLAIM = 0;
const COUNT = 1;
const DONE = 2;
const FAILED = 3;
const POSTED = 4;
const STARTED = 5;
const INDEX_BITS = 12;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
/** The claim word of a closed run (being written, or over): an index no task has. */
const CLOSED = INDEX_MASK;
const GENERATIONS = 1 << (31 - INDEX_BITS);
/** How long the first task waits for a helper to start before the caller does the work itself. */
const START_TIMEOUT_MS = 10_000;
const MAX_WORDS = INDEX_MASK + 1;

type RunCall = (kernel: number, args: number[]) => void;

/**
 * Both sides' claim loop: take the next task of the open run (a compare-and-swap on the claim word,
 * so a task runs once, and never one of a run that has closed), run it, count it done. The caller
 * waits only for tasks a helper has claimed, not for helpers to wake: one that wakes late finds the
 * tasks taken and sleeps again. Which thread runs which task changes no result, as each task writes
 * its own part (REDUCTION_SHARES). The helpers run this function's source, with the same constants.
 */
function claimAndRun(state: Int32Array, words: Float64Array, run: RunCall): void {
  for (;;) {
    const claim = Atomics.load(state, CLAIM);
    const index = claim & INDEX_MASK;
    if (index >= Atomics.load(state, COUNT)) return;
    if (Atomics.compareExchange(state, CLAIM, claim, claim + 1) !== claim) continue;
    try {
      let p = words[index]!;
      const calls = words[p++]!;
      for (let c = 0; c < calls; c++) {
        const argCount = words[p + 1]!;
        run(words[p]!, Array.from(words.subarray(p + 2, p + 2 + argCount)));
        p += 2 + argCount;
      }
    } catch {
      Atomics.store(state, FAILED, 1);
    }
    if (Atomics.add(state, DONE, 1) + 1 === Atomics.load(state, COUNT)) Atomics.notify(state, DONE);
  }
}

/**
 * The helper's whole program. It sleeps on the posted sequence (Atomics.wait: no event loop, no
 * message passing, a wake-up costs a futex), then claims tasks of the open run beside the caller,
 * running them on its own instance of simd.wat over the same memory.
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, names, helper, stateWords, wordsOffset } = workerData;
const [CLAIM, COUNT, DONE, FAILED, INDEX_MASK] = [${CLAIM}, ${COUNT}, ${DONE}, ${FAILED}, ${INDEX_MASK}];
${claimAndRun.toString()}
const state = new Int32Array(control, 0, stateWords);
const words = new Float64Array(control, wordsOffset);
let kernels;
try {
  kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
  Atomics.store(state, ${STARTED} + helper, 1);
} catch {
  Atomics.store(state, ${STARTED} + helper, -1);
}
Atomics.notify(state, ${STARTED} + helper);
let seen = 0;
while (kernels) {
  Atomics.wait(state, ${POSTED}, seen);
  seen = Atomics.load(state, ${POSTED});
  claimAndRun(state, words, (kernel, args) => kernels[names[kernel]](...args));
}
`;

/** Writes the task table: each task's offset, then its calls. */
function writeTasks(words: Float64Array, names: string[], tasks: SimdTask[]): void {
  let p = tasks.length;
  tasks.forEach((task, i) => {
    words[i] = p;
    const size = task.reduce((n, call) => n + 2 + call.args.length, 1);
    if (p + size > MAX_WORDS) throw new Error('simd pool: tasks too long for the control block');
    words[p++] = task.length;
    for (const { kernel, args } of task) {
      words[p] = names.indexOf(kernel);
      words[p + 1] = args.length;
      words.set(args, p + 2);
      p += 2 + args.length;
    }
  });
}

/** How many of the helpers have started, waiting for each the first time (up to START_TIMEOUT_MS). */
function startedHelpers(state: Int32Array, helpers: number): number {
  let started = 0;
  for (let h = 0; h < helpers; h++) {
    if (Atomics.load(state, STARTED + h) === 0) Atomics.wait(state, STARTED + h, 0, START_TIMEOUT_MS);
    if (Atomics.load(state, STARTED + h) === 1) started++;
  }
  return started;
}

/**
 * A pool of `threads - 1` helpers beside the calling thread, each with simd.wat on `memory`
 * (shared). A helper that cannot start (no wasm SIMD in workers, or not within 10 s) is left out
 * and the others, the caller included, take its tasks.
 */
export function threadPool(simd: SimdKernels, module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number): SimdPool {
  const names = Object.keys(simd);
  const helpers = threads - 1;
  const stateWords = STARTED + helpers;
  const wordsOffset = Math.ceil((stateWords * 4) / 8) * 8;
  const control = new SharedArrayBuffer(wordsOffset + MAX_WORDS * 8);
  const state = new Int32Array(control, 0, stateWords);
  const words = new Float64Array(control, wordsOffset);
  Atomics.store(state, CLAIM, CLOSED);
  for (let helper = 0; helper < helpers; helper++) {
    // unref: a helper parked in Atomics.wait must never keep the process alive.
    new Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, control, names, helper, stateWords, wordsOffset } }).unref();
  }
  const runHere: RunCall = (kernel, args) => (simd[names[kernel] as keyof SimdKernels] as (...a: number[]) => void)(...args);
  let started: number | undefined;
  let generation = 0;
  return {
    threads,
    run(tasks) {
      started ??= startedHelpers(state, helpers);
      writeTasks(words, names, tasks);
      generation = (generation + 1) % GENERATIONS;
      Atomics.store(state, DONE, 0);
      Atomics.store(state, FAILED, 0);
      Atomics.store(state, COUNT, tasks.length);
      Atomics.store(state, CLAIM, generation << INDEX_BITS);
      if (started > 0 && tasks.length > 1) {
        Atomics.add(state, POSTED, 1);
        Atomics.notify(state, POSTED);
      }
      claimAndRun(state, words, runHere);
      // Wait for the tasks helpers claimed, so none still writes to the heap once the caller moves on.
      for (let done = Atomics.load(state, DONE); done < tasks.length; done = Atomics.load(state, DONE)) Atomics.wait(state, DONE, done);
      Atomics.store(state, CLAIM, CLOSED);
      if (Atomics.load(state, FAILED)) throw new Error('a wasm SIMD kernel failed');
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

/**
 * Runs `task` on shares of `count` items (images, matrix rows) that the pool's threads take in
 * turn: four per thread, so one that starts late (a helper waking, a core taken) leaves its
 * shares to the others rather than keeping them waiting.
 */
export function runSplit(pool: SimdPool, count: number, task: (share: Share, part: number) => SimdTask): void {
  pool.run(splitRange(0, count, pool.threads === 1 ? 1 : 4 * pool.threads).map(task));
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
