import { MAX_HEADER_NAME_BYTES, MAX_HEADERS, MAX_PRODUCER_ID_BYTES } from '../engine/append-validation.js';
import type { AppendOptions, AppendRecord, RecordType as EngineRecordType } from '../engine/types.js';
import type { AppendRequest } from '../gen/wald/v1/append.js';
import { RecordType, type AppendRecord as AppendRecordMessage } from '../gen/wald/v1/record.js';
import { invalidArgument, safeIntegerField } from './request-fields.js';

/** An append request checked and translated for `Wal.append`. */
export interface AppendCall {
  readonly records: readonly AppendRecord[];
  readonly options: AppendOptions;
}

function recordType(type: RecordType, index: number): EngineRecordType {
  switch (type) {
    case RecordType.RECORD_TYPE_UNSPECIFIED:
    case RecordType.RECORD_TYPE_PUT:
      return 'put';
    case RecordType.RECORD_TYPE_DELETE:
      return 'delete';
    case RecordType.RECORD_TYPE_CHECKPOINT:
      throw invalidArgument(`records[${index}].type`, 'RECORD_TYPE_CHECKPOINT records are written by the server only');
    default:
      throw invalidArgument(`records[${index}].type`, `unknown record type ${String(type)}`, { value: String(type) });
  }
}

/**
 * The headers of a decoded record as a plain object of own properties. The generated decoder
 * fills the map by assignment, so a header named `__proto__` becomes the object's prototype
 * instead of an entry (and the prototype's indices would then show up as header names); it is
 * restored here as an ordinary header.
 */
function ownHeaders(headers: { [name: string]: Buffer }): { [name: string]: Buffer } {
  const prototype: unknown = Object.getPrototypeOf(headers);
  if (prototype === Object.prototype || prototype === null) {
    return headers;
  }
  const own: { [name: string]: Buffer } = {};
  for (const name of Object.keys(headers)) {
    own[name] = headers[name]!;
  }
  if (prototype instanceof Buffer) {
    Object.defineProperty(own, '__proto__', { value: prototype, enumerable: true, writable: true, configurable: true });
  }
  return own;
}

function toAppendRecord(message: AppendRecordMessage, index: number): AppendRecord {
  const type = recordType(message.type, index);
  // `key` is proto3 optional: unset is no key; set and empty is the empty key, which a DELETE may name.
  if (type === 'delete' && message.key === undefined) {
    throw invalidArgument(`records[${index}].key`, 'a RECORD_TYPE_DELETE record needs a key');
  }
  const headers = ownHeaders(message.headers);
  const names = Object.keys(headers);
  if (names.length > MAX_HEADERS) {
    throw invalidArgument(`records[${index}].headers`, `at most ${MAX_HEADERS} headers, got ${names.length}`, { value: names.length, limit: MAX_HEADERS });
  }
  for (const name of names) {
    if (name === '') {
      throw invalidArgument(`records[${index}].headers`, 'header names must not be empty');
    }
    if (Buffer.byteLength(name, 'utf8') > MAX_HEADER_NAME_BYTES) {
      throw invalidArgument(`records[${index}].headers`, `header names are at most ${MAX_HEADER_NAME_BYTES} bytes`, { limit: MAX_HEADER_NAME_BYTES });
    }
  }
  return { key: message.key, value: message.value, headers, type };
}

/**
 * Checks an `AppendRequest` (unset means an empty batch) and translates it for `Wal.append`.
 *
 * Size limits (record bytes, batch bytes, records per batch) are left to the engine, which knows
 * the log's sizes; its errors already name the field (`records[i]`, `records`).
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` naming the field: no records; an unknown or
 *   server-only record type; a DELETE with its key unset; an empty or over-long header name, too many
 *   headers; `expected_offset` or
 *   `sequence` above 2^53 - 1; a `producer_id` longer than 256 bytes; a `sequence` without a
 *   `producer_id`.
 */
export function parseAppendRequest(request: AppendRequest | undefined): AppendCall {
  const messages = request?.records ?? [];
  if (messages.length === 0) {
    throw invalidArgument('records', 'an append needs at least one record');
  }
  const records = messages.map(toAppendRecord);
  const expectedOffset =
    request?.expectedOffset === undefined ? undefined : safeIntegerField(request.expectedOffset, 'expected_offset');
  const producerId = request?.producerId ?? '';
  const sequence = request?.sequence ?? 0n;
  if (producerId === '') {
    if (sequence !== 0n) {
      throw invalidArgument('sequence', 'a sequence needs a producer_id');
    }
    return { records, options: { sync: request?.sync ?? false, expectedOffset } };
  }
  const producerIdBytes = Buffer.byteLength(producerId, 'utf8');
  if (producerIdBytes > MAX_PRODUCER_ID_BYTES) {
    throw invalidArgument('producer_id', `must be at most ${MAX_PRODUCER_ID_BYTES} bytes, got ${producerIdBytes}`, {
      bytes: producerIdBytes,
      limit: MAX_PRODUCER_ID_BYTES,
    });
  }
  return {
    records,
    options: {
      sync: request?.sync ?? false,
      expectedOffset,
      producerId,
      sequence: safeIntegerField(sequence, 'sequence'),
    },
  };
}
