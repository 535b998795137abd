/**
 * The key table of docs/configuration.md, rendered from the declarations. `npm run gen:docs`
 * writes it into the page; a unit test fails when the page and the declarations drift apart.
 */
import type { OptionDeclarations } from '../options/option-spec.js';
import type { ConfigSchema } from './config-schema.js';
import { configKeyName, type ConfigKey } from './config-key.js';

/** Opens the generated table in docs/configuration.md. */
export const KEY_TABLE_START = '<!-- key table: generated from the declarations by `npm run gen:docs`; do not edit -->';
/** Closes the generated table in docs/configuration.md. */
export const KEY_TABLE_END = '<!-- end of key table -->';

const SIZE_UNITS = [
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
] as const;

const cell = (text: string): string => text.replaceAll('|', '\\|');
const code = (text: string): string => `\`${text}\``;
const sentence = (text: string): string => `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;

function defaultCell(key: ConfigKey): string {
  const value = key.option.spec.default;
  if (value === undefined) return 'none';
  const written = code(String(value));
  if (key.option.spec.unit !== 'bytes' || typeof value !== 'number') return written;
  const size = SIZE_UNITS.find(([, bytes]) => value >= bytes && value % bytes === 0);
  return size === undefined ? written : `${written} (${value / size[1]} ${size[0]})`;
}

/** Expectations said by the unit column or true of every key of a kind go unsaid. */
const GENERIC_EXPECTATIONS = new Set(['a positive integer', 'a non-empty string', 'a boolean (true or false)']);

/** The markdown table of every key of `schema`: names, default, unit, what it is and why. */
export function renderKeyTable<D extends OptionDeclarations>(schema: ConfigSchema<D>): string {
  const rows = schema.keys.map((key) => {
    const { spec } = key.option;
    const flags = spec.textForm === 'boolean' ? `${code(key.flag)}, ${code(`--no-${key.flag.slice(2)}`)}` : code(key.flag);
    const unit = spec.choices === undefined ? spec.unit : spec.choices.map((choice) => code(String(choice))).join(' | ');
    const musts = [
      ...(spec.choices === undefined && !GENERIC_EXPECTATIONS.has(spec.expected) ? [spec.expected] : []),
      ...schema.options.rules
        .filter((rule) => rule.key === key.option.name)
        .map((rule) => rule.describe((name) => code(configKeyName(name)))),
    ];
    const text = [sentence(spec.doc), spec.why, ...musts.map((must) => sentence(`must be ${must}`))].join(' ');
    return `| ${[code(key.name), flags, code(key.env), defaultCell(key), unit, text].map(cell).join(' | ')} |`;
  });
  return ['| key | flag | environment | default | unit | what and why |', '| --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/**
 * `page` with the text between {@link KEY_TABLE_START} and {@link KEY_TABLE_END} replaced by `table`.
 *
 * @throws Error when the page lacks the markers.
 */
export function withKeyTable(page: string, table: string): string {
  const start = page.indexOf(KEY_TABLE_START);
  const end = page.indexOf(KEY_TABLE_END);
  if (start < 0 || end < start) throw new Error(`the page has no ${KEY_TABLE_START} ... ${KEY_TABLE_END} section`);
  return `${page.slice(0, start + KEY_TABLE_START.length)}\n${table}\n${page.slice(end)}`;
}
