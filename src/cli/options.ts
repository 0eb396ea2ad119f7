import { InvalidArgumentError, Option, type Command } from 'commander';
import { flag, flagOf, type OptionSpec, type OptionTable, type ValueType } from '../util/options.js';

/** Commander's parser for one typed value: the library's parse and range check, as a usage error. */
export function argParser<T>(type: ValueType<T>): (text: string) => T {
  return (text) => {
    const value = type.fromText(text);
    // commander prefixes: error: option '--top-k <n>' argument '0' is invalid.
    if (value === undefined || !type.accepts(value)) throw new InvalidArgumentError(`It must be ${type.expected}.`);
    return value;
  };
}

/** The commander flag of one table entry: help, default and parser all come from the spec. */
export function commanderOption(key: string, spec: OptionSpec<unknown>): Option {
  if (spec.type === flag) {
    // A switch that is on by default is turned off with --no-KEY; commander then defaults it to true.
    return new Option(spec.default === true ? `--no-${flagOf(key).slice(2)}` : flagOf(key), spec.help);
  }
  const option = new Option(`${flagOf(key)} ${spec.placeholder ?? spec.type.placeholder}`, spec.help).argParser(argParser(spec.type));
  if (spec.default !== undefined) option.default(spec.default);
  if (spec.required) option.makeOptionMandatory();
  return option;
}

/** Adds a table's options (all, or the listed keys in that order) to a command. */
export function addOptions<Tab extends OptionTable>(command: Command, table: Tab, keys: readonly (keyof Tab & string)[] = Object.keys(table)): Command {
  for (const key of keys) command.addOption(commanderOption(key, table[key]!));
  return command;
}
