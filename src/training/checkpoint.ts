import tf from '../runtime/tf.cjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { EpochRecord } from '../artifacts/run.js';
import { writeDirAtomic, writeFileAtomic } from '../util/atomic.js';
import { errorLine, fileError, TlError } from '../util/errors.js';

/**
 * Everything `fit` needs to continue after its last completed epoch as if it had never stopped:
 * weights (current and best), optimizer slots, learning rate, schedules, history and the position
 * of the run's dropout generator. Written after every epoch as one directory, atomically:
 *
 *   checkpoint/state.json      CheckpointState
 *   checkpoint/weights.bin     the model's weights after the last completed epoch
 *   checkpoint/best.bin        the best epoch's weights (restored at the end)
 *   checkpoint/optimizer.bin   the optimizer's slots (Adam: iterations, first and second moments)
 */
export interface LoopState {
  /** Epochs of this fit completed (not counting an epoch offset). */
  epochsDone: number;
  history: EpochRecord[];
  best?: EpochRecord;
  sinceBest: number;
  plateau: { bestLoss: number; wait: number };
  lr: number;
  /** Position of the run's dropout generator, so a resumed run draws the same masks. */
  random: number;
}

interface CheckpointState extends LoopState {
  version: 1;
  /** What the run was started with; resuming with other options would not continue the same run. */
  fingerprint: unknown;
  /** Adam's running beta powers, kept as the step accumulated them (pow() would round differently). */
  adamPowers?: [number, number];
  weights: tf.io.WeightsManifestEntry[];
  best?: EpochRecord;
  bestWeights?: tf.io.WeightsManifestEntry[];
  optimizer: tf.io.WeightsManifestEntry[];
}

export interface Checkpoint {
  dir: string;
  /** The trainer's options that define the run; compared on resume. Make it with `runFingerprint`. */
  fingerprint: unknown;
}

/**
 * What must match for a checkpoint to continue the same run: everything but the epoch count, so
 * a resumed run may also train longer or stop sooner than first planned.
 */
export function runFingerprint<T extends { epochs?: number }>(what: Record<string, unknown>, hyperparameters: T): unknown {
  const { epochs: _epochs, ...rest } = hyperparameters;
  return { ...what, hyperparameters: rest };
}

interface AdamPowers {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
}

const FILES = { state: 'state.json', weights: 'weights.bin', best: 'best.bin', optimizer: 'optimizer.bin' } as const;

async function encodeList(tensors: tf.Tensor[]): Promise<{ data: Uint8Array; specs: tf.io.WeightsManifestEntry[] }> {
  const { data, specs } = await tf.io.encodeWeights(tensors.map((tensor, i) => ({ name: String(i), tensor })));
  const buffer = tf.io.CompositeArrayBuffer.join(data as ArrayBuffer | ArrayBuffer[]);
  return { data: new Uint8Array(buffer), specs: specs.map(({ name, shape, dtype }) => ({ name, shape, dtype })) };
}

async function decodeList(file: string, specs: tf.io.WeightsManifestEntry[]): Promise<tf.Tensor[]> {
  const buf = await fs.readFile(file);
  const map = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
  return specs.map((s) => map[s.name]!);
}

/** Save the loop's state after a completed epoch. `bestWeights` undefined: no epoch has been best yet. */
export async function saveCheckpoint(
  checkpoint: Checkpoint,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  bestWeights: tf.Tensor[] | undefined,
  loop: LoopState,
): Promise<void> {
  const weights = await encodeList(model.getWeights());
  const best = bestWeights ? await encodeList(bestWeights) : undefined;
  const slots = await optimizer.getWeights();
  const opt = await encodeList(slots.map((s) => s.tensor));
  tf.dispose(slots.map((s) => s.tensor).filter((t) => !(t instanceof tf.Variable)));
  const powers = optimizer as unknown as AdamPowers;
  const state: CheckpointState = {
    version: 1,
    fingerprint: checkpoint.fingerprint,
    ...loop,
    ...(powers.accBeta1 && powers.accBeta2 ? { adamPowers: [powers.accBeta1.dataSync()[0]!, powers.accBeta2.dataSync()[0]!] } : {}),
    weights: weights.specs,
    ...(best ? { bestWeights: best.specs } : {}),
    optimizer: opt.specs.map((s, i) => ({ ...s, name: slots[i]!.name })),
  };
  await writeDirAtomic(checkpoint.dir, async (dir) => {
    await writeFileAtomic(path.join(dir, FILES.weights), weights.data);
    if (best) await writeFileAtomic(path.join(dir, FILES.best), best.data);
    await writeFileAtomic(path.join(dir, FILES.optimizer), opt.data);
    await writeFileAtomic(path.join(dir, FILES.state), JSON.stringify(state) + '\n');
  });
}

/** The fingerprint keys whose values differ, for a one-line refusal. */
function differences(saved: unknown, now: unknown, prefix = ''): string[] {
  if (JSON.stringify(saved) === JSON.stringify(now)) return [];
  if (saved && now && typeof saved === 'object' && typeof now === 'object' && !Array.isArray(saved)) {
    const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
    return [...keys].flatMap((k) => differences((saved as Record<string, unknown>)[k], (now as Record<string, unknown>)[k], `${prefix}${k}.`));
  }
  return [`${prefix.slice(0, -1) || 'options'} was ${JSON.stringify(saved)}, now ${JSON.stringify(now)}`];
}

/**
 * Load a checkpoint into `model` and `optimizer` and return the loop state and best weights, or
 * undefined when `checkpoint.dir` holds none (the run was stopped before its first epoch ended).
 */
export async function loadCheckpoint(
  checkpoint: Checkpoint,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
): Promise<{ loop: LoopState; bestWeights?: tf.Tensor[] } | undefined> {
  const stateFile = path.join(checkpoint.dir, FILES.state);
  let state: CheckpointState;
  try {
    state = JSON.parse(await fs.readFile(stateFile, 'utf8')) as CheckpointState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(stateFile, 'is not a readable checkpoint', `delete ${path.dirname(checkpoint.dir)} to start over`);
  }
  const changed = differences(state.fingerprint, checkpoint.fingerprint);
  if (changed.length) {
    throw fileError(checkpoint.dir, `was written by a run with other options (${changed.join('; ')})`, 'resume with the options it was started with');
  }
  try {
    const weights = await decodeList(path.join(checkpoint.dir, FILES.weights), state.weights);
    model.setWeights(weights);
    tf.dispose(weights);
    const slots = await decodeList(path.join(checkpoint.dir, FILES.optimizer), state.optimizer);
    await optimizer.setWeights(slots.map((tensor, i) => ({ name: state.optimizer[i]!.name, tensor })));
    tf.dispose(slots);
    const powers = optimizer as unknown as AdamPowers;
    if (state.adamPowers && powers.accBeta1 && powers.accBeta2) {
      powers.accBeta1.assign(tf.scalar(state.adamPowers[0]));
      powers.accBeta2.assign(tf.scalar(state.adamPowers[1]));
    }
    const bestWeights = state.bestWeights ? await decodeList(path.join(checkpoint.dir, FILES.best), state.bestWeights) : undefined;
    const { epochsDone, history, best, sinceBest, plateau, lr, random } = state;
    return { loop: { epochsDone, history, best, sinceBest, plateau, lr, random }, bestWeights };
  } catch (err) {
    if (err instanceof TlError) throw err;
    throw fileError(checkpoint.dir, `cannot be loaded (${errorLine(err)})`, `delete ${path.dirname(checkpoint.dir)} to start over`);
  }
}
