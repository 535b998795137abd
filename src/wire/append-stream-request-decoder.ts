/**
 * Decodes `wald.v1.AppendStreamRequest` bytes for the server, into the generated message types
 * (`src/gen/wald/v1/append.ts`) so that everything after the decode stays as it is, but at a
 * fraction of the generated decoder's cost: byte fields (values, keys, header values) are views
 * into the message instead of copies, an absent value is one shared empty buffer instead of a
 * `Buffer.alloc(0)` per record, and no reader object is made per nested message. The views keep
 * the message's buffer alive until the append's frame is encoded (which copies them); grpc-js
 * hands each message its own buffer.
 *
 * Field numbers follow `proto/wald/v1/append.proto` and `record.proto`. As the generated decoder:
 * unknown fields are skipped, a known field with another wire type is skipped, a repeated field's
 * elements are appended in order, a scalar or message field seen twice keeps its last value, a
 * header map entry seen twice keeps its last value. Unlike it, a header named `__proto__` becomes an own
 * entry of the map (`setHeader`), not the map's prototype. uint64 fields are exact `bigint`s (read
 * as numbers when below 2^53, as they nearly always are). Throws `RangeError` on malformed bytes (grpc-js then
 * fails the call, as it does when the generated decoder throws).
 */
import { setHeader } from '../codec/record.js';
import type { AppendRequest, AppendStreamRequest } from '../gen/wald/v1/append.js';
import type { AppendRecord } from '../gen/wald/v1/record.js';
import { utf8Field, WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireReader } from './protobuf-wire.js';

/** Shared by every absent value and header value: nothing downstream writes into record bytes. */
const EMPTY: Buffer = Buffer.alloc(0);

/**
 * A uint64 varint as a `bigint`, exact: read as a number (the common, small case), and read again
 * bit by bit when it is beyond 2^53 - 1 (truncated to 64 bits, as the generated decoder does).
 */
function uint64(reader: WireReader): bigint {
  const start = reader.position;
  const value = reader.varint();
  if (value <= Number.MAX_SAFE_INTEGER) return BigInt(value);
  let exact = 0n;
  for (let p = reader.position - 1; p >= start; p--) exact = (exact << 7n) | BigInt(reader.buf[p]! & 0x7f);
  return BigInt.asUintN(64, exact);
}

/**
 * The low 32 bits of a varint, as protobuf reads an int32 (`| 0`: a negative enum value comes as a
 * 10-byte varint) or a uint32 (`>>> 0`). From the bytes, since a long varint is no exact number.
 */
function low32(reader: WireReader): number {
  const start = reader.position;
  const value = reader.varint();
  if (value <= 0x7fffffff) return value;
  let low = 0;
  for (let i = 0; i < 5 && start + i < reader.position; i++) low |= (reader.buf[start + i]! & 0x7f) << (7 * i);
  return low;
}

function decodeHeaderEntry(reader: WireReader, headers: { [name: string]: Buffer }, end: number): void {
  const { buf } = reader;
  let name = '';
  let value = EMPTY;
  const outerEnd = reader.end;
  reader.end = end;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === WIRE_LENGTH_DELIMITED && (field === 1 || field === 2)) {
      const bodyEnd = reader.bodyEnd();
      if (field === 1) name = utf8Field(buf, reader.position, bodyEnd);
      else value = buf.subarray(reader.position, bodyEnd);
      reader.position = bodyEnd;
    } else {
      reader.skip(wireType);
    }
  }
  reader.end = outerEnd;
  setHeader(headers, name, value);
}

function decodeAppendRecord(reader: WireReader, end: number): AppendRecord {
  const { buf } = reader;
  let key: Buffer | undefined;
  let value = EMPTY;
  const headers: { [name: string]: Buffer } = {};
  let type = 0;
  const outerEnd = reader.end;
  reader.end = end;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === WIRE_LENGTH_DELIMITED && (field === 2 || field === 3 || field === 7)) {
      const bodyEnd = reader.bodyEnd();
      // key (7) is proto3 `optional`: present and empty is the empty key, not "no key".
      if (field === 2) value = buf.subarray(reader.position, bodyEnd);
      else if (field === 7) key = buf.subarray(reader.position, bodyEnd);
      else decodeHeaderEntry(reader, headers, bodyEnd);
      reader.position = bodyEnd;
    } else if (wireType === WIRE_VARINT && field === 4) {
      type = low32(reader) | 0; // an int32 enum
    } else {
      reader.skip(wireType);
    }
  }
  reader.end = outerEnd;
  return { key, value, headers, type };
}

function decodeAppendRequest(reader: WireReader, end: number): AppendRequest {
  const { buf } = reader;
  const records: AppendRecord[] = [];
  let expectedOffset: bigint | undefined;
  let producerId = '';
  let sequence = 0n;
  let sync = false;
  let expectedEpoch: bigint | undefined;
  let minReplicas = 0;
  const outerEnd = reader.end;
  reader.end = end;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === WIRE_LENGTH_DELIMITED && (field === 1 || field === 3)) {
      const bodyEnd = reader.bodyEnd();
      if (field === 1) records.push(decodeAppendRecord(reader, bodyEnd));
      else producerId = utf8Field(buf, reader.position, bodyEnd);
      reader.position = bodyEnd;
    } else if (wireType === WIRE_VARINT && field >= 4 && field <= 8) {
      if (field === 4) sequence = uint64(reader);
      else if (field === 5) sync = reader.varint() !== 0;
      else if (field === 6) expectedOffset = uint64(reader);
      else if (field === 7) expectedEpoch = uint64(reader);
      else minReplicas = low32(reader) >>> 0; // a uint32
    } else {
      reader.skip(wireType);
    }
  }
  reader.end = outerEnd;
  return { records, expectedOffset, producerId, sequence, sync, expectedEpoch, minReplicas };
}

/** Decodes one AppendStream request. Throws `RangeError` on malformed bytes. */
export function decodeAppendStreamRequest(buf: Buffer): AppendStreamRequest {
  const reader = new WireReader(buf);
  let requestId = 0n;
  let append: AppendRequest | undefined;
  const appends: AppendRequest[] = [];
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === WIRE_VARINT) {
      requestId = uint64(reader);
    } else if (wireType === WIRE_LENGTH_DELIMITED && (field === 2 || field === 3)) {
      const end = reader.bodyEnd();
      const decoded = decodeAppendRequest(reader, end);
      if (field === 3) appends.push(decoded);
      else append = decoded; // seen twice, the last wins (as the generated decoder has it)
      reader.position = end;
    } else {
      reader.skip(wireType);
    }
  }
  return { requestId, append, appends };
}

