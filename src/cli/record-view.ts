import type { RecordType, Record as RecordMessage } from '../gen/wald/v1/record.js';
import { recordTypeFromWire } from '../wire/wire-record-type.js';
import { formatTable } from './table.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The UTF-8 text of `bytes`, or undefined when they are not valid UTF-8. */
function utf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Control characters (C0, DEL, C1) would break a table line, so such text is shown as base64. */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * How a byte field reads in a text table: `-` when absent, `""` when empty, the text when it is
 * valid UTF-8 without control characters, `base64:...` otherwise.
 */
export function bytesAsText(bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return '-';
  if (bytes.length === 0) return '""';
  const text = utf8(bytes);
  return text !== undefined && !CONTROL_CHARACTER.test(text) ? text : `base64:${Buffer.from(bytes).toString('base64')}`;
}

/**
 * A byte field in JSON, as {@link RecordJson} writes one: `{ name: text }` when the bytes are
 * valid UTF-8, else `{ name_base64: base64 }`, so the exact bytes can always be recovered.
 */
export function jsonBytes(name: string, bytes: Uint8Array): Record<string, string> {
  const text = utf8(bytes);
  return text !== undefined ? { [name]: text } : { [`${name}_base64`]: Buffer.from(bytes).toString('base64') };
}

/** A uint64 from the wire as a JSON number (exact below 2^53), or a decimal string above. */
export function jsonInteger(value: bigint): number | string {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

/** An optional uint64 as a JSON number, or null when unset. */
export function jsonOptionalInteger(value: bigint | undefined): number | string | null {
  return value === undefined ? null : jsonInteger(value);
}

/** The ISO 8601 form of a timestamp in ms since the epoch. */
export function isoTime(timestampMs: bigint): string {
  const ms = Number(timestampMs);
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : timestampMs.toString();
}

/** The lower-case name of a record type (`put`, `delete`, `checkpoint`, `flush_all`), as the log names it. */
export function recordTypeName(type: RecordType): string {
  return recordTypeFromWire(type) ?? `type-${String(type)}`;
}

/**
 * The JSON form of a record. Byte fields are UTF-8 strings when the bytes are valid UTF-8
 * (`key`, `value`, `headers`), and base64 under a `..._base64` name otherwise (`key_base64`,
 * `value_base64`, `headers_base64`), so that every record converts back to its exact bytes. Field
 * names are the proto's (snake_case), as in every `--json` output of the CLI.
 */
export interface RecordJson {
  offset: number | string;
  timestamp: number | string;
  /** The timestamp as ISO 8601, for reading. */
  time: string;
  type: string;
  key?: string | null;
  key_base64?: string;
  value?: string;
  value_base64?: string;
  headers: Record<string, string>;
  headers_base64?: Record<string, string>;
}

/** Converts a record to {@link RecordJson}. */
export function recordToJson(record: RecordMessage): RecordJson {
  const key = record.key === undefined ? undefined : utf8(record.key);
  const value = utf8(record.value);
  const headers: Record<string, string> = {};
  let headersBase64: Record<string, string> | undefined;
  for (const [name, bytes] of Object.entries(record.headers)) {
    const text = utf8(bytes);
    if (text !== undefined) headers[name] = text;
    else (headersBase64 ??= {})[name] = bytes.toString('base64');
  }
  return {
    offset: jsonInteger(record.offset),
    timestamp: jsonInteger(record.timestamp),
    time: isoTime(record.timestamp),
    type: recordTypeName(record.type),
    ...(record.key === undefined ? { key: null } : key !== undefined ? { key } : { key_base64: record.key.toString('base64') }),
    ...(value !== undefined ? { value } : { value_base64: record.value.toString('base64') }),
    headers,
    ...(headersBase64 === undefined ? {} : { headers_base64: headersBase64 }),
  };
}

/** Column titles of a record table. */
export const RECORD_COLUMNS = ['OFFSET', 'TIMESTAMP', 'TYPE', 'KEY', 'VALUE', 'HEADERS'] as const;

/** The cells of one record in a text table, in the order of {@link RECORD_COLUMNS}. */
export function recordCells(record: RecordMessage): string[] {
  const headers = Object.entries(record.headers)
    .map(([name, value]) => `${name}=${bytesAsText(value)}`)
    .join(',');
  return [
    record.offset.toString(),
    isoTime(record.timestamp),
    recordTypeName(record.type),
    bytesAsText(record.key),
    bytesAsText(record.value),
    headers,
  ];
}

/** A text table of records, columns aligned across all of them. */
export function formatRecordTable(records: readonly RecordMessage[]): string {
  return formatTable(RECORD_COLUMNS, records.map(recordCells));
}
