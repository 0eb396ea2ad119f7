import type { DatasetInfo, Evaluation } from '../artifacts/run.js';

/** One line per class, then accuracy: what a person reads after training. */
export function formatEvaluation(e: Evaluation): string {
  const width = Math.max(5, ...e.perClass.map((c) => c.label.length));
  const rows = e.perClass.map(
    (c) =>
      `${c.label.padEnd(width)}  ${c.precision.toFixed(3)}  ${c.recall.toFixed(3)}  ${c.f1.toFixed(3)}  ${String(c.support).padStart(6)}`,
  );
  return [
    `${'class'.padEnd(width)}  prec   recall f1     support`,
    ...rows,
    `accuracy ${(e.accuracy * 100).toFixed(2)}%  loss ${e.loss.toFixed(4)}`,
  ].join('\n');
}

/** Files that could not be used, one line each (on stderr: stdout stays the result). */
export function reportSkipped(dataset: DatasetInfo): void {
  const skipped = dataset.skipped ?? [];
  if (skipped.length === 0) return;
  process.stderr.write(`skipped ${skipped.length} file(s):\n`);
  for (const s of skipped) process.stderr.write(`  ${s.file}: ${s.reason}\n`);
}
