import { RECORD_TYPES, setHeader } from '../codec/record.js';
import type { AppendOptions, AppendRecord, RecordType } from '../engine/types.js';
import type { AppendRequest } from '../gen/wald/v1/append.js';
import { RecordType as WireRecordType, recordTypeToJSON, type AppendRecord as AppendRecordMessage } from '../gen/wald/v1/record.js';
import { recordTypeFromWire } from '../wire/wire-record-type.js';
import { invalidArgument, safeIntegerField } from './request-fields.js';

/** An append request translated for `Wal.append`. */
export interface AppendCall {
  readonly records: readonly AppendRecord[];
  readonly options: AppendOptions;
  /** Followers that must hold the batch durably before it is acknowledged (`min_replicas`; 0: none). */
  readonly minReplicas: number;
}

function recordType(type: WireRecordType, index: number): RecordType {
  // proto3: an unset enum is 0, which an append defines as PUT.
  if (type === WireRecordType.RECORD_TYPE_UNSPECIFIED) {
    return 'put';
  }
  const known = recordTypeFromWire(type);
  if (known === undefined) {
    throw invalidArgument(`records[${index}].type`, `unknown record type ${String(type)}`, { value: String(type) });
  }
  if (RECORD_TYPES[known].isServerOnly) {
    throw invalidArgument(`records[${index}].type`, `${recordTypeToJSON(type)} records are written by the server only`);
  }
  return known;
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
    setHeader(own, name, headers[name]!);
  }
  if (prototype instanceof Buffer) {
    setHeader(own, '__proto__', prototype);
  }
  return own;
}

function toAppendRecord(message: AppendRecordMessage, index: number): AppendRecord {
  // `key` is proto3 optional: unset is no key; set and empty is the empty key, which a DELETE may name.
  return { key: message.key, value: message.value, headers: ownHeaders(message.headers), type: recordType(message.type, index) };
}

/**
 * Translates an `AppendRequest` (unset means an empty batch) for `Wal.append`, checking only what
 * the wire alone decides: enum values, proto3 defaults, integers the engine's numbers can hold.
 * Every rule about the data (at least one record, a DELETE's key, headers, the producer id, a
 * sequence without a producer, sizes) is the engine's: its `WAL_INVALID_ARGUMENT`,
 * `WAL_RECORD_TOO_LARGE` and `WAL_BATCH_TOO_LARGE` name the field in engine terms, which the
 * server reports in proto terms (wire-field-name.ts).
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` naming the field: a record type this server does not know
 *   (`records[i].type`), a server-only type such as `RECORD_TYPE_CHECKPOINT` (`records[i].type`),
 *   an `expected_offset`, `expected_epoch` or `sequence` above 2^53 - 1 (an epoch is at most 2^48 - 1,
 *   so a larger `expected_epoch` could never match anyway).
 */
export function parseAppendRequest(request: AppendRequest | undefined): AppendCall {
  const records = (request?.records ?? []).map(toAppendRecord);
  const expectedOffset =
    request?.expectedOffset === undefined ? undefined : safeIntegerField(request.expectedOffset, 'expected_offset');
  const expectedEpoch = request?.expectedEpoch === undefined ? undefined : safeIntegerField(request.expectedEpoch, 'expected_epoch');
  // proto3 plain fields: an empty producer_id is no producer, and a 0 sequence without one is no sequence.
  const producerId = request?.producerId === '' ? undefined : request?.producerId;
  const wireSequence = request?.sequence ?? 0n;
  const sequence = producerId === undefined && wireSequence === 0n ? undefined : safeIntegerField(wireSequence, 'sequence');
  return { records, options: { sync: request?.sync ?? false, expectedOffset, expectedEpoch, producerId, sequence }, minReplicas: request?.minReplicas ?? 0 };
}
