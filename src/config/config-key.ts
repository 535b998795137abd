import type { OptionKey } from '../options/option-set.js';

/**
 * One key of a configuration and its name in every source, each derived from the option's
 * camelCase name (`syncIntervalMs`, or `compaction.enabled` in a group):
 *
 * | source      | form                             | example                                      |
 * | ----------- | -------------------------------- | -------------------------------------------- |
 * | YAML file   | snake_case, groups nested        | `sync_interval_ms: 50`, `compaction: {enabled: true}` |
 * | environment | prefix + SCREAMING_SNAKE_CASE    | `WALD_SYNC_INTERVAL_MS`, `WALD_COMPACTION_ENABLED` |
 * | flag        | `--` + kebab-case                | `--sync-interval-ms`, `--compaction-enabled` |
 * | messages    | snake_case, groups dotted        | `sync_interval_ms`, `compaction.enabled`     |
 * | TypeScript  | the option's name                | `syncIntervalMs`, `compaction.enabled`       |
 */
export interface ConfigKey {
  /** The key as messages and the docs write it: `sync_interval_ms`, `compaction.enabled`. */
  readonly name: string;
  /** The key's path in the YAML file: `['sync_interval_ms']`, `['compaction', 'enabled']`. */
  readonly filePath: readonly string[];
  /** The flag: `--sync-interval-ms`. */
  readonly flag: string;
  /** The environment variable: `WALD_SYNC_INTERVAL_MS`. */
  readonly env: string;
  /** The declared option behind the key. */
  readonly option: OptionKey;
}

/** `syncIntervalMs` -> `sync_interval_ms`. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** `sync_interval_ms` -> `syncIntervalMs`: the inverse of {@link snakeCase}. */
export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

/** An option's name (`compaction.enabled`, `maxBatchBytes`) as a config key's name (`max_batch_bytes`). */
export function configKeyName(optionName: string): string {
  return optionName.split('.').map(snakeCase).join('.');
}

/**
 * The config keys of declared options, in declaration order, with environment variables named
 * `envPrefix` + SCREAMING_SNAKE_CASE.
 *
 * @throws Error when two keys would share a flag or a variable (`compactionEnabled` and
 *   `compaction.enabled`), or a name would not turn back into its option's name: the sources
 *   would then be ambiguous.
 */
export function configKeysOf(options: readonly OptionKey[], envPrefix: string): ConfigKey[] {
  const keys = options.map((option): ConfigKey => {
    const filePath = option.path.map(snakeCase);
    if (filePath.some((part, i) => camelCase(part) !== option.path[i] || !/^[a-z][a-z0-9_]*$/.test(part))) {
      throw new Error(`option ${option.name} has no snake_case form that reads back as itself`);
    }
    return {
      name: filePath.join('.'),
      filePath,
      flag: `--${filePath.join('-').replaceAll('_', '-')}`,
      env: `${envPrefix}${filePath.join('_').toUpperCase()}`,
      option,
    };
  });
  for (const form of ['flag', 'env'] as const) {
    const seen = new Map<string, string>();
    for (const key of keys) {
      const other = seen.get(key[form]);
      if (other !== undefined) throw new Error(`config keys ${other} and ${key.name} share the ${form} ${key[form]}`);
      seen.set(key[form], key.name);
    }
  }
  return keys;
}
