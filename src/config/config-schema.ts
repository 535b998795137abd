import { stringify as stringifyYaml } from 'yaml';
import type { OptionIssue, OptionSet, OptionValues } from '../options/option-set.js';
import { readOptionText, type OptionDeclarations } from '../options/option-spec.js';
import { ConfigError } from './config-error.js';
import { parseConfigFile, type ConfigFile } from './config-file.js';
import { configKeyName, configKeysOf, type ConfigKey } from './config-key.js';

/** Where {@link ConfigSchema.resolve} takes values from. Each is optional. */
export interface ConfigSources {
  /**
   * Values given as flags, by key name (`sync_interval_ms`): strings, or booleans for boolean
   * keys; undefined means not given.
   */
  readonly flags?: Readonly<Record<string, unknown>> | undefined;
  /** The process environment; only the variables of known keys are read, empty ones count as unset. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** The config file, parsed by {@link ConfigSchema.parseFile}. */
  readonly file?: ConfigFile | undefined;
}

/** The output forms of {@link ConfigSchema.format}. */
export type ConfigFormat = 'yaml' | 'json';

/**
 * A configuration made of declared options: its keys with their names in every source (see
 * {@link ConfigKey}), and how values are read from flags, environment and a YAML file, checked,
 * and printed. `wald serve`'s is `SERVE_CONFIG`; tests build others.
 */
export class ConfigSchema<D extends OptionDeclarations> {
  /** Every key, in declaration order (the order of `--help`, `--print-config` and the docs). */
  readonly keys: readonly ConfigKey[];
  private readonly byOption: ReadonlyMap<string, ConfigKey>;

  /** @throws Error when two keys would share a flag or an environment variable. */
  constructor(
    readonly options: OptionSet<D>,
    /** Prefix of every environment variable (`WALD_`). */
    readonly envPrefix: string,
  ) {
    this.keys = configKeysOf(options.keys, envPrefix);
    this.byOption = new Map(this.keys.map((key) => [key.option.name, key]));
  }

  /** Parses the YAML text of a config file; see {@link parseConfigFile}. */
  parseFile(text: string, path: string): ConfigFile {
    return parseConfigFile(this.keys, text, path);
  }

  /**
   * Resolves the configuration from its sources, highest precedence first: flags, environment,
   * file, defaults. Checks every value, then the rules across keys.
   *
   * @throws ConfigError naming the key (and where its value came from) for any bad value.
   */
  resolve(sources: ConfigSources = {}): OptionValues<D> {
    const sourceOf = new Map<string, string>();
    const { values, issues } = this.options.read((option) => {
      const key = this.byOption.get(option.name)!;
      const [raw, source] = givenValue(key, sources);
      sourceOf.set(option.name, source);
      return typeof raw === 'string' ? readOptionText(raw, option.spec.textForm) : raw;
    });
    const issue = issues[0] ?? this.options.ruleIssues(values, configKeyName)[0];
    if (issue !== undefined) throw configError(issue, sourceOf.get(issue.key) ?? 'default');
    return values;
  }

  /**
   * `values` as the config file writes them: snake_case keys, groups nested, in declaration order;
   * an unset optional key (a file not given) as `null`, which the file reads back as unset.
   */
  fileForm(values: OptionValues<D>): Record<string, unknown> {
    const form: Record<string, unknown> = {};
    for (const key of this.keys) {
      const [first, member] = key.option.path;
      const value = (member === undefined ? values[first] : (values[first] as Readonly<Record<string, unknown>>)[member]) ?? null;
      if (key.filePath.length === 1) form[key.filePath[0]!] = value;
      else ((form[key.filePath[0]!] ??= {}) as Record<string, unknown>)[key.filePath[1]!] = value;
    }
    return form;
  }

  /** `values` as YAML (a valid config file) or JSON, in {@link fileForm}. */
  format(values: OptionValues<D>, format: ConfigFormat): string {
    const form = this.fileForm(values);
    return format === 'json' ? `${JSON.stringify(form, null, 2)}\n` : stringifyYaml(form);
  }
}

/** A key's value from the source of highest precedence that gives one, and that source's name. */
function givenValue(key: ConfigKey, sources: ConfigSources): readonly [unknown, string] {
  const flag = sources.flags?.[key.name];
  if (flag !== undefined) return [flag, `flag ${key.flag}`];
  const env = sources.env?.[key.env];
  if (env !== undefined && env !== '') return [env, `env ${key.env}`];
  const file = sources.file;
  // `null` unsets an optional key (as --print-config writes one), and is a wrong value of any other.
  const isUnset = file?.values.get(key.name) === null && key.option.spec.default === undefined;
  if (file !== undefined && file.values.has(key.name) && !isUnset) return [file.values.get(key.name), `${file.path} key ${key.name}`];
  return [undefined, 'default'];
}

function configError(issue: OptionIssue, source: string): ConfigError {
  const name = configKeyName(issue.key);
  return new ConfigError(name, source, `invalid ${name} (from ${source}): ${JSON.stringify(issue.value)} is not ${issue.expected}`);
}
