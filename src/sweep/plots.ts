import type { TopLevelSpec } from '../reporting/vega.js';
import { formatParam, type SweepResult } from './results.js';
import type { PlotSpec, SweepSpec } from './spec.js';
import { sweptKeys } from './spec.js';

const Y_TITLES: Record<NonNullable<PlotSpec['y']>, string> = {
  testAccuracy: 'test accuracy',
  testLoss: 'test loss',
  trainSeconds: 'training time (s)',
  imagesPerSecond: 'training images/s',
};

/** Options whose values are usually spread over orders of magnitude. */
const LOG_KEYS = new Set(['lr', 'l2', 'trainLimit']);

function lastSegment(key: string): string {
  return key.split('.').at(-1)!;
}

function distinctValues(results: SweepResult[], key: string): unknown[] {
  const seen = new Map<string, unknown>();
  for (const r of results) if (key in r.params) seen.set(JSON.stringify(r.params[key]), r.params[key]);
  return [...seen.values()];
}

function isNumeric(values: unknown[]): values is number[] {
  return values.length > 0 && values.every((v) => typeof v === 'number' && Number.isFinite(v));
}

export function wantsLogScale(key: string, values: unknown[]): boolean {
  if (!isNumeric(values) || values.some((v) => v <= 0)) return false;
  return LOG_KEYS.has(lastSegment(key)) || Math.max(...values) / Math.min(...values) >= 100;
}

/**
 * The spec's plots, or by default one per swept key with several values: that key on x and,
 * when exactly two keys are swept, one line per value of the other.
 */
export function plotsFor(spec: SweepSpec, results: SweepResult[]): PlotSpec[] {
  if (spec.plots?.length) return spec.plots;
  const varying = sweptKeys(spec).filter((k) => distinctValues(results, k).length > 1);
  return varying.map((x) => {
    const others = varying.filter((k) => k !== x);
    return others.length === 1 ? { x, color: others[0] } : { x };
  });
}

export function plotTitle(p: PlotSpec): string {
  const y = Y_TITLES[p.y ?? 'testAccuracy'];
  if (lastSegment(p.x) === 'trainLimit') return `Learning curve: ${y} vs training-set size`;
  return `${y[0]!.toUpperCase()}${y.slice(1)} vs ${p.x}${p.color ? `, by ${p.color}` : ''}`;
}

export function plotFileName(p: PlotSpec): string {
  const slug = (s: string) => s.replace(/[^A-Za-z0-9]+/g, '-');
  const y = (p.y ?? 'testAccuracy') === 'testAccuracy' ? 'accuracy' : slug(p.y!);
  return `${y}-vs-${slug(p.x)}${p.color ? `-by-${slug(p.color)}` : ''}.png`;
}

/** Vega-Lite: y against the swept x, finished configurations only, log x where values span decades. */
export function sweepPlotSpec(p: PlotSpec, results: SweepResult[]): TopLevelSpec {
  const yKey = p.y ?? 'testAccuracy';
  const done = results.filter((r) => (r.status === 'trained' || r.status === 'reused') && r[yKey] !== undefined && p.x in r.params);
  const xValues = distinctValues(done, p.x);
  const numeric = isNumeric(xValues);
  const log = p.log ?? wantsLogScale(p.x, xValues);
  const colorOrder = p.color ? distinctValues(done, p.color).map(formatParam) : [];
  const rows = done.map((r) => ({
    x: numeric ? r.params[p.x] : formatParam(r.params[p.x]),
    y: r[yKey],
    series: p.color ? formatParam(r.params[p.color]) : 'all',
    id: r.id,
  }));
  const x = numeric
    ? {
        field: 'x',
        type: 'quantitative',
        title: p.x,
        scale: log ? { type: 'log' } : { zero: false },
        // Ticks at the swept values: a grid of 4 learning rates reads better than log-scale defaults.
        axis: { format: '~g', ...(xValues.length <= 10 ? { values: xValues } : {}) },
      }
    : { field: 'x', type: 'ordinal', title: p.x, sort: xValues.map(formatParam), axis: { labelAngle: 0 } };
  const y = {
    field: 'y',
    type: 'quantitative',
    title: Y_TITLES[yKey],
    scale: { zero: false },
    axis: yKey === 'testAccuracy' ? { format: '.1%' } : {},
  };
  const color = p.color
    ? { field: 'series', type: 'nominal', title: p.color, sort: colorOrder, legend: { orient: 'right' } }
    : { value: '#1f77b4' };
  // Several configurations per (x, line) when more than two keys are swept: points, not a zig-zag line.
  const keys = rows.map((r) => JSON.stringify([r.x, r.series]));
  const mark = new Set(keys).size === keys.length ? { type: 'line', point: { size: 50 }, strokeWidth: 2 } : { type: 'point', size: 60, filled: true, opacity: 0.7 };
  const layers: object[] = [{ mark, encoding: { color, detail: { field: 'series' } } }];
  // One series with few points: print each value beside its point, so the plot can be read exactly.
  if (!p.color && rows.length <= 12) {
    layers.push({
      mark: { type: 'text', dy: -12, fontSize: 11, color: '#333' },
      encoding: { text: { field: 'y', type: 'quantitative', format: yKey === 'testAccuracy' ? '.2%' : '.3~f' } },
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: p.title ?? plotTitle(p),
    width: 480,
    height: 300,
    data: { values: rows },
    encoding: { x, y, tooltip: [{ field: 'x' }, { field: 'series' }, { field: 'y', format: '.4f' }] },
    layer: layers,
  } as TopLevelSpec;
}
