import type { Command } from 'commander';
import type { Evaluation } from '../../artifacts/run.js';
import path from 'node:path';
import { evaluateRun, openRun, type Misclassified, type RunEvaluation } from '../../training/predict.js';
import { writeReport, type ReportResult } from '../../reporting/index.js';
import { TlError } from '../../util/errors.js';
import { formatEvaluation } from '../output.js';

/** Rows = true class, columns = predicted, with the class names as headers. */
export function formatConfusion(e: Evaluation): string {
  const names = e.perClass.map((c) => c.label);
  const width = Math.max(5, ...names.map((n) => n.length), ...e.confusion.flat().map((v) => String(v).length));
  const header = `${'true\\pred'.padEnd(width)}  ${names.map((n) => n.padStart(width)).join(' ')}`;
  const rows = e.confusion.map((row, i) => `${names[i]!.padEnd(width)}  ${row.map((v) => String(v).padStart(width)).join(' ')}`);
  return [header, ...rows].join('\n');
}

function formatMisclassified(list: Misclassified[]): string {
  if (list.length === 0) return 'misclassified: none';
  return [`misclassified (${list.length}):`, ...list.map((m) => `  ${m.file}: ${m.label} -> ${m.predicted} @ ${(m.confidence * 100).toFixed(2)}%`)].join('\n');
}

/** The run's report, on this folder's scoring instead of the run's own test set. */
function writeScoredReport(runDir: string, dataDir: string, result: RunEvaluation, out: string | undefined): Promise<ReportResult> {
  const folder = path.resolve(dataDir);
  return writeReport(runDir, {
    out: out ?? path.join(runDir, `evaluate-${path.basename(folder)}`),
    scored: { folder, evaluation: result.evaluation, predictions: result.predictions, skipped: result.skipped },
  });
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('score a run on a folder of labelled images: accuracy, per-class precision/recall/F1, confusion, mistakes')
    .argument('<run>', 'run directory')
    .argument('<data-dir>', 'one sub-folder per class, named like the run\'s classes (or a dataset with a test/ sub-tree)')
    .option('--json', 'machine-readable output')
    .option('--report', 'also write a report of this scoring (report.html and PNGs, Grad-CAM included)')
    .option('--out <dir>', 'where --report writes (default: RUN/evaluate-<folder name>)')
    .action(async (runDir: string, dataDir: string, flags: { json?: boolean; report?: boolean; out?: string }) => {
      if (flags.out && !flags.report) throw new TlError('--out is where --report writes; add --report');
      const run = await openRun(runDir);
      const result = await evaluateRun(run, dataDir);
      run.model.dispose();
      const report = flags.report ? await writeScoredReport(run.dir, dataDir, result, flags.out) : undefined;
      if (flags.json) {
        const { count, predictions: _, ...rest } = result;
        console.log(JSON.stringify({ run: run.dir, data: dataDir, images: count, ...rest, ...(report ? { report: report.html } : {}) }, null, 2));
        return;
      }
      for (const s of result.skipped) console.error(`skipped ${s.file}: ${s.reason}`);
      console.log(formatEvaluation(result.evaluation));
      console.log(formatConfusion(result.evaluation));
      console.log(formatMisclassified(result.misclassified));
      if (report) console.log(`report: ${report.html}`);
    });
}
