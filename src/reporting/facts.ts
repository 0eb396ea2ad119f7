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

export function formatValue(value: unknown): string {
  if (value === undefined || value === null) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
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

const KNOWN_DATASET_KEYS = new Set(['name', 'split', 'seed', 'trainCount', 'valCount', 'testCount', 'classes', 'skipped']);

export function runFacts(config: RunConfig, metrics: RunMetrics | undefined): [string, string][] {
  const facts: [string, string][] = [
    ['kind', config.kind],
    ['model', config.model],
    ['input shape', config.inputShape.join(' x ')],
    ['preprocessing', describePreprocessing(config.preprocessing)],
    ['dataset', config.dataset.name + (config.dataset.source ? ` (from ${config.dataset.source})` : '')],
  ];
  const d = metrics?.dataset;
  if (d) {
    facts.push(['split', d.split]);
    if (d.seed !== undefined) facts.push(['split seed', String(d.seed)]);
    facts.push(['samples', `train ${d.trainCount}, validation ${d.valCount}, test ${d.testCount}; ${d.classes} classes`]);
    if (d.skipped?.length) {
      const shown = d.skipped.slice(0, 5).map((s) => `${s.file} (${s.reason})`);
      facts.push(['skipped files', `${d.skipped.length}: ${shown.join('; ')}${d.skipped.length > 5 ? '; ...' : ''}`]);
    }
    for (const [k, v] of Object.entries(d)) if (!KNOWN_DATASET_KEYS.has(k)) facts.push([`dataset ${k}`, formatValue(v)]);
  }
  facts.push(['seed', String(config.seed)]);
  if (config.backbone) {
    const b = config.backbone;
    facts.push(['backbone', `${b.name}${b.featureLayer ? ` (features from ${b.featureLayer})` : ''}`]);
    facts.push(['backbone weights', b.weights]);
    if (b.weightsSha256) facts.push(['weights sha256', b.weightsSha256]);
  }
  if (config.parent) facts.push(['parent run', config.parent]);
  for (const [k, v] of Object.entries(config.hyperparameters)) facts.push([k, formatValue(v)]);
  if (metrics) {
    facts.push(['backend', metrics.backend]);
    facts.push(['training wall time', formatDuration(metrics.trainSeconds)]);
    if (metrics.imagesPerSecond !== undefined) facts.push(['training speed', `${metrics.imagesPerSecond.toFixed(0)} images/s`]);
    if (metrics.bestEpoch !== undefined) facts.push(['best epoch', String(metrics.bestEpoch)]);
    if (metrics.stoppedEarly) facts.push(['stopped early', 'yes']);
    if (metrics.interrupted) facts.push(['interrupted', 'yes: the numbers are for the last checkpoint']);
  }
  facts.push(['created', config.createdAt]);
  facts.push(['command', config.command]);
  return facts;
}
