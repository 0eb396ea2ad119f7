import type { DatasetInfo, Evaluation, RunMetrics } from '../artifacts/run.js';

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

/** `accuracy 81.21% (95% CI 77.3-84.6%)  balanced 80.9%  top-3 95.1%`: accuracy with how far to trust it. */
function accuracyLine(e: Evaluation, set?: string): string {
  const ci = e.accuracyCI95 ? ` (95% CI ${(e.accuracyCI95[0] * 100).toFixed(1)}-${(e.accuracyCI95[1] * 100).toFixed(1)}%)` : '';
  const balanced = e.balancedAccuracy !== undefined ? `  balanced ${pct(e.balancedAccuracy)}` : '';
  const topK = (e.topK ?? []).map((t) => `  top-${t.k} ${pct(t.accuracy)}`).join('');
  return `${set ? `${set} ` : ''}accuracy ${pct(e.accuracy)}${ci}  loss ${e.loss.toFixed(4)}${balanced}${topK}`;
}

/** A run's held-out evaluation, named by the set it was measured on, and its warnings. */
export function formatRunEvaluation(m: RunMetrics): string {
  const kept = m.keptEpoch !== undefined ? [`kept epoch ${m.keptEpoch}${m.restoredBest === false ? ' (the last; --no-restore-best)' : ' (best validation loss)'}`] : [];
  return [formatEvaluation(m.test, m.evaluatedOn), ...kept, ...(m.warnings ?? []).map((w) => `warning: ${w}`)].join('\n');
}

/** One line per class, then accuracy: what a person reads after training. */
export function formatEvaluation(e: Evaluation, set?: string): string {
  const width = Math.max(5, ...e.perClass.map((c) => c.label.length));
  const rows = e.perClass.map(
    (c) =>
      `${c.label.padEnd(width)}  ${c.precision.toFixed(3)}  ${c.recall.toFixed(3)}  ${c.f1.toFixed(3)}  ${String(c.support).padStart(6)}`,
  );
  return [
    `${'class'.padEnd(width)}  prec   recall f1     support`,
    ...rows,
    accuracyLine(e, set),
  ].join('\n');
}

/** Files that could not be used, one line each (on stderr: stdout stays the result). */
export function reportSkipped(dataset: DatasetInfo): void {
  const skipped = dataset.skipped ?? [];
  if (skipped.length === 0) return;
  process.stderr.write(`skipped ${skipped.length} file(s):\n`);
  for (const s of skipped) process.stderr.write(`  ${s.file}: ${s.reason}\n`);
}
