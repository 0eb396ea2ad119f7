import type { EpochRecord } from '../artifacts/run.js';
import type { TopLevelSpec } from './vega.js';

/**
 * Vega-Lite specs for the report figures. Pure functions of the run files, so they can be
 * checked without rendering.
 */

interface CurvePoint {
  epoch: number;
  phase: EpochRecord['phase'];
  metric: 'accuracy' | 'loss';
  split: 'train' | 'validation';
  value: number;
}

/**
 * The x position of each epoch. Histories that number each phase from 1 again are laid end to
 * end, so a fine-tuning run reads as one continuous curve.
 */
export function epochAxis(history: EpochRecord[]): number[] {
  const increasing = history.every((r, i) => i === 0 || r.epoch > history[i - 1]!.epoch);
  return history.map((r, i) => (increasing ? r.epoch : i + 1));
}

/** x positions where one phase ends and the next begins (midway between the two epochs). */
export interface PhaseBoundary {
  x: number;
  before: EpochRecord['phase'];
  phase: EpochRecord['phase'];
}

export function phaseBoundaries(history: EpochRecord[]): PhaseBoundary[] {
  const xs = epochAxis(history);
  const out: PhaseBoundary[] = [];
  for (let i = 1; i < history.length; i++) {
    const [before, phase] = [history[i - 1]!.phase, history[i]!.phase];
    if (phase !== before) out.push({ x: (xs[i - 1]! + xs[i]!) / 2, before, phase });
  }
  return out;
}

export function curvePoints(history: EpochRecord[]): CurvePoint[] {
  const xs = epochAxis(history);
  const points: CurvePoint[] = [];
  history.forEach((r, i) => {
    const base = { epoch: xs[i]!, phase: r.phase };
    const add = (metric: CurvePoint['metric'], split: CurvePoint['split'], value: number | undefined) => {
      if (value !== undefined && Number.isFinite(value)) points.push({ ...base, metric, split, value });
    };
    add('accuracy', 'train', r.acc);
    add('accuracy', 'validation', r.val_acc);
    add('loss', 'train', r.loss);
    add('loss', 'validation', r.val_loss);
  });
  return points;
}

const PHASE_TITLES: Record<EpochRecord['phase'], string> = {
  train: 'training',
  transfer: 'transfer learning',
  finetune: 'fine-tuning',
};

function curvePanel(metric: CurvePoint['metric'], points: CurvePoint[], boundaries: ReturnType<typeof phaseBoundaries>) {
  const line = {
    data: { values: points.filter((p) => p.metric === metric) },
    mark: { type: 'line', point: { size: 36 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: {
        field: 'value',
        type: 'quantitative',
        title: metric,
        scale: metric === 'accuracy' ? { zero: false, nice: true } : { zero: false },
        axis: metric === 'accuracy' ? { format: '.0%' } : {},
      },
      color: {
        field: 'split',
        type: 'nominal',
        title: null,
        scale: { domain: ['train', 'validation'], range: ['#1f77b4', '#ff7f0e'] },
        legend: { orient: 'bottom' },
      },
      tooltip: [{ field: 'epoch' }, { field: 'phase' }, { field: 'split' }, { field: 'value', format: '.4f' }],
    },
  };
  const layers: object[] = [line];
  if (boundaries.length > 0) {
    // Each boundary is labelled on both sides, "← transfer learning | fine-tuning →", above the plot
    // area (curves near 100% accuracy or zero loss run along its top edge).
    const marks = {
      values: boundaries.map((b) => ({ x: b.x, before: `← ${PHASE_TITLES[b.before]}`, after: `${PHASE_TITLES[b.phase]} →` })),
    };
    const label = (field: 'before' | 'after') => ({
      data: marks,
      mark: { type: 'text', align: field === 'after' ? 'left' : 'right', baseline: 'bottom', dx: field === 'after' ? 4 : -4, y: -4, fontSize: 11, color: '#333' },
      encoding: { x: { field: 'x', type: 'quantitative' }, text: { field } },
    });
    layers.push(
      { data: marks, mark: { type: 'rule', strokeDash: [6, 4], color: '#555' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
      label('before'),
      label('after'),
    );
  }
  const title = metric === 'accuracy' ? 'Accuracy' : 'Loss (cross-entropy)';
  return { title: { text: title, offset: boundaries.length > 0 ? 20 : 10 }, width: 380, height: 260, layer: layers };
}

/** Accuracy and loss per epoch, train and validation side by side; phase changes marked. */
export function curvesSpec(history: EpochRecord[]): TopLevelSpec {
  const points = curvePoints(history);
  const boundaries = phaseBoundaries(history);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    hconcat: [curvePanel('accuracy', points, boundaries), curvePanel('loss', points, boundaries)],
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec;
}

/** The colour of a cell nobody was classified into, and of 0% on the legend. */
const EMPTY_CELL = '#ffffff';

/** Shares whose square roots are evenly spaced: even ticks on the sqrt colour scale. */
const SHARE_TICKS = [0, 0.25, 0.5, 0.75, 1].map((r) => r * r);

/** Cell size that keeps class names legible: 47 EMNIST classes get 18 px cells and 11 px labels. */
function confusionCell(classes: number): number {
  if (classes <= 12) return 44;
  if (classes <= 25) return 28;
  return 18;
}

/**
 * Heatmap of confusion[true][predicted], coloured by the share of the true class (so rare and
 * common classes read alike); counts are printed in the cells when they fit.
 */
export function confusionSpec(labels: string[], confusion: number[][]): TopLevelSpec {
  const cells: { true: string; predicted: string; count: number; rate: number }[] = [];
  confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      if (count > 0) cells.push({ true: labels[t]!, predicted: labels[p]!, count, rate: count / total });
    });
  });
  const cell = confusionCell(labels.length);
  const longest = Math.max(...labels.map((l) => l.length));
  const showCounts = labels.length <= 25;
  const axisCommon = { labelFontSize: labels.length > 25 ? 11 : 12, ticks: false, domain: false, labelPadding: 4 };
  const layers: object[] = [
    {
      mark: { type: 'rect', stroke: '#fff', strokeWidth: 0.5 },
      encoding: {
        color: {
          field: 'rate',
          type: 'quantitative',
          title: 'share of true class',
          // sqrt keeps one confusion in hundreds visible; the legend's ticks are evenly spaced on
          // that scale, and 0% is the white of the empty cells.
          scale: { type: 'sqrt', domain: [0, 1], range: [EMPTY_CELL, '#08306b'], interpolate: 'rgb' },
          legend: {
            format: '.0%',
            orient: 'right',
            titleLimit: 220,
            values: SHARE_TICKS,
            gradientLength: Math.max(120, Math.min(300, cell * labels.length)),
          },
        },
        tooltip: [{ field: 'true' }, { field: 'predicted' }, { field: 'count' }, { field: 'rate', format: '.1%' }],
      },
    },
  ];
  if (showCounts) {
    layers.push({
      mark: { type: 'text', fontSize: cell >= 40 ? 11 : 9 },
      encoding: {
        text: { field: 'count', type: 'quantitative' },
        color: { condition: { test: 'datum.rate > 0.5', value: 'white' }, value: '#222' },
      },
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Confusion matrix (test set)', subtitle: 'rows: true class, columns: predicted class' },
    data: { values: cells },
    width: { step: cell },
    height: { step: cell },
    encoding: {
      x: {
        field: 'predicted',
        type: 'nominal',
        sort: labels,
        scale: { domain: labels },
        title: 'predicted',
        axis: { ...axisCommon, orient: 'top', labelAngle: longest > 2 ? -45 : 0, labelAlign: longest > 2 ? 'left' : 'center' },
      },
      y: { field: 'true', type: 'nominal', sort: labels, scale: { domain: labels }, title: 'true', axis: axisCommon },
    },
    layer: layers,
  } as TopLevelSpec;
}
