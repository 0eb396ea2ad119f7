import cliProgress from 'cli-progress';
import { appendFileSync } from 'node:fs';
import { fileError } from '../util/errors.js';
import { currentContext, emitEvent } from './context.js';

/**
 * Progress for people and machines: a bar with ETA on a terminal, a plain line every few
 * seconds otherwise (CI logs, pipes), and optionally one JSON object per event in a file
 * (`--log-json`). Every long loop in tl reports through this one interface.
 */
export interface Progress {
  /** Advance by `n` units; `values` are shown beside the bar (loss, acc, ...). */
  tick(n?: number, values?: Record<string, number | string>): void;
  /** Finish the bar; `summary` is printed as one line. */
  done(summary?: string): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  unit?: string;
  /** Where plain lines and bars go (default: the operation's progress stream; none = silent). */
  stream?: NodeJS.WriteStream;
  quiet?: boolean;
  /** Plain (non-TTY) output: at most one line per this many ms (default 5000; 0 = every tick). */
  intervalMs?: number;
}

/** One structured event to the current operation's event sink (the CLI's --log-json), if any. */
export function logEvent(event: Record<string, unknown>): void {
  emitEvent(event);
}

/**
 * The CLI's --log-json sink: one JSON object per line, appended. The file is opened at once, so an
 * unwritable path fails before any work starts rather than mid-training.
 */
export function jsonLogSink(file: string): (event: Record<string, unknown>) => void {
  try {
    appendFileSync(file, '');
  } catch (err) {
    throw fileError(file, `cannot be written (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'pass a writable path to --log-json');
  }
  return (event) => appendFileSync(file, JSON.stringify(event) + '\n');
}

function formatValues(values: Record<string, number | string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(4)) : v}`)
    .join('  ');
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60).toString().padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** Bar widths: never wider than this, and dropped rather than squeezed below the minimum. */
const MAX_BAR = 40;
const MIN_BAR = 8;

/**
 * The line for a terminal `maxWidth` columns wide (cli-progress cuts each line at the edge): the
 * bar gets what the text leaves; where even the text does not fit, the bar goes, then the counts,
 * then the end of the values, so the ETA and the loss stay in view.
 */
function fitToTerminal(label: string, unit: string): cliProgress.GenericFormatter {
  const render = cliProgress.Format.Formatter;
  const tail = '| ETA {eta_formatted} | {values}';
  const withCounts = `${label} {percentage}% {value}/{total} ${unit} ${tail}`;
  const withoutCounts = `${label} {percentage}% ${tail}`;
  return (options, params, payload) => {
    // One column spare: writing into the last one makes some terminals wrap.
    const width = params.maxWidth - 1;
    const text = render({ ...options, format: withCounts }, params, payload);
    const room = width - text.length - ' []'.length;
    if (room >= MIN_BAR) return render({ ...options, format: withCounts.replace('{percentage}', '[{bar}] {percentage}'), barsize: Math.min(MAX_BAR, room) }, params, payload);
    if (text.length <= width) return text;
    return render({ ...options, format: withoutCounts }, params, payload).slice(0, width);
  };
}

export function createProgress(opts: ProgressOptions): Progress {
  // Silent unless the caller (the CLI) gave the operation a stream: the library never writes to the terminal by itself.
  const stream = opts.stream ?? currentContext().progressStream;
  if (!stream) return { tick() {}, done() {} };
  const quiet = opts.quiet ?? process.env.TL_QUIET === '1';
  const start = Date.now();
  let current = 0;
  let last: Record<string, number | string> = {};

  if (!quiet && stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: fitToTerminal(opts.label, opts.unit ?? ''),
        barsize: MAX_BAR,
        stream,
        hideCursor: true,
        etaBuffer: 50,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(opts.total, 0, { values: '' });
    return {
      tick(n = 1, values) {
        current += n;
        if (values) last = values;
        bar.update(current, { values: formatValues(last) });
      },
      done(summary) {
        bar.stop();
        if (summary) stream.write(summary + '\n');
      },
    };
  }

  const interval = opts.intervalMs ?? 5000;
  let lastPrint = start;
  let printed = false;
  const line = (now: number) => {
    const elapsed = (now - start) / 1000;
    const eta = current > 0 ? (elapsed / current) * Math.max(0, opts.total - current) : Number.NaN;
    const values = formatValues(last);
    stream.write(`${opts.label}: ${current}/${opts.total}${opts.unit ? ` ${opts.unit}` : ''} ETA ${formatSeconds(eta)}${values ? `  ${values}` : ''}\n`);
    lastPrint = now;
    printed = true;
  };
  return {
    tick(n = 1, values) {
      current += n;
      if (values) last = values;
      const now = Date.now();
      // Long loops end on a complete line; short ones (under one interval) stay silent.
      if (!quiet && (now - lastPrint >= interval || (printed && current >= opts.total))) line(now);
    },
    done(summary) {
      if (!quiet && summary) stream.write(summary + '\n');
    },
  };
}
