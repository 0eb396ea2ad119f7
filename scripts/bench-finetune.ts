/**
 * Fine-tuning speed: one training step of MobileNet v1 (alpha 0.25 and 1.0, 150x150, batch 32,
 * random seeded weights) plus tl's transfer head (GAP -> Dense 1024 ReLU -> Dense 5), the whole base
 * trainable, every BatchNormalization on its moving statistics (gamma/beta train), Adam, through
 * tl's own loop (`fit` with batchNorm 'inference', as `tl finetune` runs it) on wasm, against the
 * same network in PyTorch (scripts/bench_finetune_torch.py) at the same thread counts.
 *
 *   scripts/bench-finetune [--alphas 0.25,1] [--threads 1,2] [--rounds 2] [--batches 6] [--warmup 2]
 *                          [--python /usr/bin/python3]
 *
 * Images are random (a few batches made once, cycled): decoding is not measured here. tl and torch
 * alternate per round and thread count; each keeps its best rate. Last line: `ratio wasm/torch: X`,
 * the worst of the alphas at 2 threads (the last of --threads).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { alternate, measure, printRatios, repoRoot, threadsLabel, torchPython } from './bench-common.js';

const BATCH = 32;
const SIZE = 150;
const CLASSES = 5;
const LR = 1e-5;

const { values: args } = parseArgs({
  options: {
    alphas: { type: 'string', default: '0.25,1' },
    threads: { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '2' },
    batches: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    python: { type: 'string' },
    worker: { type: 'boolean', default: false },
    alpha: { type: 'string' },
  },
});

/** Child process: fine-tune `batches` batches after `warmup` on wasm with `threads` threads; print the rate. */
async function worker(alpha: number, threads: number, warmup: number, batches: number): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { withContext } = await import('../src/runtime/context.js');
  const { initBackend } = await import('../src/runtime/backend.js');
  const { getBackbone } = await import('../src/backbones/index.js');
  const { buildHead, joinBaseAndHead } = await import('../src/models/head.js');
  const { unfreeze } = await import('../src/training/finetune.js');
  const { fit } = await import('../src/training/loop.js');
  const { Rng } = await import('../src/util/rng.js');
  await withContext({ threads }, async () => {
    await initBackend('wasm');
    const base = getBackbone('mobilenet').build({ alpha, inputShape: [SIZE, SIZE, 3], seed: 1 });
    const head = buildHead({ featureShape: base.outputs[0]!.shape.slice(1) as number[], classes: CLASSES, seed: 1 });
    const model = joinBaseAndHead(base, head, 'bench');
    unfreeze(model, 'all');
    const rng = new Rng(1);
    const pool = Array.from({ length: 4 }, () => ({
      x: Float32Array.from({ length: BATCH * SIZE * SIZE * 3 }, () => rng.next() * 2 - 1),
      y: Int32Array.from({ length: BATCH }, () => rng.int(CLASSES)),
    }));
    const source = (count: number) => ({
      size: count * BATCH,
      async *batches() {
        for (let i = 0; i < count; i++) {
          const { x, y } = pool[i % pool.length]!;
          yield { x: tf.tensor4d(x, [BATCH, SIZE, SIZE, 3]), y: tf.tensor1d(y, 'int32') };
        }
      },
    });
    const opts = { epochs: 1, batchSize: BATCH, lr: LR, seed: 1, batchNorm: 'inference' as const };
    await fit(model, source(warmup), opts);
    const cpu = process.cpuUsage();
    const result = await fit(model, source(batches), opts);
    const { user, system } = process.cpuUsage(cpu);
    const cpuMsPerImage = (user + system) / 1000 / (batches * BATCH);
    process.stdout.write(`${JSON.stringify({ imagesPerSecond: result.history[0]!.imagesPerSecond, cpuMsPerImage })}\n`);
  });
}

async function main(): Promise<void> {
  const [batches, warmup] = [Number(args.batches), Number(args.warmup)];
  if (args.worker) return worker(Number(args.alpha), Number(args.threads), warmup, batches);
  const alphas = args.alphas.split(',').map(Number);
  const threadCounts = args.threads.split(',').map(Number);
  const python = torchPython(args.python);
  const script = path.join(repoRoot, 'scripts', 'bench_finetune_torch.py');
  const self = fileURLToPath(import.meta.url);
  const common = (alpha: number, threads: number) => ['--alpha', String(alpha), '--threads', String(threads), '--batches', String(batches), '--warmup', String(warmup)];
  const contests = alphas.flatMap((alpha) =>
    threadCounts.map((threads) => ({
      label: `alpha ${alpha}, ${threadsLabel(threads)}`,
      key: `${alpha}/${threads}`,
      detail: `${batches} batches`,
      wasm: () => measure(`wasm alpha ${alpha}`, process.execPath, ['--import', 'tsx', self, '--worker', ...common(alpha, threads)]),
      torch: python ? () => measure(`torch alpha ${alpha}`, python, [script, ...common(alpha, threads)]) : undefined,
    })),
  );
  const best = alternate(Number(args.rounds), contests);
  if (!python) console.log('torch: not measured (no python with torch; pass --python)');
  const last = threadCounts[threadCounts.length - 1]!;
  const configurations = threadCounts.flatMap((threads) =>
    alphas.map((alpha) => ({ label: `alpha ${alpha}, ${threadsLabel(threads)}`, key: `${alpha}/${threads}`, decides: threads === last })),
  );
  printRatios(best, configurations);
}

await main();
