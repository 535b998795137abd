import { encodedRecordBytes, FRAME_HEADER_BYTES } from '../codec/frame.js';
import { WalError } from '../errors.js';
import type { AppendOptions, AppendRecord } from './types.js';

const RECORD_TYPES = new Set(['put', 'delete', 'checkpoint']);
/** Most headers of one record (a u16 on disk). */
export const MAX_HEADERS = 0xffff;
/** Longest header name, in UTF-8 bytes (a u16 on disk). */
export const MAX_HEADER_NAME_BYTES = 0xffff;
/** Longest producer id, in UTF-8 bytes. */
export const MAX_PRODUCER_ID_BYTES = 256;

/** The limits an append is checked against. */
export interface AppendLimits {
  readonly maxRecordBytes: number;
  readonly maxBatchBytes: number;
  readonly maxBatchRecords: number;
}

/**
 * Checks a batch and returns its encoded payload size.
 *
 * Throws `TypeError` / `RangeError` for malformed arguments (a missing value, an empty batch),
 * `WalError` `WAL_RECORD_TOO_LARGE` / `WAL_BATCH_TOO_LARGE` for limits, naming the record index.
 */
export function validateBatch(records: readonly AppendRecord[], limits: AppendLimits): number {
  if (!Array.isArray(records)) throw new TypeError('records must be an array');
  if (records.length === 0) throw new RangeError('records must hold at least one record');
  if (records.length > limits.maxBatchRecords) {
    throw new WalError('WAL_BATCH_TOO_LARGE', `a batch holds at most ${limits.maxBatchRecords} records, got ${records.length}`, {
      field: 'records',
      records: records.length,
      limit: limits.maxBatchRecords,
    });
  }
  let payload = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    if (typeof record !== 'object' || record === null) throw new TypeError(`records[${i}] must be an object`);
    if (!(record.value instanceof Uint8Array)) throw new TypeError(`records[${i}].value must be a Uint8Array`);
    if (record.key !== undefined && !(record.key instanceof Uint8Array)) throw new TypeError(`records[${i}].key must be a Uint8Array`);
    if (record.type !== undefined && !RECORD_TYPES.has(record.type)) throw new RangeError(`records[${i}].type must be put, delete or checkpoint`);
    if (record.headers !== undefined) validateHeaders(record.headers, i);
    const size = encodedRecordBytes(record);
    if (size > limits.maxRecordBytes) {
      throw new WalError('WAL_RECORD_TOO_LARGE', `records[${i}] takes ${size} bytes, more than the limit of ${limits.maxRecordBytes}`, {
        field: `records[${i}]`,
        bytes: size,
        limit: limits.maxRecordBytes,
      });
    }
    payload += size;
  }
  if (payload + FRAME_HEADER_BYTES > limits.maxBatchBytes) {
    throw new WalError('WAL_BATCH_TOO_LARGE', `the batch takes ${payload + FRAME_HEADER_BYTES} bytes, more than the limit of ${limits.maxBatchBytes}`, {
      field: 'records',
      bytes: payload + FRAME_HEADER_BYTES,
      limit: limits.maxBatchBytes,
    });
  }
  return payload;
}

function validateHeaders(headers: Readonly<Record<string, Uint8Array>>, i: number): void {
  if (typeof headers !== 'object' || headers === null) throw new TypeError(`records[${i}].headers must be an object`);
  let count = 0;
  for (const name in headers) {
    if (!(headers[name] instanceof Uint8Array)) throw new TypeError(`records[${i}].headers[${JSON.stringify(name)}] must be a Uint8Array`);
    if (Buffer.byteLength(name, 'utf8') > MAX_HEADER_NAME_BYTES) throw new RangeError(`records[${i}] has a header name longer than ${MAX_HEADER_NAME_BYTES} bytes`);
    count++;
  }
  if (count > MAX_HEADERS) throw new RangeError(`records[${i}] has more than ${MAX_HEADERS} headers`);
}

/** Checks append options. Throws `TypeError` / `RangeError` naming the option. */
export function validateAppendOptions(options: AppendOptions): void {
  const { expectedOffset, producerId, sequence } = options;
  if (expectedOffset !== undefined && (!Number.isSafeInteger(expectedOffset) || expectedOffset < 0)) {
    throw new RangeError(`expectedOffset must be a non-negative integer, got ${String(expectedOffset)}`);
  }
  if ((producerId === undefined) !== (sequence === undefined)) throw new TypeError('producerId and sequence go together');
  if (producerId !== undefined) {
    if (typeof producerId !== 'string' || producerId === '' || Buffer.byteLength(producerId, 'utf8') > MAX_PRODUCER_ID_BYTES) {
      throw new RangeError(`producerId must be a non-empty string of at most ${MAX_PRODUCER_ID_BYTES} bytes`);
    }
    if (!Number.isSafeInteger(sequence) || (sequence as number) < 0) throw new RangeError(`sequence must be a non-negative integer, got ${String(sequence)}`);
  }
}
