/**
 * Encodes `wald.v1.AppendStreamRequest` messages of several appends (`appends`, field 3) straight
 * from records into protobuf bytes, for `WalClient`: no generated message objects, no `BigInt` per
 * sequence or offset, one buffer per message. A unit test checks the bytes decode, with the
 * generated decoder, to the message meant.
 *
 * Field numbers follow `proto/wald/v1/append.proto` and `record.proto`, written in field-number
 * order. proto3 defaults are left out, except the `optional` fields (a record's `key`, an append's
 * `expected_offset` and `expected_epoch`), which are written whenever set, even empty or 0. A record of type `put` is
 * sent with its type unset (the server reads unset as PUT).
 */
import type { AppendRecord } from '../codec/record.js';
import { delimitedBytes, varintBytes, writeVarint } from './protobuf-wire.js';
import { WIRE_RECORD_TYPES } from './wire-record-type.js';

/** One append of a message: its records and options, as the Append RPC takes them. */
export interface WireAppend {
  readonly records: readonly AppendRecord[];
  /** Conditional append: the offset its first record must get; undefined for none. */
  readonly expectedOffset?: number | undefined;
  /** Idempotent append: the producer id (empty or undefined: none) and its sequence. */
  readonly producerId?: string | undefined;
  readonly sequence?: number | undefined;
  /** Force an fdatasync before the acknowledgement. */
  readonly sync?: boolean | undefined;
  /** Fencing token: the leader epoch the log must be at; undefined for none. */
  readonly expectedEpoch?: number | undefined;
  /** Followers that must hold the append durably before it is acknowledged (0 or undefined: none). */
  readonly minReplicas?: number | undefined;
}

// Tags: (field number << 3) | wire type.
const TAG_STREAM_REQUEST_ID = (1 << 3) | 0;
const TAG_STREAM_APPENDS = (3 << 3) | 2;
const TAG_APPEND_RECORDS = (1 << 3) | 2;
const TAG_APPEND_PRODUCER_ID = (3 << 3) | 2;
const TAG_APPEND_SEQUENCE = (4 << 3) | 0;
const TAG_APPEND_SYNC = (5 << 3) | 0;
const TAG_APPEND_EXPECTED_OFFSET = (6 << 3) | 0;
const TAG_APPEND_EXPECTED_EPOCH = (7 << 3) | 0;
const TAG_APPEND_MIN_REPLICAS = (8 << 3) | 0;
const TAG_RECORD_VALUE = (2 << 3) | 2;
const TAG_RECORD_HEADERS = (3 << 3) | 2;
const TAG_RECORD_TYPE = (4 << 3) | 0;
const TAG_RECORD_KEY = (7 << 3) | 2;
const TAG_ENTRY_KEY = (1 << 3) | 2;
const TAG_ENTRY_VALUE = (2 << 3) | 2;

/** Body sizes of the records and appends of the message being encoded, in encoding order. */
let sizes = new Int32Array(1024);

function headerEntryBytes(name: string, value: Uint8Array): number {
  const nameBytes = Buffer.byteLength(name, 'utf8');
  return (nameBytes === 0 ? 0 : delimitedBytes(nameBytes)) + (value.length === 0 ? 0 : delimitedBytes(value.length));
}

function wireType(record: AppendRecord): number {
  return record.type === undefined || record.type === 'put' ? 0 : WIRE_RECORD_TYPES[record.type];
}

function recordBodyBytes(record: AppendRecord): number {
  let size = 0;
  if (record.value.length > 0) size += delimitedBytes(record.value.length);
  if (record.headers !== undefined) {
    for (const name in record.headers) size += delimitedBytes(headerEntryBytes(name, record.headers[name]!));
  }
  const type = wireType(record);
  if (type !== 0) size += 1 + varintBytes(type);
  if (record.key !== undefined) size += delimitedBytes(record.key.length);
  return size;
}

function appendOptionBytes(append: WireAppend): number {
  let size = 0;
  if (append.producerId !== undefined && append.producerId !== '') size += delimitedBytes(Buffer.byteLength(append.producerId, 'utf8'));
  if (append.sequence !== undefined && append.sequence !== 0) size += 1 + varintBytes(append.sequence);
  if (append.sync === true) size += 2;
  if (append.expectedOffset !== undefined) size += 1 + varintBytes(append.expectedOffset);
  if (append.expectedEpoch !== undefined) size += 1 + varintBytes(append.expectedEpoch);
  if (append.minReplicas !== undefined && append.minReplicas !== 0) size += 1 + varintBytes(append.minReplicas);
  return size;
}

function writeBytesField(buf: Buffer, p: number, tag: number, bytes: Uint8Array): number {
  buf[p++] = tag;
  p = writeVarint(buf, p, bytes.length);
  buf.set(bytes, p);
  return p + bytes.length;
}

function writeRecord(buf: Buffer, p: number, record: AppendRecord, bodyBytes: number): number {
  buf[p++] = TAG_APPEND_RECORDS;
  p = writeVarint(buf, p, bodyBytes);
  if (record.value.length > 0) p = writeBytesField(buf, p, TAG_RECORD_VALUE, record.value);
  if (record.headers !== undefined) {
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
  }
  const type = wireType(record);
  if (type !== 0) {
    buf[p++] = TAG_RECORD_TYPE;
    p = writeVarint(buf, p, type);
  }
  if (record.key !== undefined) p = writeBytesField(buf, p, TAG_RECORD_KEY, record.key);
  return p;
}

function writeAppendOptions(buf: Buffer, p: number, append: WireAppend): number {
  if (append.producerId !== undefined && append.producerId !== '') {
    buf[p++] = TAG_APPEND_PRODUCER_ID;
    p = writeVarint(buf, p, Buffer.byteLength(append.producerId, 'utf8'));
    p += buf.write(append.producerId, p, 'utf8');
  }
  if (append.sequence !== undefined && append.sequence !== 0) {
    buf[p++] = TAG_APPEND_SEQUENCE;
    p = writeVarint(buf, p, append.sequence);
  }
  if (append.sync === true) {
    buf[p++] = TAG_APPEND_SYNC;
    buf[p++] = 1;
  }
  if (append.expectedOffset !== undefined) {
    buf[p++] = TAG_APPEND_EXPECTED_OFFSET;
    p = writeVarint(buf, p, append.expectedOffset);
  }
  if (append.expectedEpoch !== undefined) {
    buf[p++] = TAG_APPEND_EXPECTED_EPOCH;
    p = writeVarint(buf, p, append.expectedEpoch);
  }
  if (append.minReplicas !== undefined && append.minReplicas !== 0) {
    buf[p++] = TAG_APPEND_MIN_REPLICAS;
    p = writeVarint(buf, p, append.minReplicas);
  }
  return p;
}

/**
 * The encoded `AppendStreamRequest` carrying `appends` in its `appends` field. Offsets and
 * sequences must be non-negative safe integers (the caller checks them).
 */
export function encodeAppendStreamRequest(requestId: number, appends: readonly WireAppend[]): Buffer {
  let slots = appends.length;
  for (const append of appends) slots += append.records.length;
  if (sizes.length < slots) sizes = new Int32Array(slots * 2);
  // sizes: per append, its body size, then each of its records' body sizes.
  let total = requestId === 0 ? 0 : 1 + varintBytes(requestId);
  let slot = 0;
  for (const append of appends) {
    const appendSlot = slot++;
    let body = appendOptionBytes(append);
    for (const record of append.records) {
      const recordBytes = recordBodyBytes(record);
      sizes[slot++] = recordBytes;
      body += delimitedBytes(recordBytes);
    }
    sizes[appendSlot] = body;
    total += delimitedBytes(body);
  }

  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  if (requestId !== 0) {
    buf[p++] = TAG_STREAM_REQUEST_ID;
    p = writeVarint(buf, p, requestId);
  }
  slot = 0;
  for (const append of appends) {
    buf[p++] = TAG_STREAM_APPENDS;
    p = writeVarint(buf, p, sizes[slot++]!);
    for (const record of append.records) p = writeRecord(buf, p, record, sizes[slot++]!);
    p = writeAppendOptions(buf, p, append);
  }
  return buf;
}
