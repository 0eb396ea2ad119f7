import { TlError } from './errors.js';

/**
 * One definition per option: its type (how text parses and which values are in range), its
 * default and its help. The trainers resolve their options from these tables, the CLI builds its
 * flags from them and the sweep takes its keys from them, so no default or limit is stated twice.
 * Nothing here knows about commander: the dependency points from the CLI to the library.
 */
export interface ValueType<T> {
  /** What a valid value is, completing "must be ...": `a positive integer`. */
  expected: string;
  /** The value a command-line word stands for, or undefined when it is not one. */
  fromText(text: string): T | undefined;
  accepts(value: T): boolean;
  /** Placeholder in help: `<n>`. */
  placeholder: string;
}

export interface OptionSpec<T> {
  type: ValueType<T>;
  /** Absent: the option is unset unless given (or the trainer derives it, as the help says). */
  default?: T;
  help: string;
  /** The CLI refuses to run without it. */
  required?: boolean;
  /** Placeholder in help where the type's is too vague: `<dir>`. */
  placeholder?: string;
}

/** Keys are the library's option names; the CLI flag is the key in kebab case (`batchSize` -> `--batch-size`). */
export type OptionTable = Record<string, OptionSpec<any>>;

/** Options with their defaults filled in, typed from the table. */
export type Resolved<Tab extends OptionTable> = {
  [K in keyof Tab]: Tab[K] extends { default: infer D } ? D : Tab[K] extends OptionSpec<infer V> ? (Tab[K] extends { required: true } ? V : V | undefined) : never;
};

/** `--batch-size`: how errors and the CLI name an option. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The one line every out-of-range or unreadable value gets, from the CLI or a library call. */
export function invalidValue(key: string, type: ValueType<unknown>, got: unknown): string {
  return `${flagOf(key)} must be ${type.expected} (got ${typeof got === 'string' ? `"${got}"` : JSON.stringify(got)})`;
}

/** Fills in the table's defaults and checks every given value, before any work starts. */
export function resolveOptions<Tab extends OptionTable>(table: Tab, given: { [K in keyof Tab]?: unknown }): Resolved<Tab> {
  const resolved: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(table)) {
    const value = (given as Record<string, unknown>)[key] ?? spec.default;
    if (value === undefined && spec.required) throw new TlError(`${flagOf(key)} is required`);
    if (value !== undefined && !spec.type.accepts(value)) throw new TlError(invalidValue(key, spec.type, value));
    resolved[key] = value;
  }
  return resolved as Resolved<Tab>;
}

/** A strict number: the whole word (`0.25abc` and `` are not numbers), finite. */
function numberFromText(text: string): number | undefined {
  const n = text.trim() === '' ? Number.NaN : Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Inclusive `min`/`max`; `above`/`below` exclude the bound itself. */
interface Bounds {
  min?: number;
  max?: number;
  above?: number;
  below?: number;
}

function inBounds(n: number, b: Bounds): boolean {
  return !((b.min !== undefined && n < b.min) || (b.max !== undefined && n > b.max) || (b.above !== undefined && n <= b.above) || (b.below !== undefined && n >= b.below));
}

export function numberType(expected: string, bounds: Bounds = {}): ValueType<number> {
  return {
    expected,
    placeholder: '<x>',
    fromText: numberFromText,
    accepts: (v) => typeof v === 'number' && Number.isFinite(v) && inBounds(v, bounds),
  };
}

export function integerType(expected: string, bounds: Bounds = {}): ValueType<number> {
  const number = numberType(expected, bounds);
  return { ...number, placeholder: '<n>', accepts: (v) => Number.isInteger(v) && number.accepts(v) };
}

export const positiveInteger = integerType('a positive integer', { min: 1 });
export const nonNegativeInteger = integerType('an integer of at least 0', { min: 0 });
export const positiveNumber = numberType('a positive number', { above: 0 });
/** Fractions held out of a split: 0 (none) up to, not including, everything. */
export const fraction = numberType('in [0, 1)', { min: 0, below: 1 });
export const anyInteger = integerType('an integer');

export function oneOf<const V extends string>(values: readonly V[]): ValueType<V> {
  const accepts = (v: unknown): v is V => (values as readonly unknown[]).includes(v);
  return { expected: `one of ${values.join(', ')}`, placeholder: '<name>', fromText: (t) => (accepts(t) ? t : undefined), accepts };
}

export const text: ValueType<string> = {
  expected: 'a non-empty string',
  placeholder: '<value>',
  fromText: (t) => t,
  accepts: (v) => typeof v === 'string' && v !== '',
};

/** Switches: on the command line `--x` (or `--no-x` when the default is on). */
export const flag: ValueType<boolean> = {
  expected: 'true or false',
  placeholder: '',
  fromText: (t) => (t === 'true' ? true : t === 'false' ? false : undefined),
  accepts: (v) => typeof v === 'boolean',
};

/** `512,512`; `none` or nothing is the empty list. */
export function integerList(expected: string, each: ValueType<number>): ValueType<number[]> {
  return {
    expected,
    placeholder: '<list>',
    fromText(t) {
      if (t.trim() === '' || t === 'none') return [];
      const values = t.split(',').map((v) => each.fromText(v.trim()));
      return values.every((v): v is number => v !== undefined) ? values : undefined;
    },
    accepts: (v) => Array.isArray(v) && v.every((n) => each.accepts(n)),
  };
}

/** The options every trainer shares, one definition each. */
export const SEED_OPTION = { type: anyInteger, default: 1, help: 'seed for splits, initialisation, dropout and shuffles' } satisfies OptionSpec<number>;
export const VAL_SPLIT_OPTION = { type: fraction, default: 0.1, help: 'validation fraction (stratified, seeded) held out of the training images' } satisfies OptionSpec<number>;
export const ADAM_LR_OPTION = { type: positiveNumber, default: 1e-3, help: 'Adam learning rate' } satisfies OptionSpec<number>;
export const OUT_OPTION = { type: text, placeholder: '<dir>', help: 'run directory; an existing one is never overwritten' } satisfies OptionSpec<string>;
export const TRANSFER_BATCH_SIZE_OPTION = { type: positiveInteger, default: 32, help: 'mini-batch size' } satisfies OptionSpec<number>;
export const TEST_SPLIT_OPTION = {
  type: fraction,
  default: 0.1,
  help: 'test fraction (stratified, seeded) held out when the folder has no test/ tree; never trained on or used to choose an epoch (0: measure on validation)',
} satisfies OptionSpec<number>;
export const RESTORE_BEST_OPTION = { type: flag, default: true, help: 'keep the weights of the epoch with the best validation loss (--no-restore-best keeps the last epoch)' } satisfies OptionSpec<boolean>;
export const PATIENCE_OPTION = { type: nonNegativeInteger, default: 0, help: 'stop after this many epochs without a better validation loss (0: train every epoch)' } satisfies OptionSpec<number>;
