/**
 * Training throughput of the Fashion-MNIST seed CNN (93,322 parameters, batch 32, Adam 1e-3,
 * sparse cross-entropy) through tl's own training loop (`fit`, the fused Adam, real Fashion-MNIST
 * images): on wasm, on the pure-JS cpu backend for a few batches, and the same architecture in
 * PyTorch (scripts/bench_train_torch.py), at the same thread counts (1 and 2).
 *
 *   scripts/bench-train [--batches 300] [--warmup 20] [--cpu-batches 2] [--threads 1,2] [--rounds 2]
 *                       [--python /usr/bin/python3] [--no-cpu]
 *
 * The machine may be shared, so wasm and torch alternate (per round and thread count) and each
 * keeps its best rate; the 1-minute load average is printed with every measurement. Every
 * configuration runs in a fresh process (the wasm thread count is fixed when the backend starts).
 * Last line: `ratio wasm/torch: X`, the worst over the thread counts of wasm's rate over torch's at
 * the same count.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { alternate, measure, printRatios, repoRoot, threadsLabel, timedLine, torchPython, type Measurement } from './bench-common.js';

const dataDir = path.join(process.env.TL_SHARED ? path.resolve(process.env.TL_SHARED) : path.resolve(repoRoot, '..', 'shared'), 'datasets', 'fashion-mnist');
const BATCH = 32;

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '20' },
    'cpu-batches': { type: 'string', default: '2' },
    threads: { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '2' },
    python: { type: 'string' },
    'no-cpu': { type: 'boolean', default: false },
    worker: { type: 'string' },
  },
});

/** Child process: train `batches` batches after `warmup` on one backend and print the rate as JSON. */
async function worker(backend: 'wasm' | 'cpu', threads: number, warmup: number, batches: number): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { initBackend } = await import('../src/runtime/backend.js');
  const { readIdxImages, readIdxLabels } = await import('../src/data/idx.js');
  const { byteImageSource } = await import('../src/data/array-source.js');
  const { buildCustomModel } = await import('../src/models/custom.js');
  const { fit } = await import('../src/training/loop.js');
  const { withContext } = await import('../src/runtime/context.js');
  await withContext({ threads }, () => initBackend(backend));
  const images = await readIdxImages(path.join(dataDir, 'train-images-idx3-ubyte.gz'));
  const labels = await readIdxLabels(path.join(dataDir, 'train-labels-idx1-ubyte.gz'));
  const data = { images: images.data, labels, height: images.height, width: images.width };
  const rows = (from: number, count: number) => Int32Array.from({ length: count * BATCH }, (_, i) => from * BATCH + i);
  const scaling = { scale: 1 / 255, offset: 0 };
  tf.util.assert(images.count >= (warmup + batches) * BATCH, () => 'not enough images for that many batches');
  const model = buildCustomModel({ model: 'seed-cnn' }, [28, 28, 1], 10);
  const opts = { epochs: 1, batchSize: BATCH, lr: 1e-3, seed: 1 };
  await fit(model, byteImageSource(data, rows(0, warmup), scaling), opts);
  const cpu = process.cpuUsage();
  const result = await fit(model, byteImageSource(data, rows(warmup, batches), scaling), opts);
  const { user, system } = process.cpuUsage(cpu);
  const m: Measurement = { imagesPerSecond: result.history[0]!.imagesPerSecond, cpuMsPerImage: (user + system) / 1000 / (batches * BATCH) };
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

function tl(backend: string, threads: number, warmup: number, batches: number): Measurement {
  const argv = ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', backend, '--threads', String(threads), '--warmup', String(warmup), '--batches', String(batches)];
  return measure(`${backend} (${threadsLabel(threads)})`, process.execPath, argv);
}

async function main(): Promise<void> {
  const batches = Number(args.batches);
  const warmup = Number(args.warmup);
  if (args.worker) {
    await worker(args.worker as 'wasm' | 'cpu', Number(args.threads), warmup, batches);
    return;
  }
  if (!existsSync(dataDir)) throw new Error(`Fashion-MNIST not found in ${dataDir} (set TL_SHARED)`);
  const threadCounts = args.threads.split(',').map(Number);
  const python = torchPython(args.python);
  const script = path.join(repoRoot, 'scripts', 'bench_train_torch.py');
  const best = alternate(Number(args.rounds), threadCounts.map((threads) => ({
    label: threadsLabel(threads),
    key: String(threads),
    detail: `${batches} batches`,
    wasm: () => tl('wasm', threads, warmup, batches),
    torch: python ? () => measure('torch', python, [script, '--data', dataDir, '--batches', String(batches), '--warmup', String(warmup), '--threads', String(threads)]) : undefined,
  })));
  if (!args['no-cpu']) timedLine('cpu (pure JS)', `${args['cpu-batches']} batches`, () => tl('cpu', 1, 1, Number(args['cpu-batches'])));
  if (!python) console.log('torch: not measured (no python with torch; pass --python)');
  printRatios(best, threadCounts.map((t) => ({ label: threadsLabel(t), key: String(t), decides: true })));
}

await main();
