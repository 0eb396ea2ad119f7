import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LrFindResult } from '../training/lr-find.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { errorLine } from '../util/errors.js';
import { CHART_CONFIG, type TopLevelSpec } from './vega.js';

/** The result of `tl lr-find RUN`, kept in the run for its report. */
export const LR_FIND_FILE = 'lr-find.json';

/** A learning rate as lr-find prints it: `3.2e-3`. */
export function formatLr(lr: number): string {
  return lr.toExponential(1);
}

/** Writes the result as JSON, atomically (readers see the old result or the new one). */
export function saveLrFindResult(file: string, result: LrFindResult): Promise<void> {
  return writeJsonAtomic(file, result);
}

function isLrFindResult(value: unknown): value is LrFindResult {
  const r = value as Partial<LrFindResult> | null;
  const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  return typeof r === 'object' && r !== null && finite(r.suggestedLr) && finite(r.minLossLr) && Array.isArray(r.points) && r.points.length > 0 && r.points.every((p) => finite(p?.lr) && typeof p.loss === 'number' && typeof p.smoothed === 'number');
}

/**
 * The lr-find result kept in a run directory: undefined when there is none, the reason when the
 * file cannot be used (damaged, or written by something else).
 */
export async function readLrFindResult(runDir: string): Promise<{ result: LrFindResult } | { problem: string } | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(runDir, LR_FIND_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { problem: `${LR_FIND_FILE} cannot be read (${errorLine(err)})` };
  }
  try {
    const value: unknown = JSON.parse(text);
    if (isLrFindResult(value)) return { result: value };
  } catch {
    // reported below
  }
  return { problem: `${LR_FIND_FILE} is not a result of tl lr-find; run it again: tl lr-find ${runDir}` };
}

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
    title: `learning-rate range test: suggested ${formatLr(result.suggestedLr)}`,
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
