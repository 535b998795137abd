/**
 * Every rule an append's data must follow, checked once, here, before anything is encoded: the
 * server translates the wire into an engine call and leaves all of them to this file.
 *
 * Each broken rule is a `WalError` naming the field at fault in `details.field`, in the terms of
 * the TypeScript API: `records`, `records[i]`, `records[i].key`, `records[i].value`,
 * `records[i].type`, `records[i].headers`, `expectedOffset`, `producerId`, `sequence`. Size limits
 * keep their own codes (`WAL_RECORD_TOO_LARGE`, `WAL_BATCH_TOO_LARGE`); every other rule is
 * `WAL_INVALID_ARGUMENT`. Only a call no data can produce (`records` not an array, a record, its
 * headers or the options not an object) throws `TypeError`.
 */
import { encodedRecordBytes, FRAME_HEADER_BYTES } from '../codec/frame.js';
import { isRecordType, RECORD_TYPE_NAMES, RECORD_TYPES, type RecordHeaders } from '../codec/record.js';
import { invalidArgument, WalError } from '../errors.js';
import type { AppendLimits, AppendOptions, AppendRecord } from './types.js';

/** Most headers of one record (a u16 on disk). */
export const MAX_HEADERS = 0xffff;
/** Longest header name, in UTF-8 bytes (a u16 on disk). */
export const MAX_HEADER_NAME_BYTES = 0xffff;
/** Longest producer id, in UTF-8 bytes. */
export const MAX_PRODUCER_ID_BYTES = 256;

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}

/**
 * Checks a batch and returns its encoded payload size.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` naming the field: no records; a value, key or header
 *   value that is not a `Uint8Array`; an unknown type; a type that needs a key (`delete`) without
 *   one; an empty or over-long header name; too many headers.
 * @throws WalError `WAL_BATCH_TOO_LARGE` (`records`) above `maxBatchRecords` or `maxBatchBytes`,
 *   `WAL_RECORD_TOO_LARGE` (`records[i]`) above `maxRecordBytes`.
 * @throws TypeError when `records` is not an array, or a record or its headers not an object.
 */
export function validateBatch(records: readonly AppendRecord[], limits: AppendLimits): number {
  if (!Array.isArray(records)) throw new TypeError('records must be an array');
  if (records.length === 0) throw invalidArgument('records', 'an append needs at least one record');
  if (records.length > limits.maxBatchRecords) {
    throw new WalError('WAL_BATCH_TOO_LARGE', `a batch holds at most ${limits.maxBatchRecords} records (max_batch_records), got ${records.length}`, {
      field: 'records',
      records: records.length,
      limit: limits.maxBatchRecords,
      configKey: 'max_batch_records',
    });
  }
  let payload = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    if (!isObject(record)) throw new TypeError(`records[${i}] must be an object`);
    validateRecord(record, i);
    const size = encodedRecordBytes(record);
    if (size > limits.maxRecordBytes) {
      throw new WalError('WAL_RECORD_TOO_LARGE', `records[${i}] takes ${size} bytes, more than the limit of ${limits.maxRecordBytes} (max_record_bytes)`, {
        field: `records[${i}]`,
        bytes: size,
        limit: limits.maxRecordBytes,
        configKey: 'max_record_bytes',
      });
    }
    payload += size;
  }
  if (payload + FRAME_HEADER_BYTES > limits.maxBatchBytes) {
    throw new WalError('WAL_BATCH_TOO_LARGE', `the batch takes ${payload + FRAME_HEADER_BYTES} bytes, more than the limit of ${limits.maxBatchBytes} (max_batch_bytes)`, {
      field: 'records',
      bytes: payload + FRAME_HEADER_BYTES,
      limit: limits.maxBatchBytes,
      configKey: 'max_batch_bytes',
    });
  }
  return payload;
}

function validateRecord(record: AppendRecord, i: number): void {
  if (!(record.value instanceof Uint8Array)) throw invalidArgument(`records[${i}].value`, 'must be a Uint8Array');
  if (record.key !== undefined && !(record.key instanceof Uint8Array)) throw invalidArgument(`records[${i}].key`, 'must be a Uint8Array when set');
  const type = record.type === undefined ? 'put' : record.type;
  if (!isRecordType(type)) {
    throw invalidArgument(`records[${i}].type`, `must be one of ${RECORD_TYPE_NAMES.join(', ')}`, { value: String(type) });
  }
  if (RECORD_TYPES[type].isKeyRequired && record.key === undefined) throw invalidArgument(`records[${i}].key`, `a ${type} record needs a key`);
  if (record.headers !== undefined) validateHeaders(record.headers, i);
}

function validateHeaders(headers: RecordHeaders, i: number): void {
  if (!isObject(headers)) throw new TypeError(`records[${i}].headers must be an object`);
  const field = `records[${i}].headers`;
  let count = 0;
  for (const name in headers) {
    if (name === '') throw invalidArgument(field, 'header names must not be empty');
    if (Buffer.byteLength(name, 'utf8') > MAX_HEADER_NAME_BYTES) {
      throw invalidArgument(field, `header names are at most ${MAX_HEADER_NAME_BYTES} bytes`, { limit: MAX_HEADER_NAME_BYTES });
    }
    if (!(headers[name] instanceof Uint8Array)) throw invalidArgument(field, 'header values must be Uint8Arrays');
    count++;
  }
  if (count > MAX_HEADERS) throw invalidArgument(field, `at most ${MAX_HEADERS} headers, got ${count}`, { value: count, limit: MAX_HEADERS });
}

function isOffset(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/**
 * Checks append options.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` naming the option: an `expectedOffset` or `sequence` that
 *   is not a non-negative safe integer, an `expectedEpoch` that is not one; a `producerId` that is not a string of 1..256 UTF-8 bytes;
 *   a `sequence` without a `producerId` or a `producerId` without a `sequence` (both name
 *   `sequence`).
 * @throws TypeError when `options` is not an object.
 */
export function validateAppendOptions(options: AppendOptions): void {
  if (!isObject(options)) throw new TypeError('options must be an object');
  const { expectedOffset, expectedEpoch, producerId, sequence } = options;
  if (expectedOffset !== undefined && !isOffset(expectedOffset)) {
    throw invalidArgument('expectedOffset', `must be a non-negative integer of at most ${Number.MAX_SAFE_INTEGER}`, { value: String(expectedOffset) });
  }
  if (expectedEpoch !== undefined && !isOffset(expectedEpoch)) {
    throw invalidArgument('expectedEpoch', `must be a non-negative integer of at most ${Number.MAX_SAFE_INTEGER}`, { value: String(expectedEpoch) });
  }
  if (producerId === undefined) {
    if (sequence !== undefined) throw invalidArgument('sequence', 'a sequence needs a producerId');
    return;
  }
  if (typeof producerId !== 'string' || producerId === '') throw invalidArgument('producerId', 'must be a non-empty string');
  const producerIdBytes = Buffer.byteLength(producerId, 'utf8');
  if (producerIdBytes > MAX_PRODUCER_ID_BYTES) {
    throw invalidArgument('producerId', `must be at most ${MAX_PRODUCER_ID_BYTES} bytes, got ${producerIdBytes}`, {
      bytes: producerIdBytes,
      limit: MAX_PRODUCER_ID_BYTES,
    });
  }
  if (sequence === undefined) throw invalidArgument('sequence', 'a producerId needs a sequence');
  if (!isOffset(sequence)) {
    throw invalidArgument('sequence', `must be a non-negative integer of at most ${Number.MAX_SAFE_INTEGER}`, { value: String(sequence) });
  }
}
