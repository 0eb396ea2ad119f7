/**
 * Training throughput of the Fashion-MNIST seed CNN (93,322 parameters, batch 32, Adam 1e-3,
 * sparse cross-entropy) through tl's own training loop (`fit`, the fused Adam, real Fashion-MNIST
 * images): on wasm with 1 and 2 threads, on the pure-JS cpu backend for a few batches, and the same
 * architecture in PyTorch with 2 threads (scripts/bench_train_torch.py), one after the other.
 *
 *   scripts/bench-train [--batches 300] [--warmup 20] [--cpu-batches 2] [--threads 1,2] [--rounds 2]
 *                       [--torch-threads 1,2] [--python /usr/bin/python3] [--no-cpu]
 *
 * The machine may be shared, so wasm and torch alternate `--rounds` times and each keeps its best
 * rate; the 1-minute load average is printed with every measurement. Every configuration runs in
 * a fresh process (the wasm thread count is fixed when the backend starts).
 * Last line: `ratio wasm/torch: X`, the best wasm rate over the best torch rate, whichever thread
 * counts won: on a loaded machine torch's 2-thread OpenMP loop can fall to a tenth of its 1-thread
 * rate, and a ratio against that alone would flatter wasm.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = path.join(process.env.TL_SHARED ? path.resolve(process.env.TL_SHARED) : path.resolve(repoRoot, '..', 'shared'), 'datasets', 'fashion-mnist');
const BATCH = 32;

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '20' },
    'cpu-batches': { type: 'string', default: '2' },
    threads: { type: 'string', default: '1,2' },
    'torch-threads': { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '2' },
    python: { type: 'string' },
    'no-cpu': { type: 'boolean', default: false },
    worker: { type: 'string' },
  },
});

interface Measurement {
  imagesPerSecond: number;
}

/** Child process: train `batches` batches after `warmup` on one backend and print the rate as JSON. */
async function worker(backend: 'wasm' | 'cpu', threads: number, warmup: number, batches: number): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { initBackend } = await import('../src/runtime/backend.js');
  const { readIdxImages, readIdxLabels } = await import('../src/data/idx.js');
  const { byteImageSource } = await import('../src/data/array-source.js');
  const { buildCustomModel } = await import('../src/models/custom.js');
  const { fit } = await import('../src/training/loop.js');
  // The thread count users set: TL_WASM_THREADS, read by initBackend.
  if (backend === 'wasm') process.env.TL_WASM_THREADS = String(threads);
  await initBackend(backend);
  const images = await readIdxImages(path.join(dataDir, 'train-images-idx3-ubyte.gz'));
  const labels = await readIdxLabels(path.join(dataDir, 'train-labels-idx1-ubyte.gz'));
  const data = { images: images.data, labels, height: images.height, width: images.width };
  const rows = (from: number, count: number) => Int32Array.from({ length: count * BATCH }, (_, i) => from * BATCH + i);
  const scaling = { scale: 1 / 255, offset: 0 };
  tf.util.assert(images.count >= (warmup + batches) * BATCH, () => 'not enough images for that many batches');
  const model = buildCustomModel({ model: 'seed-cnn' }, [28, 28, 1], 10);
  const opts = { epochs: 1, batchSize: BATCH, lr: 1e-3, seed: 1 };
  await fit(model, byteImageSource(data, rows(0, warmup), scaling), opts);
  const result = await fit(model, byteImageSource(data, rows(warmup, batches), scaling), opts);
  const m: Measurement = { imagesPerSecond: result.history[0]!.imagesPerSecond };
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

function lastJsonLine<T>(stdout: string, what: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${what} printed no result:\n${stdout}`);
  }
}

function run(what: string, command: string, argv: string[]): Measurement {
  const r = spawnSync(command, argv, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stderr}`);
  return lastJsonLine<Measurement>(r.stdout, what);
}

function tl(backend: string, threads: number, warmup: number, batches: number): Measurement {
  const argv = ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', backend, '--threads', String(threads), '--warmup', String(warmup), '--batches', String(batches)];
  return run(`${backend} (${threads} threads)`, process.execPath, argv);
}

/** A python that has torch: --python, TL_PYTHON, python3 on PATH, then Debian's /usr/bin/python3. */
function torchPython(): string | undefined {
  const candidates = [args.python, process.env.TL_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  return candidates.find((python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
}

const load = () => os.loadavg()[0]!.toFixed(2);
const threadsLabel = (t: number) => `${t} thread${t === 1 ? '' : 's'}`;

async function main(): Promise<void> {
  const batches = Number(args.batches);
  const warmup = Number(args.warmup);
  if (args.worker) {
    await worker(args.worker as 'wasm' | 'cpu', Number(args.threads), warmup, batches);
    return;
  }
  if (!existsSync(dataDir)) throw new Error(`Fashion-MNIST not found in ${dataDir} (set TL_SHARED)`);
  const wasmThreads = args.threads.split(',').map(Number);
  const torchThreads = args['torch-threads'].split(',').map(Number);
  const python = torchPython();
  const best = { wasm: 0, torch: 0 };
  for (let round = 1; round <= Number(args.rounds); round++) {
    for (const threads of wasmThreads) {
      const before = load();
      const m = tl('wasm', threads, warmup, batches);
      best.wasm = Math.max(best.wasm, m.imagesPerSecond);
      console.log(`wasm (${threadsLabel(threads)}, round ${round}): ${m.imagesPerSecond.toFixed(1)} img/s (${batches} batches; load ${before} -> ${load()})`);
    }
    for (const threads of python ? torchThreads : []) {
      const before = load();
      const script = path.join(repoRoot, 'scripts', 'bench_train_torch.py');
      const m = run('torch', python!, [script, '--data', dataDir, '--batches', String(batches), '--warmup', String(warmup), '--threads', String(threads)]);
      best.torch = Math.max(best.torch, m.imagesPerSecond);
      console.log(`torch (${threadsLabel(threads)}, round ${round}): ${m.imagesPerSecond.toFixed(1)} img/s (${batches} batches; load ${before} -> ${load()})`);
    }
  }
  if (!args['no-cpu']) {
    const before = load();
    const m = tl('cpu', 1, 1, Number(args['cpu-batches']));
    console.log(`cpu (pure JS): ${m.imagesPerSecond.toFixed(2)} img/s (${args['cpu-batches']} batches; load ${before} -> ${load()})`);
  }
  if (!python) console.log('torch: not measured (no python with torch; pass --python)');
  console.log(`ratio wasm/torch: ${best.torch > 0 ? (best.wasm / best.torch).toFixed(2) : 'n/a'}`);
}

await main();
