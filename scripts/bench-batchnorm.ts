/**
 * Training speed of the default custom CNN (conv-BN-ReLU x3 with 32/64/128 filters, max-pool, GAP,
 * dense) on the wasm backend with stock tfjs BatchNormalization versus installFastBatchNorm(),
 * side by side in one process, rounds interleaved so machine load hits both alike.
 *
 *   npx tsx scripts/bench-batchnorm.ts [--batch 64] [--steps 5] [--rounds 3] [--profile]
 *
 * Modes: `train` is BN in training mode (batch statistics, moving averages updated), as in
 * `tl custom`; `frozen` runs the model with training=false (BN on its moving statistics, as when
 * fine-tuning a backbone), so the FusedBatchNorm gradient is what is measured. `no-bn` is the same
 * net without BatchNormalization, for reference. --profile prints the costliest kernels per variant.
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/runtime/backend.js';
import { installFastBatchNorm, uninstallFastBatchNorm } from '../src/runtime/batchnorm.js';
import { buildCustomModel } from '../src/models/custom.js';
import { sparseCrossEntropy } from '../src/training/optimizers.js';

const { values: args } = parseArgs({
  options: {
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
  },
});
const batch = Number(args.batch);
const steps = Number(args.steps);
const rounds = Number(args.rounds);

interface Variant {
  label: string;
  model: tf.LayersModel;
  /** Adam keeps its moments by variable position, so each model needs its own. */
  optimizer: tf.Optimizer;
  fast: boolean;
  training: boolean;
}

await initBackend('wasm');
const x = tf.randomNormal([batch, 28, 28, 1]);
const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32');
const bn = { model: buildCustomModel({ model: 'cnn' }, [28, 28, 1], 10), optimizer: tf.train.adam(1e-3) };
const plain = { model: buildCustomModel({ model: 'cnn', cnn: { batchNorm: false } }, [28, 28, 1], 10), optimizer: tf.train.adam(1e-3) };

const variants: Variant[] = [
  { label: 'train  stock', ...bn, fast: false, training: true },
  { label: 'train  fast', ...bn, fast: true, training: true },
  { label: 'frozen stock', ...bn, fast: false, training: false },
  { label: 'frozen fast', ...bn, fast: true, training: false },
  { label: 'no-bn', ...plain, fast: false, training: true },
];

function select(v: Variant): void {
  if (v.fast) installFastBatchNorm();
  else uninstallFastBatchNorm();
}

function step(v: Variant): void {
  const loss = v.optimizer.minimize(() => sparseCrossEntropy(v.model.apply(x, { training: v.training }) as tf.Tensor, y).loss, true)!;
  loss.dataSync();
  loss.dispose();
}

function imagesPerSecond(v: Variant): number {
  select(v);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step(v);
  return (batch * steps) / ((performance.now() - t0) / 1000);
}

for (const v of variants) {
  select(v);
  step(v);
  step(v);
}
const results = new Map<string, number[]>(variants.map((v) => [v.label, []]));
for (let r = 0; r < rounds; r++) for (const v of variants) results.get(v.label)!.push(imagesPerSecond(v));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// On a shared machine the best round is the closest to unloaded speed; the median shows the spread.
console.log(`wasm, batch ${batch}, ${steps} steps x ${rounds} interleaved rounds; img/s`);
console.log(`${'variant'.padEnd(13)} ${'best'.padStart(5)} ${'median'.padStart(6)}   per round`);
for (const v of variants) {
  const rates = results.get(v.label)!;
  const best = Math.max(...rates);
  console.log(`${v.label.padEnd(13)} ${best.toFixed(0).padStart(5)} ${median(rates).toFixed(0).padStart(6)}   [${rates.map((n) => n.toFixed(0)).join(', ')}]`);
}

/**
 * Kernel time per step, least over `runs` profiles position by position (load only adds time),
 * by kernel. Ops and custom-gradient scopes are left out: their kernels are listed on their own.
 */
async function kernelMs(v: Variant, runs = 3): Promise<Map<string, number>> {
  select(v);
  const profiles: Awaited<ReturnType<typeof tf.profile>>['kernels'][] = [];
  for (let i = 0; i < runs; i++) profiles.push((await tf.profile(() => step(v))).kernels);
  const byKernel = new Map<string, number>();
  profiles[0]!.forEach((k, i) => {
    if (!tf.getKernel(k.name, tf.getBackend())) return;
    const ms = Math.min(...profiles.map((p) => Number(p[i]?.kernelTimeMs ?? Infinity)));
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ms);
  });
  return byKernel;
}

if (args.profile) {
  console.log('\nkernel ms per step (least of 3 profiles): total, then the costliest kernels');
  for (const v of variants) {
    const byKernel = await kernelMs(v);
    const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
    const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 9);
    console.log(`${v.label.padEnd(13)} ${total.toFixed(0).padStart(4)}: ${top.map(([name, ms]) => `${name} ${ms.toFixed(1)}`).join(', ')}`);
  }
}
uninstallFastBatchNorm();
