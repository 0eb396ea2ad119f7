import tf from '../runtime/tf.cjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { PreprocessingConfig } from '../artifacts/run.js';
import { removeStaleTemps, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { sha256, sha256File } from '../util/hash.js';
import { BudgetedMap } from '../util/budgeted-map.js';
import { tlHome, writableCacheDir } from '../util/paths.js';
import { Rng } from '../util/rng.js';
import { decodeSamples, mapLimit, DECODE_CONCURRENCY, type DecodedImageMemo, type ImageSample } from '../data/image-folder.js';
import { imagesToArray } from '../data/preprocess.js';
import { createProgress } from '../runtime/progress.js';
import { INFERENCE_BATCH, type EngineName, type InferenceEngine } from '../runtime/engine.js';
import type { Batch, BatchSource } from '../data/batch-source.js';
import type { DecodedImage } from '../data/images.js';

/**
 * Frozen-base features on disk. A transfer run spends almost all its time in the base, which
 * never changes, so each image's feature map is computed once per (backbone, weights, input
 * size, preprocessing) and reused by every later epoch and run. Images are keyed by the sha256
 * of their bytes, so renaming or copying a folder still hits the cache.
 *
 *   TL_HOME/features/<key>/key.json        what the key stands for, and the feature shape
 *   TL_HOME/features/<key>/ab/<sha256>.f32  one float32 feature map (little-endian)
 */
export interface FeatureKey {
  backbone: string;
  alpha?: number;
  weightsSha256: string | null;
  /** Set when weights are random ('none'), so two seeds do not share features. */
  weightsSource?: string;
  featureLayer: string;
  inputShape: [number, number, number];
  /** Multi-scale pooling's scales, when there is more than the image itself. */
  scales?: number[];
  preprocessing: PreprocessingConfig;
  /** The image decoding pipeline (DECODER_ID): same file bytes, other pixels, other features. */
  decoder: string;
  /** The inference engine that computed the features (they agree to ~1e-5, not bit for bit). */
  engine: EngineName;
}

/** Temp files of features whose writer was killed: they are never read, so they would only pile up. */
async function removeStaleShardTemps(dir: string): Promise<void> {
  const shards = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const shard of shards) if (shard.isDirectory()) await removeStaleTemps(path.join(dir, shard.name));
}

/**
 * Bytes of features a cache keeps in memory once read or written: a head trains for tens of epochs
 * on the same rows, and reading each from its file every epoch cost a tenth of tl train's head
 * phase on flowers-5. Beyond this, rows are read from disk again.
 */
const MEMORY_BUDGET_BYTES = 512 << 20;

export class FeatureCache {
  private readonly inMemory = new BudgetedMap<string, Float32Array>(MEMORY_BUDGET_BYTES);

  private constructor(
    readonly dir: string,
    readonly featureShape: number[],
  ) {}

  /** The cache folder for `key`, whose features have `featureShape` (per image). */
  static async open(key: FeatureKey, featureShape: number[], root = path.join(tlHome(), 'features')): Promise<FeatureCache> {
    const id = sha256(JSON.stringify(key)).slice(0, 32);
    const dir = await writableCacheDir(path.join(root, id));
    await removeStaleShardTemps(dir);
    const keyFile = path.join(dir, 'key.json');
    const existing = await fs.readFile(keyFile, 'utf8').then((t) => JSON.parse(t) as { featureShape: number[] }, () => undefined);
    if (!existing || JSON.stringify(existing.featureShape) !== JSON.stringify(featureShape)) {
      await writeJsonAtomic(keyFile, { ...key, featureShape });
    }
    return new FeatureCache(dir, featureShape);
  }

  get featureSize(): number {
    return this.featureShape.reduce((a, b) => a * b, 1);
  }

  private file(hash: string): string {
    return path.join(this.dir, hash.slice(0, 2), `${hash}.f32`);
  }

  async has(hash: string): Promise<boolean> {
    const stat = await fs.stat(this.file(hash)).catch(() => undefined);
    return stat !== undefined && stat.size === this.featureSize * 4;
  }

  /** The features cached under `hash`; callers must not change the array. */
  async read(hash: string): Promise<Float32Array> {
    const kept = this.inMemory.get(hash);
    if (kept) return kept;
    const buf = await fs.readFile(this.file(hash));
    if (buf.byteLength !== this.featureSize * 4) throw new Error(`feature cache entry ${this.file(hash)} has the wrong size`);
    // Copy out: a Buffer may sit at an unaligned offset of a shared pool.
    const out = new Float32Array(this.featureSize);
    new Uint8Array(out.buffer).set(buf);
    return this.inMemory.keep(hash, out, out.byteLength);
  }

  /** Stores `features` under `hash`; the cache may keep the array itself, so callers must not change it. */
  write(hash: string, features: Float32Array): Promise<void> {
    this.inMemory.keep(hash, features, features.byteLength);
    return writeFileAtomic(this.file(hash), new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
  }
}

/** What a feature-extraction pass did: per usable sample its content hash; counts for logs and tests. */
export interface ExtractionResult {
  /** file -> sha256 of its bytes, for every sample with features in the cache. */
  hashes: Map<string, string>;
  /** Images run through the base in this pass. */
  computed: number;
  /** Images whose features were already cached. */
  reused: number;
  seconds: number;
}

export interface ExtractOptions {
  inputShape: [number, number, number];
  preprocessing: PreprocessingConfig;
  batchSize?: number;
  /** file -> reason, for files that cannot be decoded; filled in here. */
  skipped: Map<string, string>;
  label?: string;
  /** Decoded pictures shared by the passes over the same files (base features, then their views). */
  decoded?: DecodedImageMemo;
}

/**
 * Make sure every sample's features are in `cache`, running `base` only on the images whose
 * features are missing. Decoding of the next batch overlaps the base's work on the current one.
 */
export async function extractFeatures(
  samples: readonly ImageSample[],
  base: InferenceEngine,
  cache: FeatureCache,
  opts: ExtractOptions,
): Promise<ExtractionResult> {
  const started = Date.now();
  const unique = [...new Map(samples.map((s) => [s.file, s])).values()];
  const hashes = new Map<string, string>();
  const missing: ImageSample[] = [];
  await mapLimit(unique, DECODE_CONCURRENCY * 2, async (sample) => {
    let hash: string;
    try {
      hash = await sha256File(sample.file);
    } catch (err) {
      opts.skipped.set(sample.file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'unreadable file');
      return;
    }
    hashes.set(sample.file, hash);
    if (!(await cache.has(hash))) missing.push(sample);
  });
  const reused = hashes.size - missing.length;
  const views = missing.map((sample) => ({ sample, key: hashes.get(sample.file)! }));
  const secondsSince = () => (Date.now() - started) / 1000;
  const computed = await computeViews(views, base, cache, opts, (n) => `features: ${n} computed, ${reused} from cache (${secondsSince().toFixed(1)}s)`);
  for (const file of missing.map((s) => s.file)) if (opts.skipped.has(file)) hashes.delete(file);
  return { hashes, computed, reused, seconds: secondsSince() };
}

/** One picture for the base: a sample's image, maybe changed (augmented, mirrored), cached under `key`. */
export interface FeatureView {
  sample: ImageSample;
  key: string;
  change?: (img: DecodedImage) => DecodedImage;
}

/**
 * Run the base on every view whose features `cache` lacks and store them. Decoding of the next
 * batch overlaps the base's work on the current one. Returns how many were computed.
 */
export async function computeViews(
  views: readonly FeatureView[],
  base: InferenceEngine,
  cache: FeatureCache,
  opts: ExtractOptions,
  summary: (computed: number) => string = (n) => `${opts.label ?? 'features'}: ${n} computed`,
): Promise<number> {
  const missing: FeatureView[] = [];
  for (const view of views) if (!(await cache.has(view.key))) missing.push(view);
  const batchSize = opts.batchSize ?? INFERENCE_BATCH;
  const progress = createProgress({ label: opts.label ?? 'features', total: missing.length, unit: 'images' });
  const chunks: FeatureView[][] = [];
  for (let i = 0; i < missing.length; i += batchSize) chunks.push(missing.slice(i, i + batchSize));
  // Views of one file share its sample: decode a copy per view, so each decoded image maps back to its view.
  const viewOf = new Map<ImageSample, FeatureView>();
  const decode = (chunk: FeatureView[]) =>
    decodeSamples(
      chunk.map((v) => {
        const sample = { ...v.sample };
        viewOf.set(sample, v);
        return sample;
      }),
      opts.inputShape,
      opts.skipped,
      opts.decoded,
    );
  let computed = 0;
  // A batch's durable writes (an fsync each) finish while the base runs on the next batch; at most
  // one batch is in flight, and a failed write stops the pass at the next batch.
  let writing: Promise<void> = Promise.resolve();
  let pending = chunks.length ? decode(chunks[0]!) : undefined;
  for (let c = 0; c < chunks.length; c++) {
    const decoded = await pending!;
    pending = c + 1 < chunks.length ? decode(chunks[c + 1]!) : undefined;
    progress.tick(chunks[c]!.length);
    if (decoded.length === 0) continue;
    const views = decoded.map((d) => viewOf.get(d.sample)!);
    const images = decoded.map((d, i) => views[i]!.change?.(d.image) ?? d.image);
    const batch = imagesToArray(images, opts.preprocessing);
    const values = await base.run(batch.data, decoded.length);
    const per = cache.featureSize;
    await writing;
    const batchWrites = Promise.all(views.map((v, i) => cache.write(v.key, values.slice(i * per, (i + 1) * per))));
    writing = batchWrites.then(() => undefined);
    writing.catch(() => undefined); // awaited before the next batch's writes or after the last
    for (const d of decoded) viewOf.delete(d.sample);
    computed += decoded.length;
  }
  await writing;
  progress.done(summary(computed));
  return computed;
}

/**
 * Batches of cached feature maps, read from disk a batch at a time (rows the cache already keeps in
 * memory, up to its budget, are not read again).
 * `keys` gives each file its cached views: the first is the image itself; while training (an
 * epoch seed is given) each epoch draws one view per image at random, as online augmentation
 * would show a fresh variant each epoch.
 */
export function cachedFeatureSource(
  samples: readonly ImageSample[],
  keys: Map<string, string | readonly string[]>,
  cache: FeatureCache,
  standardize?: ChannelStats,
): BatchSource & { samples: ImageSample[] } {
  const usable = samples.filter((s) => keys.has(s.file));
  const viewsOf = (file: string) => [keys.get(file)!].flat();
  return {
    samples: usable,
    size: usable.length,
    async *batches(batchSize: number, epochSeed?: number): AsyncIterable<Batch> {
      const order = [...usable];
      const rng = epochSeed === undefined ? undefined : new Rng(epochSeed);
      rng?.shuffle(order);
      const keyOf = (file: string) => {
        const views = viewsOf(file);
        return views[rng ? rng.int(views.length) : 0]!;
      };
      const per = cache.featureSize;
      for (let start = 0; start < order.length; start += batchSize) {
        const chunk = order.slice(start, start + batchSize);
        const x = new Float32Array(chunk.length * per);
        const rows = await Promise.all(chunk.map((s) => cache.read(keyOf(s.file))));
        rows.forEach((row, i) => x.set(row, i * per));
        if (standardize) standardizeChannels(x, standardize);
        yield {
          x: tf.tensor(x, [chunk.length, ...cache.featureShape], 'float32'),
          y: tf.tensor1d(chunk.map((s) => s.label), 'int32'),
        };
      }
    },
  };
}

/** Per-channel mean and standard deviation of feature maps (the last axis is the channel). */
export interface ChannelStats {
  mean: Float32Array;
  std: Float32Array;
}

/** (x - mean) / std per channel, in place. */
export function standardizeChannels(x: Float32Array, stats: ChannelStats): void {
  const c = stats.mean.length;
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - stats.mean[i % c]!) / stats.std[i % c]!;
}

/**
 * Mean and standard deviation per channel of the spatially averaged feature maps of `source`:
 * what GlobalAveragePooling2D hands the head. Standardizing every position by them standardizes
 * the pooled features too, as pooling is linear.
 */
export async function pooledChannelStats(source: BatchSource, channels: number): Promise<ChannelStats> {
  const sum = new Float64Array(channels);
  const sumSq = new Float64Array(channels);
  let n = 0;
  for await (const { x, y } of source.batches(256)) {
    const pooled = tf.tidy(() => tf.mean(x.reshape([x.shape[0]!, -1, channels]), 1));
    const values = await pooled.data();
    tf.dispose([x, y, pooled]);
    for (let i = 0; i < values.length; i++) {
      sum[i % channels]! += values[i]!;
      sumSq[i % channels]! += values[i]! * values[i]!;
    }
    n += values.length / channels;
  }
  const mean = Float32Array.from(sum, (v) => v / Math.max(n, 1));
  // A channel that never fires (all zeros after ReLU) keeps std 1, so it stays zero, not NaN.
  const std = Float32Array.from(sumSq, (v, c) => Math.sqrt(Math.max(v / Math.max(n, 1) - mean[c]! ** 2, 0)) || 1);
  return { mean, std };
}
