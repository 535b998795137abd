import type { WalRecord } from '../engine/types.js';
import type { Record as RecordMessage } from '../gen/wald/v1/record.js';
import { WIRE_RECORD_TYPES } from '../wire/wire-record-type.js';

/**
 * The wire form of a log record. Offsets and timestamps become uint64 (`bigint`); the key goes as
 * it is (unset for a record without one, set and empty for the empty key).
 */
export function toRecordMessage(record: WalRecord): RecordMessage {
  return {
    key: record.key,
    value: record.value,
    headers: record.headers,
    type: WIRE_RECORD_TYPES[record.type],
    offset: BigInt(record.offset),
    timestamp: BigInt(record.timestamp),
  };
}

/**
 * The value of a proto3 `optional uint64` offset field (`high_watermark`, `latest_offset`) from an
 * offset the engine reports as -1 for "none": unset (undefined) then; 0 is a real offset and is set.
 */
export function optionalOffset(offset: number): bigint | undefined {
  return offset < 0 ? undefined : BigInt(offset);
}
