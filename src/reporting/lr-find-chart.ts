import type { LrFindResult } from '../training/lr-find.js';
import { CHART_CONFIG, type TopLevelSpec } from './vega.js';

/** Loss (raw and smoothed) against the learning rate on a log axis, the suggested rate marked. */
export function lrFindSpec(result: LrFindResult): TopLevelSpec {
  const values = result.points.flatMap((p) => [
    { lr: p.lr, loss: p.loss, series: 'loss' },
    { lr: p.lr, loss: p.smoothed, series: 'smoothed' },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    config: CHART_CONFIG,
    width: 480,
    height: 280,
    title: `learning-rate range test: suggested ${result.suggestedLr.toExponential(1)}`,
    layer: [
      {
        data: { values },
        mark: { type: 'line' },
        encoding: {
          x: { field: 'lr', type: 'quantitative', scale: { type: 'log' }, title: 'learning rate' },
          y: { field: 'loss', type: 'quantitative', title: 'training loss' },
          color: { field: 'series', type: 'nominal', title: null },
          opacity: { condition: { test: "datum.series === 'loss'", value: 0.35 }, value: 1 },
        },
      },
      {
        data: { values: [{ lr: result.suggestedLr }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: 'firebrick' },
        encoding: { x: { field: 'lr', type: 'quantitative' } },
      },
    ],
  } as TopLevelSpec;
}
