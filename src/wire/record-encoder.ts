/**
 * Encodes the repeated `wald.v1.Record records = 1` field that TailWal and Read responses share,
 * straight from log records: no `BigInt` per offset, no copy of each value into a generated message
 * object first. Used by `tail-response-encoder.ts` and `read-response-encoder.ts`.
 *
 * Field numbers follow `proto/wald/v1/record.proto`. A record's fields are written in the order
 * the generated encoder (src/gen) writes them, the proto's declaration order (`key` first), so
 * the bytes are the generated encoder's for the same record; a property test
 * (test/unit/wire/read-response-encoder.test.ts) checks it. The proto3 `optional` `key` is
 * written whenever the record has one, the empty key included; every other field is left out at
 * its default, as proto3 requires.
 */
import type { WalRecord } from '../codec/record.js';
import { delimitedBytes, varintBytes, writeVarint } from './protobuf-wire.js';
import { WIRE_RECORD_TYPES } from './wire-record-type.js';

// Tags: (field number << 3) | wire type. Field 1 is `records` in both responses.
const TAG_RESPONSE_RECORDS = (1 << 3) | 2;
const TAG_RECORD_VALUE = (2 << 3) | 2;
const TAG_RECORD_HEADERS = (3 << 3) | 2;
const TAG_RECORD_TYPE = (4 << 3) | 0;
const TAG_RECORD_OFFSET = (5 << 3) | 0;
const TAG_RECORD_TIMESTAMP = (6 << 3) | 0;
const TAG_RECORD_KEY = (7 << 3) | 2;
const TAG_ENTRY_KEY = (1 << 3) | 2;
const TAG_ENTRY_VALUE = (2 << 3) | 2;

/**
 * The body size of each record of the last {@link recordsFieldBytes} call, for the
 * {@link writeRecordsField} that follows it. Encoding is synchronous, so one scratch array serves
 * every encoder.
 */
let sizes = new Int32Array(1024);

function headerEntryBytes(name: string, value: Uint8Array): number {
  const nameBytes = Buffer.byteLength(name, 'utf8');
  return (nameBytes === 0 ? 0 : delimitedBytes(nameBytes)) + (value.length === 0 ? 0 : delimitedBytes(value.length));
}

function recordBodyBytes(record: WalRecord): number {
  let size = 0;
  // proto3 `optional`: present whenever the record has a key, the empty key included.
  if (record.key !== undefined) size += delimitedBytes(record.key.length);
  if (record.value.length > 0) size += delimitedBytes(record.value.length);
  for (const name in record.headers) size += delimitedBytes(headerEntryBytes(name, record.headers[name]!));
  size += 1 + 1; // type: never 0 for a log record, and every wire value fits one varint byte
  if (record.offset !== 0) size += 1 + varintBytes(record.offset);
  if (record.timestamp !== 0) size += 1 + varintBytes(record.timestamp);
  return size;
}

function writeBytesField(buf: Buffer, p: number, tag: number, bytes: Uint8Array): number {
  buf[p++] = tag;
  p = writeVarint(buf, p, bytes.length);
  buf.set(bytes, p);
  return p + bytes.length;
}

/**
 * Bytes of the `records` field (field 1) holding `records`. Must be called right before
 * {@link writeRecordsField} with the same records: it measures each record for it.
 */
export function recordsFieldBytes(records: readonly WalRecord[]): number {
  if (sizes.length < records.length) sizes = new Int32Array(records.length * 2);
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    const body = recordBodyBytes(records[i]!);
    sizes[i] = body;
    total += delimitedBytes(body);
  }
  return total;
}

/**
 * Writes the `records` field of `records` at `position` of `buf` (which has the room
 * {@link recordsFieldBytes} measured, the call just before); returns the position after it.
 */
export function writeRecordsField(buf: Buffer, position: number, records: readonly WalRecord[]): number {
  let p = position;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    buf[p++] = TAG_RESPONSE_RECORDS;
    p = writeVarint(buf, p, sizes[i]!);
    if (record.key !== undefined) p = writeBytesField(buf, p, TAG_RECORD_KEY, record.key);
    if (record.value.length > 0) p = writeBytesField(buf, p, TAG_RECORD_VALUE, record.value);
    for (const name in record.headers) {
      const value = record.headers[name]!;
      buf[p++] = TAG_RECORD_HEADERS;
      p = writeVarint(buf, p, headerEntryBytes(name, value));
      const nameBytes = Buffer.byteLength(name, 'utf8');
      if (nameBytes > 0) {
        buf[p++] = TAG_ENTRY_KEY;
        p = writeVarint(buf, p, nameBytes);
        p += buf.write(name, p, 'utf8');
      }
      if (value.length > 0) p = writeBytesField(buf, p, TAG_ENTRY_VALUE, value);
    }
    buf[p++] = TAG_RECORD_TYPE;
    buf[p++] = WIRE_RECORD_TYPES[record.type];
    if (record.offset !== 0) {
      buf[p++] = TAG_RECORD_OFFSET;
      p = writeVarint(buf, p, record.offset);
    }
    if (record.timestamp !== 0) {
      buf[p++] = TAG_RECORD_TIMESTAMP;
      p = writeVarint(buf, p, record.timestamp);
    }
  }
  return p;
}
