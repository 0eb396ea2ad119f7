import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';

/**
 * A sweep spec (JSON): fixed options, a grid of option values, and optional plots.
 *
 *   {
 *     "name": "fashion-mlp-activation",
 *     "command": "custom-train",                  // or "train" (transfer learning)
 *     "base": { "dataset": "fashion-mnist", "model": "mlp", "epochs": 5 },
 *     "grid": { "mlp.activation": ["relu", "tanh"], "lr": [0.001, 0.01] },
 *     "plots": [{ "x": "lr", "color": "mlp.activation", "log": true }]
 *   }
 *
 * Keys are option paths of the trainer (dotted for nested options: mlp.hidden, cnn.filters).
 * `grid` may also be a list of grids; the sweep runs the union of their cartesian products.
 */
export type SweepCommand = 'custom-train' | 'train';
export const SWEEP_COMMANDS: readonly SweepCommand[] = ['custom-train', 'train'];

export type Options = Record<string, unknown>;

export interface PlotSpec {
  /** Swept key on the x axis. */
  x: string;
  /** Swept key that gives one line per value. */
  color?: string;
  /** Result column on the y axis (default testAccuracy). */
  y?: 'testAccuracy' | 'testLoss' | 'trainSeconds' | 'imagesPerSecond';
  /** Log-scale x (default: for lr, l2, trainLimit, or values spanning 100x or more). */
  log?: boolean;
  title?: string;
}

export interface SweepSpec {
  name: string;
  description?: string;
  command: SweepCommand;
  base: Options;
  grid: Record<string, unknown[]>[];
  plots?: PlotSpec[];
}

export interface SweepConfig {
  /** Hash of command + options: names the run directory, so a resumed sweep finds it. */
  id: string;
  command: SweepCommand;
  /** Swept values only, keyed by the grid key. */
  params: Options;
  /** Everything handed to the trainer (without `out`). */
  options: Options;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON with sorted object keys: equal configs hash equally whatever order the spec wrote them in. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function configId(command: SweepCommand, options: Options): string {
  return sha256(stableStringify({ command, options })).slice(0, 12);
}

/** Set `a.b.c` in a copy-on-write way: nested objects of `base` are never mutated. */
export function setPath(target: Options, key: string, value: unknown): Options {
  const [head, ...rest] = key.split('.');
  if (rest.length === 0) return { ...target, [head!]: value };
  const inner = isPlainObject(target[head!]) ? (target[head!] as Options) : {};
  return { ...target, [head!]: setPath(inner, rest.join('.'), value) };
}

function cartesian(grid: Record<string, unknown[]>): Options[] {
  let combos: Options[] = [{}];
  for (const [key, values] of Object.entries(grid)) {
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  return combos;
}

/** Every configuration of the spec, in grid order, duplicates (same id) dropped. */
export function expandGrid(spec: SweepSpec): SweepConfig[] {
  const seen = new Set<string>();
  const configs: SweepConfig[] = [];
  for (const grid of spec.grid) {
    for (const params of cartesian(grid)) {
      const options = Object.entries(params).reduce((o, [k, v]) => setPath(o, k, v), spec.base);
      const id = configId(spec.command, options);
      if (seen.has(id)) continue;
      seen.add(id);
      configs.push({ id, command: spec.command, params, options });
    }
  }
  return configs;
}

/** The grid keys, in first-seen order. */
export function sweptKeys(spec: SweepSpec): string[] {
  return [...new Set(spec.grid.flatMap((g) => Object.keys(g)))];
}

/**
 * Validate a parsed spec; `allowedKeys` (from the trainer) catches typos like "mlp.hiden" before
 * hours of training. Every problem is one line naming the file.
 */
export function parseSweepSpec(raw: unknown, file: string, allowedKeys?: (command: SweepCommand) => readonly string[]): SweepSpec {
  const bad = (problem: string, fix: string) => fileError(file, problem, fix);
  if (!isPlainObject(raw)) throw bad('is not a JSON object', 'see examples/sweeps/ for the format');
  const command = (raw.command ?? 'custom-train') as SweepCommand;
  if (!SWEEP_COMMANDS.includes(command)) throw bad(`"command" is "${String(raw.command)}"`, `use one of ${SWEEP_COMMANDS.join(', ')}`);
  const base = raw.base ?? {};
  if (!isPlainObject(base)) throw bad('"base" is not an object', 'give fixed options as {"key": value}');
  const gridRaw = Array.isArray(raw.grid) ? raw.grid : [raw.grid];
  const grid = gridRaw.map((g, i) => {
    if (!isPlainObject(g) || Object.keys(g).length === 0) throw bad(`grid ${i + 1} is not a non-empty object`, 'give "grid": {"key": [values...]}');
    for (const [k, v] of Object.entries(g)) {
      if (!Array.isArray(v) || v.length === 0) throw bad(`grid key "${k}" is not a non-empty list`, `write "${k}": [value1, value2]`);
    }
    return g as Record<string, unknown[]>;
  });
  const allowed = allowedKeys?.(command);
  if (allowed) {
    const keys = [...grid.flatMap((g) => Object.keys(g)), ...leafPaths(base)];
    const unknown = keys.find((k) => !allowed.includes(k));
    if (unknown) throw bad(`unknown option "${unknown}" for ${command}`, `use one of ${allowed.join(', ')}`);
  }
  const name = typeof raw.name === 'string' && raw.name ? raw.name : path.basename(file, path.extname(file));
  const plots = (raw.plots ?? undefined) as PlotSpec[] | undefined;
  const swept = new Set(grid.flatMap((g) => Object.keys(g)));
  for (const p of plots ?? []) {
    for (const k of [p.x, p.color].filter((k): k is string => k !== undefined)) {
      if (!swept.has(k)) throw bad(`plot key "${k}" is not swept in the grid`, `plot one of ${[...swept].join(', ')}`);
    }
  }
  return { name, description: typeof raw.description === 'string' ? raw.description : undefined, command, base, grid, plots };
}

/** "mlp.hidden" for {mlp: {hidden: [...]}}: arrays are values, not paths. */
function leafPaths(o: Options, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => (isPlainObject(v) ? leafPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

export async function readSweepSpec(file: string, allowedKeys?: (command: SweepCommand) => readonly string[]): Promise<SweepSpec> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw fileError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'pass the path of a sweep spec JSON file');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw fileError(file, `is not valid JSON (${(err as Error).message})`, 'fix the syntax (see examples/sweeps/)');
  }
  return parseSweepSpec(raw, file, allowedKeys);
}
