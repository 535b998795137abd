import { parse as parseYaml } from 'yaml';
import { ConfigError } from './config-error.js';
import { snakeCase, type ConfigKey } from './config-key.js';

/** The values of a config file by key name (`sync_interval_ms`, `compaction.enabled`), and its path (for messages). */
export interface ConfigFile {
  readonly path: string;
  readonly values: ReadonlyMap<string, unknown>;
}

function isMapping(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses the YAML text of a config file: a mapping of snake_case keys to values, a group's keys
 * in a mapping of their own (`compaction: { enabled: true }`).
 *
 * @throws ConfigError when the text is not YAML, not a mapping, names an unknown key (with the
 *   snake_case spelling when a camelCase or kebab-case one was used), or gives a group as
 *   anything but a mapping.
 */
export function parseConfigFile(keys: readonly ConfigKey[], text: string, path: string): ConfigFile {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(undefined, path, `config file ${path} is not valid YAML: ${(error as Error).message}`);
  }
  const values = new Map<string, unknown>();
  if (parsed === null || parsed === undefined) return { path, values };
  if (!isMapping(parsed)) throw new ConfigError(undefined, path, `config file ${path} must be a mapping of keys to values`);
  const byName = new Map(keys.map((key) => [key.name, key]));
  const groups = new Set(keys.filter((key) => key.filePath.length > 1).map((key) => key.filePath[0]));
  const unknownKey = (name: string, isTopLevel: boolean): ConfigError => {
    const spelled = name.split('.').map((part) => snakeCase(part.replaceAll('-', '_'))).join('.');
    const known = byName.get(spelled);
    let hint = '';
    if (known !== undefined && isTopLevel && known.filePath.length > 1) {
      hint = ` (a group's keys nest: ${known.filePath[0]}: { ${known.filePath[1]}: ... })`;
    } else if (spelled !== name && (known !== undefined || groups.has(spelled))) {
      hint = ` (keys are snake_case: did you mean ${spelled}?)`;
    }
    return new ConfigError(name, path, `config file ${path}: unknown key ${name}${hint}`);
  };
  for (const [name, value] of Object.entries(parsed)) {
    if (byName.get(name)?.filePath.length === 1) {
      values.set(name, value);
    } else if (groups.has(name)) {
      if (!isMapping(value)) throw new ConfigError(name, path, `config file ${path}: ${name} must be a mapping of its keys to values`);
      for (const [memberName, memberValue] of Object.entries(value)) {
        const dotted = `${name}.${memberName}`;
        if (!byName.has(dotted)) throw unknownKey(dotted, false);
        values.set(dotted, memberValue);
      }
    } else {
      throw unknownKey(name, true);
    }
  }
  return { path, values };
}
