/**
 * One option, declared once by the layer that owns it: its default, unit, documentation and check.
 *
 * The engine (`src/engine/wal-options.ts`), the server (`src/server/server-options.ts`) and
 * `wald serve` (`src/config/serve-config.ts`) declare their options with the builders below. The
 * option types, the defaults, the checks of `Wal.open` and `WaldServer`, the configuration's
 * flags, environment variables and YAML keys, `--help`, `--print-config` and the key table of
 * docs/configuration.md are all derived from those declarations, so a new option is one edit.
 */

/**
 * How an option's value is read from text (an environment variable, a flag, a quoted YAML
 * scalar): `integer` reads decimal digits, `boolean` reads `true`/`false`/`1`/`0`, `string` takes
 * the text as it is. Text that does not read is kept as text, so that the option's own check
 * rejects it with its own message.
 */
export type OptionTextForm = 'integer' | 'boolean' | 'string';

/** What is written by hand for every option. */
export interface OptionDoc<T> {
  /** The value when the option is not given. */
  readonly default: T;
  /** Unit of the value (`ms`, `bytes`, `records`...); also the value's name in `--help`. */
  readonly unit: string;
  /** One line saying what the option is, for `--help` and the docs (lower case, no full stop). */
  readonly doc: string;
  /** Why the default is what it is, and what else an operator should know; for the docs. */
  readonly why: string;
}

/** A declared option: its documentation, and how its values are read and checked. */
export interface OptionSpec<T> extends OptionDoc<T> {
  readonly kind: 'option';
  /** What a valid value is, as a noun phrase for messages: `a positive integer`. */
  readonly expected: string;
  /** How the value is read from text. */
  readonly textForm: OptionTextForm;
  /** The allowed values, when they are a fixed list (listed in `--help` and the docs). */
  readonly choices: readonly T[] | undefined;
  /** Whether `value` is a valid value of the option. */
  readonly isValid: (value: unknown) => value is T;
}

/** Options of a group, keyed by their names within the group. */
export interface OptionGroupMembers {
  readonly [name: string]: OptionSpec<unknown>;
}

/**
 * Options that belong together under one name (`compaction.enabled`): one level deep, so a
 * group holds options only. The YAML file nests them (`compaction: { enabled: true }`); flags
 * and environment variables join the names (`--compaction-enabled`, `WALD_COMPACTION_ENABLED`).
 */
export interface OptionGroup<M extends OptionGroupMembers> {
  readonly kind: 'group';
  readonly members: M;
}

/** The options of a layer, keyed by their camelCase names, in the order of `--help` and the docs. */
export interface OptionDeclarations {
  readonly [name: string]: OptionSpec<unknown> | OptionGroup<OptionGroupMembers>;
}

/** Most integers an option can hold: larger ones lose precision as JavaScript numbers. */
const MAX_INTEGER = Number.MAX_SAFE_INTEGER;

/** Bounds of an integer option; both inclusive. */
export interface IntegerBounds {
  /** Least value; default 1. */
  readonly min?: number | undefined;
  /** Greatest value; default 2^53 - 1. */
  readonly max?: number | undefined;
}

function integerExpected(min: number, max: number): string {
  if (max === MAX_INTEGER) return min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
  return `an integer from ${min} to ${max}`;
}

/**
 * An integer option, by default from 1 to 2^53 - 1 (`bounds` narrows it). Every size, count and
 * period of wald is one of these, with its unit in its name (`segmentSizeBytes`).
 */
export function integerOption(doc: OptionDoc<number>, bounds: IntegerBounds = {}): OptionSpec<number> {
  const min = bounds.min ?? 1;
  const max = bounds.max ?? MAX_INTEGER;
  return {
    kind: 'option',
    ...doc,
    expected: integerExpected(min, max),
    textForm: 'integer',
    choices: undefined,
    isValid: (value): value is number => Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max,
  };
}

/** A boolean option; as a flag it is `--name` / `--no-name`. */
export function booleanOption(doc: Omit<OptionDoc<boolean>, 'unit'>): OptionSpec<boolean> {
  return {
    kind: 'option',
    ...doc,
    unit: 'boolean',
    expected: 'a boolean (true or false)',
    textForm: 'boolean',
    choices: undefined,
    isValid: (value): value is boolean => typeof value === 'boolean',
  };
}

/** An option that takes one of a fixed list of strings. */
export function choiceOption<const C extends readonly string[]>(choices: C, doc: OptionDoc<C[number]>): OptionSpec<C[number]> {
  return {
    kind: 'option',
    ...doc,
    expected: `one of ${choices.join(', ')}`,
    textForm: 'string',
    choices,
    isValid: (value): value is C[number] => (choices as readonly unknown[]).includes(value),
  };
}

/** What narrows a {@link textOption} beyond "not empty". */
export interface TextFormat {
  /** What a valid value is, as a noun phrase for messages. */
  readonly expected: string;
  /** Whether a non-empty string is valid. */
  readonly matches: (value: string) => boolean;
}

/** A non-empty string option; `format` narrows it (an address, a path of some shape). */
export function textOption(doc: OptionDoc<string>, format?: TextFormat): OptionSpec<string> {
  return {
    kind: 'option',
    ...doc,
    expected: format?.expected ?? 'a non-empty string',
    textForm: 'string',
    choices: undefined,
    isValid: (value): value is string => typeof value === 'string' && value !== '' && (format?.matches(value) ?? true),
  };
}

/**
 * A string option that is off unless given (a file to read, say): its default is `undefined`, and
 * a given value must be a non-empty string that `format` accepts.
 */
export function optionalTextOption(doc: Omit<OptionDoc<string | undefined>, 'default'>, format?: TextFormat): OptionSpec<string | undefined> {
  return {
    kind: 'option',
    ...doc,
    default: undefined,
    expected: format?.expected ?? 'a non-empty string',
    textForm: 'string',
    choices: undefined,
    isValid: (value): value is string | undefined =>
      value === undefined || (typeof value === 'string' && value !== '' && (format?.matches(value) ?? true)),
  };
}

/** A group of options under one name; see {@link OptionGroup}. */
export function optionGroup<const M extends OptionGroupMembers>(members: M): OptionGroup<M> {
  return { kind: 'group', members };
}

/**
 * The value `text` stands for under `form`, or `text` itself when it does not read (the option's
 * check then rejects it, naming what it expects).
 */
export function readOptionText(text: string, form: OptionTextForm): unknown {
  switch (form) {
    case 'integer':
      return /^-?\d+$/.test(text) ? Number(text) : text;
    case 'boolean':
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      return text;
    case 'string':
      return text;
  }
}
