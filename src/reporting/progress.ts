import cliProgress from 'cli-progress';
import { appendFileSync } from 'node:fs';

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
  /** Where plain lines and bars go; stderr keeps stdout clean for --json. */
  stream?: NodeJS.WriteStream;
  quiet?: boolean;
}

let jsonLogFile: string | undefined;

/** Route structured progress events to a file, one JSON object per line. */
export function setJsonLog(file: string | undefined): void {
  jsonLogFile = file;
}

export function logEvent(event: Record<string, unknown>): void {
  if (jsonLogFile) appendFileSync(jsonLogFile, JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n');
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

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const quiet = opts.quiet ?? process.env.TL_QUIET === '1';
  const start = Date.now();
  let current = 0;
  let last: Record<string, number | string> = {};

  if (!quiet && stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${opts.label} [{bar}] {percentage}% {value}/{total} ${opts.unit ?? ''} | ETA {eta_formatted} | {values}`,
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

  let lastPrint = start;
  return {
    tick(n = 1, values) {
      current += n;
      if (values) last = values;
      const now = Date.now();
      if (!quiet && now - lastPrint >= 5000) {
        lastPrint = now;
        const elapsed = (now - start) / 1000;
        const eta = (elapsed / current) * (opts.total - current);
        stream.write(`${opts.label}: ${current}/${opts.total} ${opts.unit ?? ''} ETA ${formatSeconds(eta)} ${formatValues(last)}\n`);
      }
    },
    done(summary) {
      if (!quiet && summary) stream.write(summary + '\n');
    },
  };
}
