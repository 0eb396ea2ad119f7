import type { PreprocessingConfig, RunConfig, RunMetrics } from '../artifacts/run.js';

/** Human-readable facts about a run: what was trained, on what, how, where and how fast. */

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min ${s} s`;
}

/** One value as a person reads it: numbers plainly, lists with commas, objects as `key value` pairs. */
export function formatValue(value: unknown): string {
  if (value === undefined || value === null) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? value.toLocaleString('en-US') : String(Number(value.toPrecision(6)));
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map(formatValue).join(', ');
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${factLabel(k)} ${formatValue(v)}`)
    .join('; ');
}

/** Readable names of the keys runs record (hyper-parameters, dataset extras). */
const LABELS: Record<string, string> = {
  batchSize: 'batch size',
  lr: 'learning rate',
  valSplit: 'validation split',
  size: 'input size (px)',
  headUnits: 'head units',
  alpha: 'width (alpha)',
  patience: 'early-stopping patience',
  lrPatience: 'learning-rate patience',
  normalize: 'pixels scaled to [0, 1]',
  resplit: 'resplit test fraction',
  trainLimit: 'training images limit',
  parameters: 'parameters',
  unfreeze: 'unfrozen',
  unfrozenLayers: 'unfrozen base layers',
  batchNorm: 'BatchNorm statistics',
  mlp: 'mlp',
  cnn: 'cnn',
  convsPerBlock: 'convolutions per block',
  kernelSize: 'kernel size',
  featureCache: 'feature cache',
};

/** `batchSize` -> `batch size`: a known label, or the camelCase key spelt out. */
export function factLabel(key: string): string {
  return LABELS[key] ?? key.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
}

export function describePreprocessing(p: PreprocessingConfig): string {
  switch (p.mode) {
    case 'scale':
      return `pixel * ${formatValue(p.scale)} + ${formatValue(p.offset)}${p.grayscale ? ', grayscale' : ', RGB'}${p.invertLightBackground ? ', light backgrounds inverted' : ''}`;
    case 'caffe':
      return `caffe: BGR, minus mean [${p.mean.join(', ')}]`;
    case 'none':
      return 'none (raw 0..255)';
  }
}

/** Dataset keys shown in their own rows (or, for `source`, in the dataset row). */
const KNOWN_DATASET_KEYS = new Set(['name', 'split', 'seed', 'trainCount', 'valCount', 'testCount', 'classes', 'skipped', 'source', 'featureCache']);

interface FeatureCacheInfo {
  computed: number;
  reused: number;
  seconds: number;
}

function datasetFacts(d: RunMetrics['dataset'], runSeed: number): [string, string][] {
  const facts: [string, string][] = [['split', d.split]];
  // One seed row for the run; the split's own only where it differs (it never does for tl's runs).
  if (d.seed !== undefined && d.seed !== runSeed) facts.push(['split seed', String(d.seed)]);
  facts.push(['samples', `train ${d.trainCount}, validation ${d.valCount}, test ${d.testCount}; ${d.classes} classes`]);
  if (d.skipped?.length) {
    const shown = d.skipped.slice(0, 5).map((s) => `${s.file} (${s.reason})`);
    facts.push(['skipped files', `${d.skipped.length}: ${shown.join('; ')}${d.skipped.length > 5 ? '; ...' : ''}`]);
  }
  const cache = d.featureCache as FeatureCacheInfo | undefined;
  if (cache) facts.push(['feature cache', `${cache.computed} images through the base, ${cache.reused} from the cache (${formatDuration(cache.seconds)})`]);
  for (const [k, v] of Object.entries(d)) if (!KNOWN_DATASET_KEYS.has(k)) facts.push([factLabel(k), formatValue(v)]);
  return facts;
}

/**
 * A fine-tuning run's own settings under their plain names, the transfer run's before it as
 * `transfer ...`; other runs' hyper-parameters as recorded.
 */
function hyperparameterFacts(config: RunConfig): [string, string][] {
  const { finetune, ...own } = config.hyperparameters as Record<string, unknown> & { finetune?: Record<string, unknown> };
  const rows = (entries: Record<string, unknown>, prefix = '') => Object.entries(entries).map(([k, v]): [string, string] => [`${prefix}${factLabel(k)}`, formatValue(v)]);
  if (config.kind !== 'finetune' || !finetune) return rows(own);
  return [...rows(finetune), ...rows(own, 'transfer ')];
}

/** A transfer run's images/s times its head on cached feature maps, not the whole network. */
export function speedIsHeadOnly(kind: RunConfig['kind']): boolean {
  return kind === 'transfer';
}

function speedLabel(kind: RunConfig['kind']): string {
  return speedIsHeadOnly(kind) ? 'head training speed' : 'training speed';
}

function speedValue(kind: RunConfig['kind'], imagesPerSecond: number): string {
  return `${imagesPerSecond.toFixed(0)} images/s${speedIsHeadOnly(kind) ? ' (head only, on cached base features)' : ''}`;
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** Which set the accuracy is measured on and how far to trust it, the epoch the run keeps, and its warnings. */
function heldOutFacts(m: RunMetrics): [string, string][] {
  const facts: [string, string][] = [];
  const ci = m.test.accuracyCI95;
  if (m.evaluatedOn) facts.push(['measured on', `the ${m.evaluatedOn} set: accuracy ${percent(m.test.accuracy)}${ci ? ` (95% CI ${percent(ci[0])}-${percent(ci[1])})` : ''}`]);
  if (m.keptEpoch !== undefined) facts.push(['kept epoch', `${m.keptEpoch} (${m.restoredBest === false ? 'the last: --no-restore-best' : 'the best validation loss, restored'})`]);
  for (const w of m.warnings ?? []) facts.push(['warning', w]);
  return facts;
}

export function runFacts(config: RunConfig, metrics: RunMetrics | undefined): [string, string][] {
  const facts: [string, string][] = [
    ['kind', config.kind],
    ['model', config.model],
    ['input shape', config.inputShape.join(' x ')],
    ['preprocessing', describePreprocessing(config.preprocessing)],
    ['dataset', config.dataset.name + (config.dataset.source ? ` (from ${config.dataset.source})` : '')],
  ];
  if (metrics?.dataset) facts.push(...datasetFacts(metrics.dataset, config.seed));
  facts.push(['seed', String(config.seed)]);
  if (config.backbone) {
    const b = config.backbone;
    facts.push(['backbone', `${b.name}${b.featureLayer ? ` (features from ${b.featureLayer})` : ''}`]);
    facts.push(['backbone weights', b.weights]);
    if (b.weightsSha256) facts.push(['weights sha256', b.weightsSha256]);
  }
  if (config.parent) facts.push(['parent run', config.parent]);
  facts.push(...hyperparameterFacts(config));
  if (metrics) {
    facts.push(['backend', metrics.backend]);
    if (metrics.engine) facts.push(['inference engine', metrics.engine]);
    facts.push(['training wall time', formatDuration(metrics.trainSeconds)]);
    if (metrics.imagesPerSecond !== undefined) facts.push([speedLabel(config.kind), speedValue(config.kind, metrics.imagesPerSecond)]);
    if (metrics.bestEpoch !== undefined) facts.push(['best epoch', String(metrics.bestEpoch)]);
    if (metrics.stoppedEarly) facts.push(['stopped early', 'yes']);
    facts.push(...heldOutFacts(metrics));
    if (metrics.interrupted) facts.push(['interrupted', 'yes: the numbers are for the last checkpoint']);
  }
  facts.push(['created', config.createdAt]);
  facts.push(['command', config.command]);
  return facts;
}
