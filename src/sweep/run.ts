import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RunDir, type RunMetrics } from '../artifacts/run.js';
import { exists, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { createProgress, logEvent } from '../runtime/progress.js';
import { renderVegaLite } from '../reporting/vega.js';
import { plotFileName, plotsFor, plotTitle, sweepPlotSpec } from './plots.js';
import { formatParam, resultsCsv, resultsMarkdown, type SweepResult } from './results.js';
import { expandGrid, readSweepSpec, sweptKeys, type SweepConfig, type SweepSpec } from './spec.js';
import { allowedKeys, defaultTrainer, type SweepTrainer } from './trainers.js';
import { errorLine } from '../util/errors.js';

export interface SweepOptions {
  /** Output folder (default runs/sweeps/<spec name>). */
  out?: string;
  trainer?: SweepTrainer;
  /** One line per configuration; default stderr. */
  log?: (line: string) => void;
  /** Render PNG plots (default true). */
  plots?: boolean;
  /** Interrupts the configuration that is training; the sweep stops after it. */
  signal?: AbortSignal;
}

export interface SweepSummary {
  out: string;
  results: SweepResult[];
  csv: string;
  markdown: string;
  plots: string[];
}

/** "lr0.01-hidden128-64": the swept values, readable in a directory listing. */
function slug(params: SweepConfig['params']): string {
  const text = Object.entries(params)
    .map(([k, v]) => `${k.split('.').at(-1)}${formatParam(v)}`)
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '_');
  return text.slice(0, 60);
}

export function configRunDir(out: string, config: SweepConfig): string {
  return path.join(out, 'runs', `${slug(config.params)}-${config.id}`);
}

function firstLine(err: unknown): string {
  return errorLine(err).trim().slice(0, 300);
}

async function readHistoryLength(runDir: string): Promise<number | undefined> {
  const run = new RunDir(runDir);
  return (await exists(run.file('history'))) ? (await run.history()).length : undefined;
}

async function finishedResult(config: SweepConfig, runDir: string, metrics: RunMetrics, status: SweepResult['status']): Promise<SweepResult> {
  return {
    id: config.id,
    status,
    params: config.params,
    runDir,
    testAccuracy: metrics.test.accuracy,
    testLoss: metrics.test.loss,
    trainCount: metrics.dataset?.trainCount,
    epochs: await readHistoryLength(runDir),
    bestEpoch: metrics.bestEpoch,
    trainSeconds: metrics.trainSeconds,
    imagesPerSecond: metrics.imagesPerSecond,
  };
}

/** An interrupted run is kept beside its slot (replacing an older one) so the slot can train again. */
async function setAsideInterrupted(runDir: string): Promise<void> {
  const aside = `${runDir}.interrupted`;
  await fs.rm(aside, { recursive: true, force: true });
  await fs.rename(runDir, aside);
}

/**
 * One configuration: read back when its run directory holds a finished run's metrics.json, else
 * train it. A failure becomes a 'failed' row with a one-line reason; it never stops the sweep.
 */
async function runConfig(config: SweepConfig, out: string, trainer: SweepTrainer, commandLine: string, signal?: AbortSignal): Promise<SweepResult> {
  const runDir = configRunDir(out, config);
  const run = new RunDir(runDir);
  try {
    if (await exists(run.file('metrics'))) {
      const metrics = await run.metrics();
      if (!metrics.interrupted) return await finishedResult(config, runDir, metrics, 'reused');
      await setAsideInterrupted(runDir);
    } else if (await exists(runDir)) {
      throw new Error(`${runDir} exists without metrics.json (an unfinished run); delete it to train this configuration again`);
    }
    // A configuration killed mid-training left its checkpoint in RUN.partial: continue it.
    const resume = await exists(`${runDir}.partial`);
    const result = await trainer(config.command, config.options, runDir, commandLine, { resume, signal });
    return await finishedResult(config, result.runDir, result.metrics, result.metrics.interrupted ? 'interrupted' : 'trained');
  } catch (err) {
    return { id: config.id, status: 'failed', params: config.params, runDir, error: firstLine(err) };
  }
}

async function writeTables(out: string, spec: SweepSpec, results: SweepResult[], plots: { file: string; title: string }[]) {
  const keys = sweptKeys(spec);
  const csv = path.join(out, 'results.csv');
  const markdown = path.join(out, 'results.md');
  await writeFileAtomic(csv, resultsCsv(results, keys));
  await writeFileAtomic(markdown, resultsMarkdown(results, keys, { title: `Sweep: ${spec.name}`, description: spec.description, plots }));
  return { csv, markdown };
}

async function writePlots(out: string, spec: SweepSpec, results: SweepResult[]): Promise<{ file: string; title: string }[]> {
  const written: { file: string; title: string }[] = [];
  if (!results.some((r) => r.status === 'trained' || r.status === 'reused')) return written;
  for (const plot of plotsFor(spec, results)) {
    const chart = await renderVegaLite(sweepPlotSpec(plot, results));
    const file = plotFileName(plot);
    await writeFileAtomic(path.join(out, file), chart.png);
    written.push({ file, title: plot.title ?? plotTitle(plot) });
  }
  return written;
}

/**
 * Run every configuration of `spec` in order, one run directory each under OUT/runs/, keyed by a
 * hash of the configuration: re-running the same spec skips what finished and retries what failed.
 * results.csv and results.md are rewritten after each configuration, the plots at the end.
 */
export async function runSweepSpec(spec: SweepSpec, out: string, opts: SweepOptions = {}): Promise<SweepSummary> {
  const trainer = opts.trainer ?? defaultTrainer;
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const configs = expandGrid(spec);
  await fs.mkdir(out, { recursive: true });
  await writeJsonAtomic(path.join(out, 'spec.json'), spec);
  const progress = createProgress({ label: `sweep ${spec.name}`, total: configs.length, unit: 'configs' });
  const results: SweepResult[] = [];
  for (const [i, config] of configs.entries()) {
    const described = Object.entries(config.params).map(([k, v]) => `${k}=${formatParam(v)}`).join(' ');
    const commandLine = `tl sweep ${spec.name} [${described}]`;
    const result = await runConfig(config, out, trainer, commandLine, opts.signal);
    results.push(result);
    const outcome = result.status === 'failed' ? `FAILED: ${result.error}` : `test acc ${(result.testAccuracy! * 100).toFixed(2)}% (${result.status})`;
    log(`[${i + 1}/${configs.length}] ${described}: ${outcome}`);
    logEvent({ event: 'sweep-config', sweep: spec.name, index: i + 1, total: configs.length, ...result });
    await writeTables(out, spec, results, []);
    progress.tick(1);
    if (result.status === 'interrupted') {
      log(`sweep interrupted after ${i + 1} of ${configs.length} configurations; run the same command again to resume`);
      break;
    }
  }
  const plots = opts.plots === false ? [] : await writePlots(out, spec, results);
  const { csv, markdown } = await writeTables(out, spec, results, plots);
  const failed = results.filter((r) => r.status === 'failed').length;
  const finished = results.filter((r) => r.status === 'trained' || r.status === 'reused').length;
  progress.done(`sweep ${spec.name}: ${finished} of ${configs.length} finished, ${failed} failed; ${markdown}`);
  return { out, results, csv, markdown, plots: plots.map((p) => path.join(out, p.file)) };
}

export function defaultSweepOut(spec: SweepSpec): string {
  return path.resolve('runs', 'sweeps', spec.name);
}

/** `tl sweep SPEC.json [--out DIR]` as a library call. */
export async function runSweep(specFile: string, opts: SweepOptions = {}): Promise<SweepSummary> {
  const spec = await readSweepSpec(specFile, allowedKeys);
  return runSweepSpec(spec, path.resolve(opts.out ?? defaultSweepOut(spec)), opts);
}
