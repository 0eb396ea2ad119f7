import type { Options } from './spec.js';

/** interrupted: Ctrl-C stopped training; the sweep stops there and a re-run trains it again. */
export type SweepStatus = 'trained' | 'reused' | 'failed' | 'interrupted';

/** One row of results.csv / results.md. */
export interface SweepResult {
  id: string;
  status: SweepStatus;
  params: Options;
  runDir: string;
  testAccuracy?: number;
  testLoss?: number;
  /** Training images actually used (after trainLimit and the validation split). */
  trainCount?: number;
  epochs?: number;
  bestEpoch?: number;
  trainSeconds?: number;
  imagesPerSecond?: number;
  /** One line: why the configuration failed. */
  error?: string;
}

/** A swept value as people read it: [128, 64] -> "128-64", [] -> "none". */
export function formatParam(value: unknown): string {
  if (Array.isArray(value)) return value.length ? value.map(formatParam).join('-') : 'none';
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const METRIC_COLUMNS = ['testAccuracy', 'testLoss', 'trainCount', 'epochs', 'bestEpoch', 'trainSeconds', 'imagesPerSecond'] as const;

function metricText(r: SweepResult, key: (typeof METRIC_COLUMNS)[number]): string {
  const v = r[key];
  if (v === undefined) return '';
  if (key === 'testAccuracy' || key === 'testLoss') return v.toFixed(4);
  if (key === 'trainSeconds' || key === 'imagesPerSecond') return v.toFixed(1);
  return String(v);
}

function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV; swept values as JSON (machine-readable: [128,64], true, "relu" -> relu). */
export function resultsCsv(results: SweepResult[], keys: string[]): string {
  const header = ['id', 'status', ...keys, ...METRIC_COLUMNS, 'runDir', 'error'];
  const rows = results.map((r) => [
    r.id,
    r.status,
    ...keys.map((k) => (k in r.params ? (typeof r.params[k] === 'string' ? (r.params[k] as string) : JSON.stringify(r.params[k])) : '')),
    ...METRIC_COLUMNS.map((m) => metricText(r, m)),
    r.runDir,
    r.error ?? '',
  ]);
  return [header, ...rows].map((row) => row.map(csvField).join(',')).join('\n') + '\n';
}

function mdCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export interface MarkdownOptions {
  title: string;
  description?: string;
  plots: { file: string; title: string }[];
}

/** A Markdown table (best test accuracy in bold) followed by the plots. */
export function resultsMarkdown(results: SweepResult[], keys: string[], opts: MarkdownOptions): string {
  const best = Math.max(...results.map((r) => r.testAccuracy ?? -1));
  const header = [...keys, 'test acc', 'test loss', 'train images', 'epochs', 'train s', 'img/s', 'status'];
  const lines = [`# ${opts.title}`, ''];
  if (opts.description) lines.push(opts.description, '');
  const count = (...statuses: SweepStatus[]) => results.filter((r) => statuses.includes(r.status)).length;
  const interrupted = count('interrupted');
  lines.push(
    `${results.length} configurations: ${count('trained', 'reused')} finished, ${count('failed')} failed${interrupted ? `, ${interrupted} interrupted (run the sweep again to resume)` : ''}.`,
    '',
  );
  lines.push(`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i < keys.length || i === header.length - 1 ? '---' : '---:')).join(' | ')} |`);
  for (const r of results) {
    const acc = r.testAccuracy === undefined ? '' : `${(r.testAccuracy * 100).toFixed(2)}%`;
    const status = r.status === 'failed' ? `failed: ${r.error ?? ''}` : r.status;
    const cells = [
      ...keys.map((k) => (k in r.params ? formatParam(r.params[k]) : '')),
      r.testAccuracy === best && best >= 0 ? `**${acc}**` : acc,
      metricText(r, 'testLoss'),
      metricText(r, 'trainCount'),
      metricText(r, 'epochs'),
      metricText(r, 'trainSeconds'),
      r.imagesPerSecond === undefined ? '' : r.imagesPerSecond.toFixed(0),
      status,
    ];
    lines.push(`| ${cells.map(mdCell).join(' | ')} |`);
  }
  for (const p of opts.plots) lines.push('', `![${p.title}](${p.file})`);
  return lines.join('\n') + '\n';
}
