import type { OptionDeclarations, OptionGroup, OptionGroupMembers, OptionSpec } from './option-spec.js';

type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;

/** The values of declared options, every option present: what a layer works with. */
export type OptionValues<D extends OptionDeclarations> = {
  readonly [K in keyof D]: D[K] extends OptionGroup<infer M> ? { readonly [N in keyof M]: ValueOf<M[N]> } : ValueOf<D[K]>;
};

/** The options a caller passes: each optional, `undefined` meaning "the default". */
export type OptionInput<D extends OptionDeclarations> = {
  readonly [K in keyof D]?:
    | (D[K] extends OptionGroup<infer M> ? { readonly [N in keyof M]?: ValueOf<M[N]> | undefined } : ValueOf<D[K]>)
    | undefined;
};

/** One option of a set, groups flattened: `path` is `[name]` or `[group, member]`. */
export interface OptionKey {
  readonly path: readonly [string] | readonly [string, string];
  /** The path joined with dots: `segmentSizeBytes`, `compaction.enabled`. */
  readonly name: string;
  readonly spec: OptionSpec<unknown>;
  /** The group the option belongs to, if any. */
  readonly group: OptionGroup<OptionGroupMembers> | undefined;
}

/** An option whose value cannot be used, and why. */
export interface OptionIssue {
  /** {@link OptionKey.name} of the option. */
  readonly key: string;
  readonly value: unknown;
  /** What a valid value is, as a noun phrase: `a positive integer`, `at least maxBatchBytes + 256 KiB (4456448 here)`. */
  readonly expected: string;
  /** Whether the value is of the wrong type (a `TypeError`) rather than out of range (a `RangeError`). */
  readonly isWrongType: boolean;
}

/** Writes an option's name for the reader of a message: as is for code, snake_case for a config file. */
export type KeyNamer = (key: string) => string;

/**
 * A check that relates options to each other. It belongs to one option, `key`, the one whose
 * value is reported as wrong (the limit that is too small for the others).
 */
export interface OptionRule<C> {
  /** {@link OptionKey.name} of the option the rule reports. */
  readonly key: string;
  /**
   * What `key`'s value must be, as a noun phrase naming the other options through `name`
   * (`at least maxBatchBytes + 256 KiB`); for messages and the docs.
   */
  readonly describe: (name: KeyNamer) => string;
  /**
   * Undefined when `values` keep the rule, else what the rule asks of `key` for these values
   * (`4456448`). Runs only on values that passed their own checks.
   */
  readonly check: (values: C) => string | undefined;
}

const asIs: KeyNamer = (key) => key;

/**
 * A layer's declared options with their cross-option rules: derives the defaults, the flat list
 * of options (for names, `--help` and docs), and the checks.
 *
 * `X` is what a layer adds to the values for its rules (the server checks its message sizes
 * against the log's limits, which are the engine's options).
 */
export class OptionSet<D extends OptionDeclarations, X extends object = object> {
  /** Every option, groups flattened, in declaration order. */
  readonly keys: readonly OptionKey[];
  /** Every option's default. */
  readonly defaults: OptionValues<D>;

  /** @throws Error when a default fails its own check or a rule names no option (a declaration bug). */
  constructor(
    readonly declarations: D,
    readonly rules: readonly OptionRule<OptionValues<D> & X>[] = [],
  ) {
    this.keys = flatten(declarations);
    for (const key of this.keys) {
      if (!key.spec.isValid(key.spec.default)) throw new Error(`the default of option ${key.name} is not ${key.spec.expected}`);
    }
    for (const rule of rules) {
      if (!this.keys.some((key) => key.name === rule.key)) throw new Error(`a rule names ${rule.key}, which is not an option`);
    }
    this.defaults = this.read(() => undefined).values;
  }

  /**
   * Reads every option through `valueOf` (undefined: the default) and checks each on its own.
   * The values are only of use when there are no issues.
   */
  read(valueOf: (key: OptionKey) => unknown): { readonly values: OptionValues<D>; readonly issues: readonly OptionIssue[] } {
    const values: Record<string, unknown> = {};
    const issues: OptionIssue[] = [];
    for (const key of this.keys) {
      const given = valueOf(key);
      const value = given === undefined ? key.spec.default : given;
      if (!key.spec.isValid(value)) {
        issues.push({ key: key.name, value, expected: key.spec.expected, isWrongType: typeof value !== typeof key.spec.default });
      }
      if (key.path.length === 1) values[key.path[0]] = value;
      else ((values[key.path[0]] ??= {}) as Record<string, unknown>)[key.path[1]] = value;
    }
    for (const value of Object.values(values)) if (typeof value === 'object' && value !== null) Object.freeze(value);
    return { values: Object.freeze(values) as OptionValues<D>, issues };
  }

  /** The issues of the rules, in declaration order; other options are named through `name`. */
  ruleIssues(values: OptionValues<D> & X, name: KeyNamer = asIs): OptionIssue[] {
    return this.rules.flatMap((rule) => {
      const asked = rule.check(values);
      if (asked === undefined) return [];
      return [{ key: rule.key, value: valueAt(values, rule.key), expected: `${rule.describe(name)} (${asked} here)`, isWrongType: false }];
    });
  }

  /**
   * The values of `input` with every default filled in, checked on their own and then by the
   * rules (which also see `extra`).
   *
   * @throws TypeError for a value of the wrong type, RangeError for one out of range or against a
   *   rule; the message names the option as `describe` writes it (`options.segmentSizeBytes`).
   */
  resolve(input: OptionInput<D>, extra: X, describe: KeyNamer = (key) => `options.${key}`): OptionValues<D> {
    const { values, issues } = this.read((key) => {
      const [first, member] = key.path;
      const value: unknown = (input as Readonly<Record<string, unknown>>)[first];
      if (member === undefined || value === undefined) return value;
      if (typeof value !== 'object' || value === null) throw new TypeError(`${describe(first)} must be an object, got ${String(value)}`);
      return (value as Readonly<Record<string, unknown>>)[member];
    });
    const issue = issues[0] ?? this.ruleIssues({ ...values, ...extra })[0];
    if (issue !== undefined) throw optionError(issue, describe);
    return values;
  }
}

/** The error a library call throws for `issue`: `options.syncIntervalMs must be a positive integer, got 0`. */
export function optionError(issue: OptionIssue, describe: KeyNamer): TypeError | RangeError {
  const message = `${describe(issue.key)} must be ${issue.expected}, got ${String(issue.value)}`;
  return issue.isWrongType ? new TypeError(message) : new RangeError(message);
}

/** The value of the option named `name` (`a` or `group.a`) in `values`. */
function valueAt(values: object, name: string): unknown {
  return name.split('.').reduce<unknown>((value, part) => (value as Readonly<Record<string, unknown>> | undefined)?.[part], values);
}

function flatten(declarations: OptionDeclarations): OptionKey[] {
  return Object.entries(declarations).flatMap(([name, declared]): OptionKey[] => {
    if (declared.kind === 'option') return [{ path: [name], name, spec: declared, group: undefined }];
    return Object.entries(declared.members).map(([member, spec]) => ({
      path: [name, member] as const,
      name: `${name}.${member}`,
      spec,
      group: declared,
    }));
  });
}

type Merged<P extends readonly object[]> = P extends readonly [infer H, ...infer T extends readonly object[]] ? H & Merged<T> : unknown;

/**
 * The declarations of several layers as one, in order (how `wald serve` composes the engine's and
 * the server's options with its own).
 *
 * @throws Error when two parts declare the same name: one would silently replace the other.
 */
export function mergeDeclarations<const P extends readonly OptionDeclarations[]>(...parts: P): Merged<P> {
  const merged: Record<string, OptionDeclarations[string]> = {};
  for (const part of parts) {
    for (const [name, declared] of Object.entries(part)) {
      if (name in merged) throw new Error(`option ${name} is declared twice`);
      merged[name] = declared;
    }
  }
  return merged as Merged<P>;
}

/** `rules` of one set applied to the values of a set that composes it, through `project`. */
export function liftRules<C, V>(rules: readonly OptionRule<C>[], project: (values: V) => C): OptionRule<V>[] {
  return rules.map((rule) => ({ key: rule.key, describe: rule.describe, check: (values) => rule.check(project(values)) }));
}
