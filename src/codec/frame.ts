/**
 * Frames: the on-disk unit of the log. One frame holds one batch (the records of one append) and
 * is checked by one CRC, so a batch is all there or not there after a crash. All integers are
 * little-endian; every frame starts on an 8-byte boundary and is zero-padded to the next one.
 *
 * ```
 *  0        4        8    9    10       12       16                24                32
 *  +--------+--------+----+----+--------+--------+-----------------+-----------------+
 *  | length | crc32c |type|flag|epoch hi| count  |   base offset   |  timestamp (ms) |
 *  +--------+--------+----+----+--------+--------+-----------------+-----------------+
 *  32       36       40                                      length     align8(length)
 *  +--------+--------+-------------------------------------------+---------+
 *  |epoch lo|sync lag| payload: [producer] record record ...     | padding |
 *  +--------+--------+-------------------------------------------+---------+
 * ```
 *
 * - `length` counts header + payload, not the padding; 0 never starts a frame (zeros mark the
 *   unwritten, preallocated end of a segment).
 * - `crc32c` covers bytes 8..length: everything but the length and the checksum itself, starting
 *   from the segment's seed (segment-header.ts; 0 in format version 1, the plain CRC-32C). The
 *   length is checked by bounds instead (a frame may not run past the end of the file).
 * - `type` is 1 (records). `flags` bit 0: the payload starts with a producer section.
 * - `count` is the number of records; their offsets are `base offset .. base offset + count - 1`
 *   and they share the frame's timestamp.
 * - `epoch` is the leader epoch that wrote the frame, a 48-bit number: its low 32 bits in `epoch lo`
 *   (u32 at 32) and its high 16 bits in `epoch hi` (u16 at 10, the bytes once reserved, zero in
 *   every frame written before replication), so that an external coordinator's revision (an etcd
 *   revision) fits. 0 on a log never promoted.
 * - `sync lag` (u32, segment format version 2) is what the writer knew to be durable when it
 *   stamped the frame: 1 + the number of records before `base offset` not yet known durable, so
 *   every offset below `base offset - sync lag + 1` was on stable storage. 0 makes no claim (version
 *   1 wrote a u64 epoch of 0 over bytes 32..40, which reads as epoch 0 and no claim). Recovery uses
 *   the claim to tell a torn tail from corruption (docs/engine.md).
 *
 * Producer section (flag bit 0): `sequence u64 | id length u16 | id (UTF-8)`.
 *
 * Record: `type u8 | flags u8 (bit 0: has key) | header count u16 | key length u32 |
 * value length u32 | key | value | headers`, each header `name length u16 | value length u32 |
 * name (UTF-8) | value`. Record type bytes: `typeByte` of each entry of `RECORD_TYPES` (record.ts:
 * 1 put, 2 delete, 3 checkpoint, 4 flush_all).
 */
import { align8 } from './align.js';
import { crc32cRange } from './crc32c.js';
import { RECORD_TYPE_NAMES, RECORD_TYPES, setHeader, type AppendRecord, type RecordType, type WalRecord } from './record.js';
import { readU64, writeU64 } from './u64.js';

export const FRAME_HEADER_BYTES = 40;
/** The largest leader epoch a frame can carry: 2^48 - 1 (see the file comment). */
export const MAX_EPOCH = 2 ** 48 - 1;
const EPOCH_HIGH_UNIT = 2 ** 32;
export const FRAME_TYPE_RECORDS = 1;
const FLAG_PRODUCER = 1;
const RECORD_HEADER_BYTES = 12;
const RECORD_FLAG_KEY = 1;

/** Record type of each type byte (the inverse of `RECORD_TYPES[name].typeByte`); undefined for a byte no type has. */
const TYPE_NAMES: readonly (RecordType | undefined)[] = Array.from({ length: 256 }, (_, byte) =>
  RECORD_TYPE_NAMES.find((name) => RECORD_TYPES[name].typeByte === byte),
);

/** Identifies an idempotent append. */
export interface ProducerStamp {
  readonly producerId: string;
  readonly sequence: number;
}

const NO_HEADERS: Readonly<Record<string, Buffer>> = Object.freeze({});

/** Bytes a record takes in a payload. */
export function encodedRecordBytes(record: AppendRecord): number {
  let size = RECORD_HEADER_BYTES + (record.key?.length ?? 0) + record.value.length;
  if (record.headers !== undefined) {
    for (const name in record.headers) {
      size += 6 + Buffer.byteLength(name, 'utf8') + (record.headers[name]?.length ?? 0);
    }
  }
  return size;
}

/**
 * Encodes a batch as a frame whose offset, timestamp, epoch and checksum are still blank: they are
 * filled by {@link stampFrame} when the writer knows them. `payloadBytes` must be the sum of
 * {@link encodedRecordBytes} over `records`.
 */
export function encodeFrame(records: readonly AppendRecord[], payloadBytes: number, producer?: ProducerStamp): Buffer {
  const producerIdBytes = producer === undefined ? 0 : Buffer.byteLength(producer.producerId, 'utf8');
  const producerBytes = producer === undefined ? 0 : 10 + producerIdBytes;
  const length = FRAME_HEADER_BYTES + producerBytes + payloadBytes;
  const buf = Buffer.allocUnsafe(align8(length));
  buf.writeUInt32LE(length, 0);
  buf[8] = FRAME_TYPE_RECORDS;
  buf[9] = producer === undefined ? 0 : FLAG_PRODUCER;
  buf[10] = 0;
  buf[11] = 0;
  buf.writeUInt32LE(records.length, 12);
  let p = FRAME_HEADER_BYTES;
  if (producer !== undefined) {
    writeU64(buf, producer.sequence, p);
    buf.writeUInt16LE(producerIdBytes, p + 8);
    buf.write(producer.producerId, p + 10, 'utf8');
    p += producerBytes;
  }
  for (const record of records) {
    const key = record.key;
    const value = record.value;
    const headers = record.headers;
    let headerCount = 0;
    if (headers !== undefined) for (const _ in headers) headerCount++;
    buf[p] = RECORD_TYPES[record.type ?? 'put'].typeByte;
    buf[p + 1] = key === undefined ? 0 : RECORD_FLAG_KEY;
    buf.writeUInt16LE(headerCount, p + 2);
    buf.writeUInt32LE(key?.length ?? 0, p + 4);
    buf.writeUInt32LE(value.length, p + 8);
    p += RECORD_HEADER_BYTES;
    if (key !== undefined) {
      buf.set(key, p);
      p += key.length;
    }
    buf.set(value, p);
    p += value.length;
    if (headers !== undefined) {
      for (const name in headers) {
        const headerValue = headers[name] as Uint8Array;
        const nameBytes = buf.write(name, p + 6, 'utf8');
        buf.writeUInt16LE(nameBytes, p);
        buf.writeUInt32LE(headerValue.length, p + 2);
        p += 6 + nameBytes;
        buf.set(headerValue, p);
        p += headerValue.length;
      }
    }
  }
  for (let i = length; i < buf.length; i++) buf[i] = 0;
  return buf;
}

/**
 * Encodes a frame of `count` records from their bytes as a payload holds them (`payload`, no
 * producer section), such as a run of records copied out of another frame; offset, timestamp,
 * epoch and checksum are still blank, filled by {@link stampFrame}.
 */
export function encodeFrameOfRecordBytes(payload: Uint8Array, count: number): Buffer {
  const length = FRAME_HEADER_BYTES + payload.length;
  const buf = Buffer.allocUnsafe(align8(length));
  buf.writeUInt32LE(length, 0);
  buf.writeUInt32LE(0, 4);
  buf[8] = FRAME_TYPE_RECORDS;
  buf[9] = 0;
  buf[10] = 0;
  buf[11] = 0;
  buf.writeUInt32LE(count, 12);
  buf.set(payload, FRAME_HEADER_BYTES);
  buf.fill(0, length);
  return buf;
}

/** Largest `sync lag` a frame can carry; a longer lag is written as 0 (no claim). */
export const MAX_SYNC_LAG = 0xffff_ffff;

/**
 * The `sync lag` of a frame starting at `baseOffset` when every offset below `durableNext` is known
 * durable: 0 (no claim) when the distance does not fit.
 */
export function syncLag(baseOffset: number, durableNext: number): number {
  const lag = baseOffset - durableNext + 1;
  return lag >= 1 && lag <= MAX_SYNC_LAG ? lag : 0;
}

/** Every offset below the returned one was durable when the frame was stamped; undefined: no claim. */
export function durableBefore(header: FrameHeader): number | undefined {
  return header.syncLag === 0 ? undefined : header.baseOffset - header.syncLag + 1;
}

/**
 * Fills in a frame's base offset, timestamp, leader epoch (at most {@link MAX_EPOCH}) and sync
 * lag, then its checksum from `seed` (the segment's frame seed).
 */
export function stampFrame(frame: Buffer, baseOffset: number, timestamp: number, leaderEpoch: number, lag: number, seed: number): void {
  writeU64(frame, baseOffset, 16);
  writeU64(frame, timestamp, 24);
  frame.writeUInt16LE(Math.floor(leaderEpoch / EPOCH_HIGH_UNIT), 10);
  frame.writeUInt32LE(leaderEpoch % EPOCH_HIGH_UNIT, 32);
  frame.writeUInt32LE(lag, 36);
  checksumFrame(frame, seed);
}

/** (Re)computes a stamped frame's checksum from `seed`: for a frame that lands in a segment of another seed. */
export function checksumFrame(frame: Buffer, seed: number): void {
  frame.writeUInt32LE(crc32cRange(frame, 8, frame.readUInt32LE(0), seed), 4);
}

/** The fixed fields of a frame header. */
export interface FrameHeader {
  /** Header + payload bytes, without padding. */
  readonly length: number;
  readonly recordCount: number;
  readonly baseOffset: number;
  readonly timestamp: number;
  /** The leader epoch that wrote the frame (48 bits; 0 on a log never promoted). */
  readonly leaderEpoch: number;
  /** See the file comment; 0 makes no claim. */
  readonly syncLag: number;
  readonly hasProducer: boolean;
}

/**
 * What is at a position: a whole valid frame, zeros (the unwritten end), a frame that runs past the
 * bytes available, or bytes that are not a valid frame. The decoder only reports; the caller
 * decides whether that is a torn tail or corruption.
 */
export type FrameCheck =
  | { readonly kind: 'ok'; readonly header: FrameHeader }
  | { readonly kind: 'zero' }
  | { readonly kind: 'incomplete'; readonly length: number }
  | { readonly kind: 'invalid'; readonly reason: string };

/** Reads the header fields at `position` without checking them. */
export function readFrameHeader(buf: Buffer, position: number): FrameHeader {
  return {
    length: buf.readUInt32LE(position),
    recordCount: buf.readUInt32LE(position + 12),
    baseOffset: readU64(buf, position + 16),
    timestamp: readU64(buf, position + 24),
    leaderEpoch: buf.readUInt16LE(position + 10) * EPOCH_HIGH_UNIT + buf.readUInt32LE(position + 32),
    syncLag: buf.readUInt32LE(position + 36),
    hasProducer: (buf[position + 9]! & FLAG_PRODUCER) !== 0,
  };
}

/**
 * True when the fixed fields at `position` could start a frame (known type, known flags, at least
 * one record, a length past the header): a cheap filter before the checksum, for scans that try
 * every position. `buf` must hold 16 bytes from `position`. (Bytes 10..11 are not checked: they
 * hold the high bits of the epoch.)
 */
export function looksLikeFrameHeader(buf: Buffer, position: number): boolean {
  return (
    buf.readUInt32LE(position) >= FRAME_HEADER_BYTES &&
    buf[position + 8] === FRAME_TYPE_RECORDS &&
    (buf[position + 9]! & ~FLAG_PRODUCER) === 0 &&
    buf.readUInt32LE(position + 12) > 0
  );
}

/**
 * Checks the frame at `position`, where `buf[position..end)` holds the bytes available, against
 * the checksum seed of its segment (0: the plain CRC-32C of format version 1).
 */
export function checkFrame(buf: Buffer, position: number, end: number, seed = 0): FrameCheck {
  if (end - position < 8) {
    for (let i = position; i < end; i++) if (buf[i] !== 0) return { kind: 'incomplete', length: FRAME_HEADER_BYTES };
    return { kind: 'zero' };
  }
  const length = buf.readUInt32LE(position);
  if (length === 0) return { kind: 'zero' };
  if (length < FRAME_HEADER_BYTES) return { kind: 'invalid', reason: `frame length ${length} below the header size` };
  if (position + length > end) return { kind: 'incomplete', length };
  if (buf.readUInt32LE(position + 4) !== crc32cRange(buf, position + 8, position + length, seed)) {
    return { kind: 'invalid', reason: 'checksum mismatch' };
  }
  if (buf[position + 8] !== FRAME_TYPE_RECORDS) return { kind: 'invalid', reason: `unknown frame type ${buf[position + 8]}` };
  const header = readFrameHeader(buf, position);
  if (header.recordCount === 0) return { kind: 'invalid', reason: 'frame without records' };
  if (header.hasProducer) {
    const p = position + FRAME_HEADER_BYTES;
    if (length < FRAME_HEADER_BYTES + 10 || length < FRAME_HEADER_BYTES + 10 + buf.readUInt16LE(p + 8)) {
      return { kind: 'invalid', reason: 'producer section past the frame end' };
    }
  }
  return { kind: 'ok', header };
}

/** Reads the producer section of a checked frame, if it has one. */
export function decodeProducer(buf: Buffer, position: number, header: FrameHeader): ProducerStamp | undefined {
  if (!header.hasProducer) return undefined;
  const p = position + FRAME_HEADER_BYTES;
  const idBytes = buf.readUInt16LE(p + 8);
  return { sequence: readU64(buf, p), producerId: buf.toString('utf8', p + 10, p + 10 + idBytes) };
}

/**
 * Where each record of a checked frame at `position` lies in `buf`: sets `out` to the
 * `recordCount + 1` byte positions of the records' starts and the payload's end, so that records
 * `i..j` are `buf[out[i]..out[j])`, without decoding them. Returns a reason string when the
 * payload does not parse (a format defect), else undefined.
 */
export function recordBounds(buf: Buffer, position: number, header: FrameHeader, out: number[]): string | undefined {
  const end = position + header.length;
  let p = position + FRAME_HEADER_BYTES;
  if (header.hasProducer) p += 10 + buf.readUInt16LE(p + 8);
  out.length = 0;
  for (let i = 0; i < header.recordCount; i++) {
    out.push(p);
    if (p + RECORD_HEADER_BYTES > end) return 'record header past the frame end';
    const headerCount = buf.readUInt16LE(p + 2);
    p += RECORD_HEADER_BYTES + buf.readUInt32LE(p + 4) + buf.readUInt32LE(p + 8);
    for (let h = 0; h < headerCount; h++) {
      if (p + 6 > end) return 'record header entry past the frame end';
      p += 6 + buf.readUInt16LE(p) + buf.readUInt32LE(p + 2);
    }
    if (p > end) return 'record body past the frame end';
  }
  out.push(p);
  return undefined;
}

/**
 * Decodes the records of a checked frame at `position` into `out`, skipping records below
 * `fromOffset` and stopping after `limit` records. With `skipKeylessPuts`, a `PUT` without a key
 * is taken (counted) but not decoded into `out`. Returns the number taken (those in `out` and
 * those skipped), or a reason string when the payload does not parse (a format defect: the
 * checksum already matched).
 */
export function decodeRecords(
  buf: Buffer,
  position: number,
  header: FrameHeader,
  fromOffset: number,
  limit: number,
  out: WalRecord[],
  skipKeylessPuts = false,
): number | string {
  const end = position + header.length;
  let p = position + FRAME_HEADER_BYTES;
  if (header.hasProducer) p += 10 + buf.readUInt16LE(p + 8);
  let taken = 0;
  for (let i = 0; i < header.recordCount && taken < limit; i++) {
    if (p + RECORD_HEADER_BYTES > end) return 'record header past the frame end';
    const type = TYPE_NAMES[buf[p]!];
    if (type === undefined) return `unknown record type ${buf[p]}`;
    const hasKey = (buf[p + 1]! & RECORD_FLAG_KEY) !== 0;
    const headerCount = buf.readUInt16LE(p + 2);
    const keyLength = buf.readUInt32LE(p + 4);
    const valueLength = buf.readUInt32LE(p + 8);
    const keyStart = p + RECORD_HEADER_BYTES;
    const valueStart = keyStart + keyLength;
    p = valueStart + valueLength;
    if (p > end) return 'record body past the frame end';
    const isSkipped = skipKeylessPuts && !hasKey && type === 'put';
    let headers = NO_HEADERS;
    if (headerCount > 0) {
      const parsed: Record<string, Buffer> | undefined = isSkipped ? undefined : {};
      for (let h = 0; h < headerCount; h++) {
        if (p + 6 > end) return 'record header entry past the frame end';
        const nameLength = buf.readUInt16LE(p);
        const headerValueLength = buf.readUInt32LE(p + 2);
        const nameStart = p + 6;
        const headerValueStart = nameStart + nameLength;
        p = headerValueStart + headerValueLength;
        if (p > end) return 'record header entry past the frame end';
        if (parsed !== undefined) setHeader(parsed, buf.toString('utf8', nameStart, headerValueStart), buf.subarray(headerValueStart, p));
      }
      headers = parsed ?? NO_HEADERS;
    }
    const offset = header.baseOffset + i;
    if (offset < fromOffset) continue;
    taken++;
    if (isSkipped) continue;
    out.push({
      offset,
      timestamp: header.timestamp,
      type,
      key: hasKey ? buf.subarray(keyStart, valueStart) : undefined,
      value: buf.subarray(valueStart, valueStart + valueLength),
      headers,
    });
  }
  return taken;
}
