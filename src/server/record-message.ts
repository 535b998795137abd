import type { WalRecord } from '../engine/types.js';
import type { Record as RecordMessage } from '../gen/wald/v1/record.js';
import { WIRE_RECORD_TYPES } from '../wire/wire-record-type.js';

/**
 * Upper bound of the protobuf framing of one `Record` inside a response, beyond its key, value and
 * headers: the field tag and length of the record (1 + 5), of key and value (2 x (1 + 5)), type
 * (2), offset and timestamp (2 x (1 + 10)), rounded up.
 */
const RECORD_FRAMING_BYTES = 48;
/** Upper bound of the framing of one header map entry: entry tag and length, name and value tags and lengths. */
const HEADER_FRAMING_BYTES = 24;

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
 * An upper bound of the bytes `record` adds to an encoded response. Used to keep responses under
 * `max_bytes` without encoding them twice.
 */
export function recordWireBytes(record: WalRecord): number {
  let size = RECORD_FRAMING_BYTES + (record.key?.length ?? 0) + record.value.length;
  for (const name in record.headers) {
    size += HEADER_FRAMING_BYTES + Buffer.byteLength(name, 'utf8') + (record.headers[name]?.length ?? 0);
  }
  return size;
}

/**
 * How many records from the start of `records` fit in `maxBytes` (by {@link recordWireBytes}):
 * at least one when there is any, so that a record larger than the budget still goes out, alone.
 */
export function countWithinBytes(records: readonly WalRecord[], maxBytes: number): number {
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    total += recordWireBytes(records[i]!);
    if (total > maxBytes) {
      return Math.max(1, i);
    }
  }
  return records.length;
}

/**
 * The value of a proto3 `optional uint64` offset field (`high_watermark`, `latest_offset`) from an
 * offset the engine reports as -1 for "none": unset (undefined) then; 0 is a real offset and is set.
 */
export function optionalOffset(offset: number): bigint | undefined {
  return offset < 0 ? undefined : BigInt(offset);
}
