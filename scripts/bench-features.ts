/**
 * Frozen-base feature extraction speed (what `tl train` spends its first pass on): MobileNet v1
 * at 150x150, alpha 0.25 and 1.0, random weights, batch 32, on the wasm backend, through the
 * fused inference plan of the tfjs engine (BatchNorm folded into the convolutions, conv+bias+ReLU6
 * as one kernel) and through the stock layers model for reference; then the onnxruntime engine
 * (the same model exported to ONNX, run by onnxruntime-node) at 1 and 2 threads on MobileNet 0.25,
 * 1.0 and VGG16; then the same architectures in PyTorch (scripts/bench_features_torch.py,
 * 2 threads) in the same run, one after the other.
 *
 *   scripts/bench-features [--images 320] [--vgg-images 96] [--batch 32] [--size 150] [--python /usr/bin/python3]
 *
 * The machine is shared, so each side times every batch and keeps its fastest, over `--rounds`
 * alternating rounds.
 * Last lines: `ratio wasm/torch: X`, the lower of the two MobileNets' fused-wasm/torch ratios, then
 * `ratio onnxruntime/torch: X`, the lowest onnxruntime/torch ratio of the three models at 2 threads each.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getBackbone } from '../src/backbones/index.js';
import { compileInference } from '../src/models/fused.js';
import { initBackend, runtimeInfo } from '../src/runtime/backend.js';
import { exportOnnx } from '../src/models/onnx/export.js';
import { onnxEngine } from '../src/runtime/engine.js';

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '320' },
    'vgg-images': { type: 'string', default: '96' },
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
const vggImages = Number(args['vgg-images']);
const ALPHAS = [0.25, 1.0];
/** The onnxruntime and torch models: the two MobileNets, and VGG16 (about 30x MobileNet 1.0's work per image, so fewer batches). */
const MODELS = [
  { label: 'mobilenet 0.25', build: () => getBackbone('mobilenet').build({ inputShape: [size, size, 3], alpha: 0.25, seed: 1 }), images },
  { label: 'mobilenet 1', build: () => getBackbone('mobilenet').build({ inputShape: [size, size, 3], alpha: 1.0, seed: 1 }), images },
  { label: 'vgg16', build: () => getBackbone('vgg16').build({ inputShape: [size, size, 3], seed: 1 }), images: vggImages },
];
const ORT_THREADS = [1, 2];

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
  // --threads / TL_THREADS sets it; the default is every core, or one on a busy machine (tl info says which).
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

/** Fastest-batch images/s of an exported model on onnxruntime-node with `threads` intra-op threads. */
async function onnxRate(onnx: Uint8Array, threads: number, count: number): Promise<number> {
  process.env.TL_THREADS = String(threads);
  const engine = await onnxEngine(onnx, [size, size, 3]);
  const x = Float32Array.from({ length: batch * size * size * 3 }, (_, i) => Math.sin(i * 0.37));
  await engine.run(x, batch);
  let best = Infinity;
  for (let i = 0; i < Math.max(1, Math.round(count / batch)); i++) {
    const start = performance.now();
    await engine.run(x, batch);
    best = Math.min(best, performance.now() - start);
  }
  await engine.dispose();
  return batch / (best / 1000);
}

/** label -> threads -> images/s */
async function onnxRates(): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>();
  for (const { label, build, images: count } of MODELS) {
    const model = build();
    const onnx = exportOnnx(model);
    model.dispose();
    const rates = new Map<number, number>();
    for (const threads of ORT_THREADS) {
      rates.set(threads, await onnxRate(onnx, threads, count));
      console.log(`onnxruntime (${threads} thread${threads > 1 ? 's' : ''}) ${label}: ${rates.get(threads)!.toFixed(1)} images/s`);
    }
    out.set(label, rates);
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

function torchRates(): Map<string, number> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench_features_torch.py');
  const text = execFileSync(
    torchPython(),
    [script, '--alphas', ALPHAS.join(','), '--size', String(size), '--batch', String(batch), '--images', String(images), '--threads', '2', '--vgg16', '--vgg-images', String(vggImages)],
    { encoding: 'utf8' },
  );
  process.stdout.write(text);
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^torch (mobilenet [\d.]+|vgg16): ([\d.]+) images\/s/gm)) out.set(m[1]!.replace(/\.0$/, ''), Number(m[2]));
  return out;
}

const best = { wasm: new Map<string, number>(), torch: new Map<string, number>(), onnx: new Map<string, number>() };
const keepMax = (m: Map<string, number>, key: string, v: number) => m.set(key, Math.max(m.get(key) ?? 0, v));
for (let round = 1; round <= rounds; round++) {
  console.log(`round ${round}/${rounds}`);
  for (const [alpha, r] of await wasmRates()) keepMax(best.wasm, `mobilenet ${alpha}`, r.fused);
  for (const [label, rates] of await onnxRates()) for (const [threads, r] of rates) keepMax(best.onnx, `${label} ${threads}`, r);
  for (const [label, r] of torchRates()) keepMax(best.torch, label, r);
}
const wasmRatios = ALPHAS.map((a) => {
  const key = `mobilenet ${a}`;
  const r = best.wasm.get(key)! / best.torch.get(key)!;
  console.log(`${key}: wasm ${best.wasm.get(key)!.toFixed(1)} images/s, torch ${best.torch.get(key)!.toFixed(1)} images/s, wasm/torch ${r.toFixed(2)}`);
  return r;
});
// Equal thread counts: torch runs on 2 threads, so its peer is onnxruntime on 2.
const onnxRatios = MODELS.map(({ label }) => {
  const r = best.onnx.get(`${label} 2`)! / best.torch.get(label)!;
  console.log(`${label}: onnxruntime ${best.onnx.get(`${label} 1`)!.toFixed(1)} (1 thread) / ${best.onnx.get(`${label} 2`)!.toFixed(1)} (2 threads) images/s, torch ${best.torch.get(label)!.toFixed(1)} images/s, onnxruntime/torch ${r.toFixed(2)}`);
  return r;
});
console.log(`ratio wasm/torch: ${Math.min(...wasmRatios).toFixed(2)}`);
console.log(`ratio onnxruntime/torch: ${Math.min(...onnxRatios).toFixed(2)}`);
