/**
 * Frozen-base feature extraction speed (what `tl train` spends its first pass on): MobileNet v1
 * at 150x150, alpha 0.25 and 1.0, random weights, batch 32, on the wasm backend, through the
 * fused inference plan tl uses (BatchNorm folded into the convolutions, conv+bias+ReLU6 as one
 * kernel) and through the stock layers model for reference. Then the same architecture in
 * PyTorch (scripts/bench_features_torch.py, 2 threads) in the same run, one after the other.
 *
 *   scripts/bench-features [--images 320] [--batch 32] [--size 150] [--python /usr/bin/python3]
 *
 * The machine is shared, so each side times every batch and keeps its fastest, over `--rounds`
 * alternating rounds.
 * Last line: `ratio wasm/torch: X`, the lower of the two MobileNets' fused-wasm/torch ratios.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getBackbone } from '../src/backbones/index.js';
import { compileInference } from '../src/models/fused.js';
import { initBackend, runtimeInfo } from '../src/runtime/backend.js';

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '320' },
    batch: { type: 'string', default: '32' },
    size: { type: 'string', default: '150' },
    python: { type: 'string' },
    rounds: { type: 'string', default: '2' },
  },
});
const images = Number(args.images);
const batch = Number(args.batch);
const size = Number(args.size);
const rounds = Number(args.rounds);
const ALPHAS = [0.25, 1.0];

/**
 * Images per second of `run` on its fastest batch of `images / batch` (after one warm-up batch):
 * the machine is shared, and the slowest batches measure the neighbours. The torch side does the same.
 */
async function rate(run: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): Promise<number> {
  const warm = run(x);
  await warm.data();
  warm.dispose();
  let best = Infinity;
  for (let i = 0; i < Math.max(1, Math.round(images / batch)); i++) {
    const start = performance.now();
    const y = run(x);
    await y.data();
    y.dispose();
    best = Math.min(best, performance.now() - start);
  }
  return batch / (best / 1000);
}

async function wasmRates(): Promise<Map<number, { fused: number; stock: number }>> {
  await initBackend('wasm');
  // TL_WASM_THREADS=2 gives wasm the two threads torch gets; the default is one.
  const threads = (await runtimeInfo()).threads;
  const spec = getBackbone('mobilenet');
  const out = new Map<number, { fused: number; stock: number }>();
  for (const alpha of ALPHAS) {
    const model = spec.build({ inputShape: [size, size, 3], alpha, seed: 1 });
    const plan = compileInference(model);
    const x = tf.randomUniform([batch, size, size, 3], -1, 1);
    const fused = await rate((t) => plan.run(t), x);
    const stock = await rate((t) => model.predict(t) as tf.Tensor, x);
    console.log(`wasm (${threads} thread${threads > 1 ? 's' : ''}) mobilenet ${alpha}: ${fused.toFixed(1)} images/s fused (stock layers model ${stock.toFixed(1)})`);
    out.set(alpha, { fused, stock });
    x.dispose();
    plan.dispose();
    model.dispose();
  }
  return out;
}

/** A python that has torch: --python, TL_PYTHON, then python3 on PATH, then Debian's /usr/bin/python3. */
function torchPython(): string {
  const candidates = [args.python, process.env.TL_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const python of candidates) {
    if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return python;
  }
  throw new Error(`no python with torch found (tried ${candidates.join(', ')}); install python3-torch or pass --python`);
}

function torchRates(): Map<number, number> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench_features_torch.py');
  const text = execFileSync(
    torchPython(),
    [script, '--alphas', ALPHAS.join(','), '--size', String(size), '--batch', String(batch), '--images', String(images), '--threads', '2'],
    { encoding: 'utf8' },
  );
  process.stdout.write(text);
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^torch mobilenet ([\d.]+): ([\d.]+) images\/s/gm)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

const best = { wasm: new Map<number, number>(), torch: new Map<number, number>() };
const keepMax = (m: Map<number, number>, alpha: number, v: number) => m.set(alpha, Math.max(m.get(alpha) ?? 0, v));
for (let round = 1; round <= rounds; round++) {
  console.log(`round ${round}/${rounds}`);
  for (const [alpha, r] of await wasmRates()) keepMax(best.wasm, alpha, r.fused);
  for (const [alpha, r] of torchRates()) keepMax(best.torch, alpha, r);
}
const ratios = ALPHAS.map((a) => {
  const r = best.wasm.get(a)! / best.torch.get(a)!;
  console.log(`mobilenet ${a}: wasm ${best.wasm.get(a)!.toFixed(1)} images/s, torch ${best.torch.get(a)!.toFixed(1)} images/s, wasm/torch ${r.toFixed(2)}`);
  return r;
});
console.log(`ratio wasm/torch: ${Math.min(...ratios).toFixed(2)}`);
