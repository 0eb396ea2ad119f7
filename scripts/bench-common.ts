/**
 * What the training benchmarks (bench-train, bench-finetune) share: each measurement runs in a
 * fresh process (the wasm pool's size is fixed when the backend starts) and prints one JSON line;
 * tl and torch alternate rounds so both see the same neighbours' load, which is printed beside
 * every figure.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Measurement {
  imagesPerSecond: number;
  /** CPU time of the measured steps per image (all threads): what the neighbours' load does not change at 1 thread. */
  cpuMsPerImage?: number;
}

function lastJsonLine<T>(stdout: string, what: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${what} printed no result:\n${stdout}`);
  }
}

/** Run one measuring process; its last stdout line is the JSON result. */
export function measure(what: string, command: string, argv: string[]): Measurement {
  const r = spawnSync(command, argv, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stderr}`);
  return lastJsonLine<Measurement>(r.stdout, what);
}

/** A python that has torch: `preferred`, TL_PYTHON, python3 on PATH, then Debian's /usr/bin/python3. */
export function torchPython(preferred?: string): string | undefined {
  const candidates = [preferred, process.env.TL_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  return candidates.find((python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
}

export const loadAverage = (): string => os.loadavg()[0]!.toFixed(2);
export const threadsLabel = (t: number): string => `${t} thread${t === 1 ? '' : 's'}`;

/** `measure()` with the 1-minute load average before and after, printed as one line; returns the rate. */
export function timedLine(label: string, detail: string, run: () => Measurement): number {
  const before = loadAverage();
  const m = run();
  const cpu = m.cpuMsPerImage === undefined ? '' : `, ${m.cpuMsPerImage.toFixed(1)} CPU ms/img`;
  console.log(`${label}: ${m.imagesPerSecond.toFixed(1)} img/s${cpu} (${detail}; load ${before} -> ${loadAverage()})`);
  return m.imagesPerSecond;
}

/** Best rate per key over the alternating rounds. */
export class BestRates {
  private readonly rates = new Map<string, number>();
  note(key: string, rate: number): void {
    this.rates.set(key, Math.max(this.rates.get(key) ?? 0, rate));
  }
  get(key: string): number | undefined {
    return this.rates.get(key);
  }
}

/** One configuration measured on both sides (torch absent when no python has it). */
export interface Contest {
  /** e.g. `alpha 0.25, 2 threads`. */
  label: string;
  key: string;
  detail: string;
  wasm: () => Measurement;
  torch?: () => Measurement;
}

/** `rounds` rounds of every contest, wasm then torch back to back; the best rate of each side per key. */
export function alternate(rounds: number, contests: Contest[]): BestRates {
  const best = new BestRates();
  for (let round = 1; round <= rounds; round++) {
    for (const { label, key, detail, wasm, torch } of contests) {
      best.note(`wasm ${key}`, timedLine(`wasm  ${label} (round ${round})`, detail, wasm));
      if (torch) best.note(`torch ${key}`, timedLine(`torch ${label} (round ${round})`, detail, torch));
    }
  }
  return best;
}

/** tl's rate over torch's for one configuration, when both were measured. */
function ratioOf(best: BestRates, key: string): number | undefined {
  const tl = best.get(`wasm ${key}`);
  const torch = best.get(`torch ${key}`);
  return tl !== undefined && torch ? tl / torch : undefined;
}

/** One configuration of a benchmark: rates noted as `wasm KEY` and `torch KEY`. */
export interface Configuration {
  label: string;
  key: string;
  /** Whether its ratio is among those the last line takes the worst of. */
  decides: boolean;
}

/** A line per configuration (both best rates and their ratio), then `ratio wasm/torch: X`, the worst deciding ratio. */
export function printRatios(best: BestRates, configurations: Configuration[]): void {
  const rate = (key: string) => best.get(key)?.toFixed(1) ?? '-';
  const deciding: (number | undefined)[] = [];
  for (const { label, key, decides } of configurations) {
    const ratio = ratioOf(best, key);
    console.log(`${label}: wasm ${rate(`wasm ${key}`)} img/s, torch ${rate(`torch ${key}`)} img/s, ratio ${ratio?.toFixed(2) ?? 'n/a'}`);
    if (decides) deciding.push(ratio);
  }
  const worst = deciding.length && deciding.every((r) => r !== undefined) ? Math.min(...(deciding as number[])) : undefined;
  console.log(`ratio wasm/torch: ${worst?.toFixed(2) ?? 'n/a'}`);
}
