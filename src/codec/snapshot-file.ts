/**
 * Snapshot files (`<id>.snap`): the key-value state as of a log offset. A header that is never
 * compressed (so listing reads 72 bytes), a body of entries sorted by key (gzip-compressed when
 * flag bit 0 is set), and a trailer holding the SHA-256 of everything before it.
 *
 * ```
 *  header (72 bytes, never compressed)
 *  0       4       6    7    8               16              24              32
 *  +-------+-------+----+----+---------------+---------------+---------------+
 *  | magic |version|type|flag|  wal offset   |   put count   |tombstone count|
 *  +-------+-------+----+----+---------------+---------------+---------------+
 *  32              40      44      48              56              64      68      72
 *  +---------------+-------+-------+---------------+---------------+-------+-------+
 *  |  created (ms) | nonce | base  |  base offset  | base created  |  txn  |  crc  |
 *  |               |       | nonce |               |     (ms)      | count |       |
 *  +---------------+-------+-------+---------------+---------------+-------+-------+
 *  72: body: key entries sorted by key, then transaction entries (the stored bytes are a gzip
 *      stream of them when flag bit 0 is set)
 *  entry (25 bytes + key + value):
 *  0    1               5               9               17              25
 *  +----+---------------+---------------+---------------+---------------+-----+-------+
 *  |kind|  key length   | value length  |    offset     |timestamp (ms) | key | value |
 *  +----+---------------+---------------+---------------+---------------+-----+-------+
 *  trailer (40 bytes, at the end of the file)
 *  0               8                                                               40
 *  +---------------+---------------------------------------------------------------+
 *  | body bytes    | SHA-256 of bytes 0 .. 72 + body bytes (header and stored body)  |
 *  +---------------+---------------------------------------------------------------+
 * ```
 *
 * - `magic` = ASCII `WSNP`; `crc` = CRC-32C of header bytes 0..68.
 * - `version`: 2 (written); 1 is still read: a version 1 file has no transaction entries and bytes
 *   64..68 are zero.
 * - `txn count` (u32, version 2): the transaction entries after the key entries: the key-value
 *   view's transaction table as of `wal offset` (src/state/txn-table.ts), whole in every full and
 *   incremental snapshot (an incremental's replaces its base's), none in a point snapshot.
 *   - kind 3, an in-doubt transaction (prepared, neither committed nor aborted): key = the
 *     transaction id, value = its PREPARE's value (the writes, txn-writes.ts), offset and timestamp
 *     = the PREPARE's. In prepare order.
 *   - kind 4, an ended transaction the table remembers: key = the id, value (9 bytes) = outcome
 *     (u8: 1 committed, 2 aborted) | u64 prepare offset + 1 (0: not known), offset and timestamp =
 *     the COMMIT's or ABORT's. In end order (the order they are forgotten in), after every kind 3.
 * - `type`: 1 full (every key), 2 incremental (the keys put or deleted since its base), 3 point
 *   (one key). `flags` bit 0: the body is gzip-compressed; other bits are zero.
 * - `wal offset`: the state includes every record below it (the log's next offset when the state
 *   was captured). Every entry's offset is below it; an incremental's are at or above its base's.
 * - `put count` / `tombstone count`: entries of kind 1 (put) and 2 (tombstone: the key was deleted;
 *   its value length is 0, its offset and timestamp are the delete's). Only incrementals hold
 *   tombstones; a point snapshot holds exactly one put.
 * - Snapshot id (snapshot-id.ts): `wal offset`, `created` and the random `nonce`, written as
 *   `<wal offset: 20 digits>-<created ms: 15 digits>-<nonce: 8 hex digits>`, so ids (and file
 *   names) sort by offset, then by creation time. An incremental names its base by the same three
 *   fields (zero in other types); the base's id sorts before its own.
 * - Entries are sorted by key, bytes compared unsigned (a prefix sorts first), each key once.
 * - The SHA-256 covers the bytes as stored (compressed when compressed), so a client receiving the
 *   file as a byte stream checks it without decompressing; a flipped byte anywhere fails either
 *   the header CRC, the SHA-256, or the trailer's `body bytes` against the file size.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { crc32c } from './crc32c.js';
import { checkTxnWrites } from './txn-writes.js';
import { checkIdParts, formatSnapshotId, MAX_CREATED_MS, type SnapshotIdParts } from './snapshot-id.js';
import { readU64, writeU64 } from './u64.js';

export const SNAPSHOT_MAGIC = 0x504e5357; // "WSNP" read as a little-endian u32
/** The format version written. */
export const SNAPSHOT_FORMAT_VERSION = 2;
/** The oldest format version still read (no transaction entries). */
export const SNAPSHOT_OLDEST_FORMAT_VERSION = 1;
/** Bytes of an ended transaction entry's value. */
export const SNAPSHOT_ENDED_TXN_VALUE_BYTES = 9;
/** Bytes of the header. */
export const SNAPSHOT_HEADER_BYTES = 72;
/** Bytes of the trailer. */
export const SNAPSHOT_TRAILER_BYTES = 40;
/** Bytes of an entry before its key and value. */
export const SNAPSHOT_ENTRY_HEADER_BYTES = 25;
/** Bytes of the SHA-256 checksum. */
export const SNAPSHOT_CHECKSUM_BYTES = 32;
/** Name suffix of a snapshot being written (debris when found after a crash). */
export const SNAPSHOT_TEMP_SUFFIX = '.snap.tmp';
/**
 * Default bound on one entry's key + value bytes while decoding: a record never exceeds a batch,
 * and a batch never exceeds a segment (2 GiB). It bounds what a damaged length can make a decoder
 * buffer before it reports the entry.
 */
export const MAX_SNAPSHOT_ENTRY_BYTES = 2 ** 31;

const TYPE_CODES = { full: 1, incremental: 2, point: 3 } as const;
const TYPE_NAMES: readonly (SnapshotType | undefined)[] = [undefined, 'full', 'incremental', 'point'];
const FLAG_GZIP = 1;
const KIND_PUT = 1;
const KIND_TOMBSTONE = 2;
const KIND_TXN_IN_DOUBT = 3;
const KIND_TXN_ENDED = 4;
/** Largest high half of a u64 that is still a safe integer. */
const MAX_SAFE_HIGH = 0x1f_ffff;
const EMPTY = Buffer.alloc(0);

/** What a snapshot holds: every key, the changes since a base, or one key. */
export type SnapshotType = keyof typeof TYPE_CODES;

/** Everything a snapshot header says. */
export interface SnapshotHeader extends SnapshotIdParts {
  readonly type: SnapshotType;
  readonly isCompressed: boolean;
  readonly putCount: number;
  readonly tombstoneCount: number;
  /** Transaction entries (kinds 3 and 4) after the key entries; 0 in a version 1 file and in a point snapshot. */
  readonly txnCount: number;
  /** The snapshot an incremental applies on; undefined for other types. */
  readonly base: SnapshotIdParts | undefined;
}

/**
 * One decoded entry, as a cursor into the decoder's buffer: the key is `bytes[keyStart..keyEnd)`,
 * the value `bytes[keyEnd..valueEnd)`. The decoder reuses the object and the buffer: they are valid
 * during the callback only (copy what you keep; {@link entryKey} and {@link entryValue} give views).
 */
export interface SnapshotEntry {
  /** `txn_in_doubt` and `txn_ended` are the transaction entries (kinds 3 and 4, see the format). */
  readonly kind: 'put' | 'tombstone' | 'txn_in_doubt' | 'txn_ended';
  readonly bytes: Buffer;
  readonly keyStart: number;
  readonly keyEnd: number;
  readonly valueEnd: number;
  readonly offset: number;
  readonly timestamp: number;
}

/** The key of an entry: a view into the decoder's buffer. */
export function entryKey(entry: SnapshotEntry): Buffer {
  return entry.bytes.subarray(entry.keyStart, entry.keyEnd);
}

/** The value of an entry: a view into the decoder's buffer. */
export function entryValue(entry: SnapshotEntry): Buffer {
  return entry.bytes.subarray(entry.keyEnd, entry.valueEnd);
}

/** Result of decoding: never throws on bad bytes. */
export type SnapshotDecodeResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Encodes a header. Throws `RangeError` for a header that breaks the rules above. */
export function encodeSnapshotHeader(header: SnapshotHeader): Buffer {
  checkIdParts(header);
  const problem = headerRuleBroken(header);
  if (problem !== undefined) throw new RangeError(`snapshot header: ${problem}`);
  const buf = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  buf.writeUInt32LE(SNAPSHOT_MAGIC, 0);
  buf.writeUInt16LE(SNAPSHOT_FORMAT_VERSION, 4);
  buf[6] = TYPE_CODES[header.type];
  buf[7] = header.isCompressed ? FLAG_GZIP : 0;
  writeU64(buf, header.walOffset, 8);
  writeU64(buf, header.putCount, 16);
  writeU64(buf, header.tombstoneCount, 24);
  writeU64(buf, header.createdMs, 32);
  buf.writeUInt32LE(header.nonce, 40);
  if (header.base !== undefined) {
    checkIdParts(header.base);
    buf.writeUInt32LE(header.base.nonce, 44);
    writeU64(buf, header.base.walOffset, 48);
    writeU64(buf, header.base.createdMs, 56);
  }
  buf.writeUInt32LE(header.txnCount, 64);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 68)), 68);
  return buf;
}

/** Why a header breaks the format's rules, or undefined. */
function headerRuleBroken(header: SnapshotHeader): string | undefined {
  if (!Number.isSafeInteger(header.putCount) || header.putCount < 0) return `bad put count ${header.putCount}`;
  if (!Number.isSafeInteger(header.tombstoneCount) || header.tombstoneCount < 0) return `bad tombstone count ${header.tombstoneCount}`;
  if (!Number.isInteger(header.txnCount) || header.txnCount < 0 || header.txnCount > 0xffff_ffff) return `bad transaction count ${header.txnCount}`;
  if (header.type === 'point' && header.txnCount !== 0) return 'a point snapshot holds no transactions';
  if (header.type !== 'incremental' && header.tombstoneCount !== 0) return `a ${header.type} snapshot holds no tombstones`;
  if (header.type === 'point' && header.putCount !== 1) return 'a point snapshot holds exactly one entry';
  if ((header.type === 'incremental') !== (header.base !== undefined)) return 'an incremental snapshot, and only it, names a base';
  if (header.base !== undefined && formatSnapshotId(header.base) >= formatSnapshotId(header)) return 'the base does not sort before the snapshot';
  return undefined;
}

/** Decodes and checks a header (the first {@link SNAPSHOT_HEADER_BYTES} of `buf`). */
export function decodeSnapshotHeader(buf: Uint8Array): SnapshotDecodeResult<SnapshotHeader> {
  if (buf.length < SNAPSHOT_HEADER_BYTES) return { ok: false, reason: 'short header' };
  const b = Buffer.from(buf.buffer, buf.byteOffset, SNAPSHOT_HEADER_BYTES);
  if (b.readUInt32LE(0) !== SNAPSHOT_MAGIC) return { ok: false, reason: 'bad magic' };
  if (b.readUInt32LE(68) !== crc32c(b.subarray(0, 68))) return { ok: false, reason: 'header checksum mismatch' };
  const version = b.readUInt16LE(4);
  if (version < SNAPSHOT_OLDEST_FORMAT_VERSION || version > SNAPSHOT_FORMAT_VERSION) return { ok: false, reason: `unsupported format version ${version}` };
  const type = TYPE_NAMES[b[6]!];
  if (type === undefined) return { ok: false, reason: `unknown snapshot type ${b[6]}` };
  if ((b[7]! & ~FLAG_GZIP) !== 0) return { ok: false, reason: `unknown flags ${b[7]}` };
  if (version === 1 && b.readUInt32LE(64) !== 0) return { ok: false, reason: 'reserved header bytes are not zero' };
  for (const position of [8, 16, 24, 32, 48, 56]) {
    if (b.readUInt32LE(position + 4) > MAX_SAFE_HIGH) return { ok: false, reason: `header field at byte ${position} is not a safe integer` };
  }
  const createdMs = readU64(b, 32);
  const baseCreatedMs = readU64(b, 56);
  if (createdMs > MAX_CREATED_MS || baseCreatedMs > MAX_CREATED_MS) return { ok: false, reason: 'creation time out of range' };
  const baseParts = { nonce: b.readUInt32LE(44), walOffset: readU64(b, 48), createdMs: baseCreatedMs };
  const hasBase = baseParts.nonce !== 0 || baseParts.walOffset !== 0 || baseParts.createdMs !== 0;
  const header: SnapshotHeader = {
    type,
    isCompressed: (b[7]! & FLAG_GZIP) !== 0,
    walOffset: readU64(b, 8),
    putCount: readU64(b, 16),
    tombstoneCount: readU64(b, 24),
    txnCount: b.readUInt32LE(64),
    createdMs,
    nonce: b.readUInt32LE(40),
    base: type === 'incremental' || hasBase ? baseParts : undefined,
  };
  const problem = headerRuleBroken(header);
  return problem === undefined ? { ok: true, value: header } : { ok: false, reason: problem };
}

/** The id of the snapshot a header describes. */
export function snapshotIdOf(header: SnapshotHeader): string {
  return formatSnapshotId(header);
}

/**
 * Writes an entry's fixed part at `position` of `buf` (the key and value bytes follow it).
 * Returns the position of the key.
 */
export function encodeSnapshotEntryHeader(
  buf: Buffer,
  position: number,
  kind: SnapshotEntry['kind'],
  keyBytes: number,
  valueBytes: number,
  offset: number,
  timestamp: number,
): number {
  // Byte stores rather than writeUInt32LE: this runs once per key of a snapshot, and the checked
  // Buffer methods cost more than the stores (the caller sized the buffer).
  buf[position] = KIND_CODES[kind];
  putU32(buf, position + 1, keyBytes);
  putU32(buf, position + 5, valueBytes);
  putU64(buf, position + 9, offset);
  putU64(buf, position + 17, timestamp);
  return position + SNAPSHOT_ENTRY_HEADER_BYTES;
}

const KIND_CODES = { put: KIND_PUT, tombstone: KIND_TOMBSTONE, txn_in_doubt: KIND_TXN_IN_DOUBT, txn_ended: KIND_TXN_ENDED } as const;
const KIND_NAMES = [undefined, 'put', 'tombstone', 'txn_in_doubt', 'txn_ended'] as const;

/** The value of an ended transaction entry (kind 4): its outcome and its PREPARE's offset (-1: not known). */
export function encodeEndedTxnValue(outcome: 'committed' | 'aborted', prepareOffset: number): Buffer {
  const buf = Buffer.alloc(SNAPSHOT_ENDED_TXN_VALUE_BYTES);
  buf[0] = outcome === 'committed' ? 1 : 2;
  writeU64(buf, prepareOffset + 1, 1);
  return buf;
}

/** Reads the value of an ended transaction entry (checked by the decoder). */
export function decodeEndedTxnValue(value: Uint8Array): { readonly outcome: 'committed' | 'aborted'; readonly prepareOffset: number } {
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return { outcome: b[0] === 1 ? 'committed' : 'aborted', prepareOffset: readU64(b, 1) - 1 };
}

function putU32(buf: Buffer, position: number, value: number): void {
  buf[position] = value;
  buf[position + 1] = value >>> 8;
  buf[position + 2] = value >>> 16;
  buf[position + 3] = value >>> 24;
}

function putU64(buf: Buffer, position: number, value: number): void {
  const low = value % 0x1_0000_0000;
  putU32(buf, position, low);
  putU32(buf, position + 4, (value - low) / 0x1_0000_0000);
}

function getU32(buf: Buffer, position: number): number {
  return (buf[position]! | (buf[position + 1]! << 8) | (buf[position + 2]! << 16) | (buf[position + 3]! << 24)) >>> 0;
}

/** Encodes the trailer: the stored body's length and the SHA-256 of header + stored body. */
export function encodeSnapshotTrailer(bodyBytes: number, checksum: Uint8Array): Buffer {
  if (checksum.length !== SNAPSHOT_CHECKSUM_BYTES) throw new RangeError(`checksum must be ${SNAPSHOT_CHECKSUM_BYTES} bytes, got ${checksum.length}`);
  const buf = Buffer.alloc(SNAPSHOT_TRAILER_BYTES);
  writeU64(buf, bodyBytes, 0);
  buf.set(checksum, 8);
  return buf;
}

/** What a trailer says. */
export interface SnapshotTrailer {
  readonly bodyBytes: number;
  /** SHA-256, lowercase hex. */
  readonly checksum: string;
}

/**
 * Decodes the trailer of a file of `fileBytes` bytes (the last {@link SNAPSHOT_TRAILER_BYTES} of
 * it, given as `buf`) and checks that its body length matches the file's size.
 */
export function decodeSnapshotTrailer(buf: Uint8Array, fileBytes: number): SnapshotDecodeResult<SnapshotTrailer> {
  if (buf.length < SNAPSHOT_TRAILER_BYTES || fileBytes < SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES) return { ok: false, reason: 'file too short for a snapshot' };
  const b = Buffer.from(buf.buffer, buf.byteOffset, SNAPSHOT_TRAILER_BYTES);
  const bodyBytes = b.readUInt32LE(4) > MAX_SAFE_HIGH ? -1 : readU64(b, 0);
  if (bodyBytes !== fileBytes - SNAPSHOT_HEADER_BYTES - SNAPSHOT_TRAILER_BYTES) {
    return { ok: false, reason: `trailer says ${bodyBytes} body bytes, the file holds ${fileBytes - SNAPSHOT_HEADER_BYTES - SNAPSHOT_TRAILER_BYTES} (truncated or extended)` };
  }
  return { ok: true, value: { bodyBytes, checksum: b.toString('hex', 8, 8 + SNAPSHOT_CHECKSUM_BYTES) } };
}

/**
 * Decodes a snapshot body (decompressed) as it arrives, in pieces of any size, checking what the
 * header promised: entry kinds allowed by the type, keys strictly ascending, offsets below the
 * wal offset (and at or above the base's for an incremental), tombstones without values, and the
 * counts. Reports the first problem; never throws on bad bytes.
 */
export class SnapshotEntryDecoder {
  /** The bytes of an entry cut at the end of a piece: `pending[0..pendingBytes)`. */
  private pending: Buffer = EMPTY;
  private pendingBytes = 0;
  private previousKey: Buffer = Buffer.alloc(64);
  private previousKeyBytes = -1;
  private puts = 0;
  private tombstones = 0;
  private inDoubtTxns = 0;
  private endedTxns = 0;
  private lastInDoubtOffset = -1;
  private lastEndedOffset = -1;
  private failure: string | undefined;
  private readonly cursor: { -readonly [K in keyof SnapshotEntry]: SnapshotEntry[K] } = { kind: 'put', bytes: EMPTY, keyStart: 0, keyEnd: 0, valueEnd: 0, offset: 0, timestamp: 0 };

  constructor(
    private readonly header: SnapshotHeader,
    private readonly maxEntryBytes = MAX_SNAPSHOT_ENTRY_BYTES,
  ) {}

  /**
   * Decodes `chunk`, the next body bytes, calling `onEntry` for each whole entry in order (with a
   * cursor reused from one call to the next). Returns the reason of the first problem (then and on
   * every later call), else undefined. `chunk` may be reused by the caller after the call.
   *
   * Entries are decoded where they lie in `chunk`; only an entry cut at a piece's end is copied,
   * into a buffer of its size, so that pieces are not joined (a copy of every piece) and a large
   * entry spread over many pieces is copied once.
   */
  push(chunk: Buffer, onEntry: (entry: SnapshotEntry) => void): string | undefined {
    if (this.failure !== undefined) return this.failure;
    let start = 0;
    if (this.pendingBytes > 0) {
      start = this.fillPending(chunk);
      if (this.failure !== undefined) return this.failure;
      const entryBytes = this.pendingBytes < SNAPSHOT_ENTRY_HEADER_BYTES ? -1 : this.entryBytesAt(this.pending, 0);
      if (this.pendingBytes !== entryBytes) return undefined;
      const pending = this.pending;
      this.pending = EMPTY;
      this.pendingBytes = 0;
      this.decode(pending, 0, entryBytes, onEntry);
      if (this.failure !== undefined) return this.failure;
    }
    const position = this.decode(chunk, start, chunk.length, onEntry);
    if (this.failure !== undefined) return this.failure;
    if (position < chunk.length) {
      this.pending = Buffer.allocUnsafe(Math.max(chunk.length - position, SNAPSHOT_ENTRY_HEADER_BYTES));
      this.pendingBytes = chunk.copy(this.pending, 0, position);
    }
    return undefined;
  }

  /** Decodes the whole entries of `buf[start..end)`; returns where the first incomplete one starts. */
  private decode(buf: Buffer, start: number, end: number, onEntry: (entry: SnapshotEntry) => void): number {
    const cursor = this.cursor;
    cursor.bytes = buf;
    let position = start;
    while (end - position >= SNAPSHOT_ENTRY_HEADER_BYTES) {
      const kindCode = buf[position]!;
      const keyBytes = getU32(buf, position + 1);
      const valueBytes = getU32(buf, position + 5);
      if (keyBytes + valueBytes > this.maxEntryBytes) {
        this.fail(`entry ${this.count()} of ${keyBytes + valueBytes} bytes exceeds the limit of ${this.maxEntryBytes}`);
        break;
      }
      const entryEnd = position + SNAPSHOT_ENTRY_HEADER_BYTES + keyBytes + valueBytes;
      if (entryEnd > end) break;
      const problem = this.check(buf, position, kindCode, keyBytes, valueBytes);
      if (problem !== undefined) {
        this.fail(problem);
        break;
      }
      cursor.kind = KIND_NAMES[kindCode]!;
      cursor.keyStart = position + SNAPSHOT_ENTRY_HEADER_BYTES;
      cursor.keyEnd = cursor.keyStart + keyBytes;
      cursor.valueEnd = entryEnd;
      cursor.offset = getU32(buf, position + 9) + getU32(buf, position + 13) * 0x1_0000_0000;
      cursor.timestamp = getU32(buf, position + 17) + getU32(buf, position + 21) * 0x1_0000_0000;
      onEntry(cursor);
      position = entryEnd;
    }
    cursor.bytes = EMPTY;
    return position;
  }

  /** Bytes of the entry whose header is at `buf[position..]`. */
  private entryBytesAt(buf: Buffer, position: number): number {
    return SNAPSHOT_ENTRY_HEADER_BYTES + getU32(buf, position + 1) + getU32(buf, position + 5);
  }

  /** Copies into the pending entry the bytes of `chunk` it still lacks; returns how many were taken. */
  private fillPending(chunk: Buffer): number {
    let taken = 0;
    if (this.pendingBytes < SNAPSHOT_ENTRY_HEADER_BYTES) {
      taken = chunk.copy(this.pending, this.pendingBytes, 0, Math.min(chunk.length, SNAPSHOT_ENTRY_HEADER_BYTES - this.pendingBytes));
      this.pendingBytes += taken;
      if (this.pendingBytes < SNAPSHOT_ENTRY_HEADER_BYTES) return taken;
    }
    const keyAndValueBytes = getU32(this.pending, 1) + getU32(this.pending, 5);
    if (keyAndValueBytes > this.maxEntryBytes) {
      this.fail(`entry ${this.count()} of ${keyAndValueBytes} bytes exceeds the limit of ${this.maxEntryBytes}`);
      return taken;
    }
    const entryBytes = SNAPSHOT_ENTRY_HEADER_BYTES + keyAndValueBytes;
    if (this.pending.length < entryBytes) {
      const whole = Buffer.allocUnsafe(entryBytes);
      this.pending.copy(whole, 0, 0, this.pendingBytes);
      this.pending = whole;
    }
    const more = chunk.copy(this.pending, this.pendingBytes, taken, Math.min(chunk.length, taken + entryBytes - this.pendingBytes));
    this.pendingBytes += more;
    return taken + more;
  }

  /** Call after the last body byte: reports a cut-off entry or counts that differ from the header's. */
  finish(): string | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.pendingBytes !== 0) return this.fail(`the body ends inside entry ${this.count()}`);
    if (this.puts !== this.header.putCount || this.tombstones !== this.header.tombstoneCount) {
      return this.fail(`the body holds ${this.puts} puts and ${this.tombstones} tombstones, the header says ${this.header.putCount} and ${this.header.tombstoneCount}`);
    }
    if (this.inDoubtTxns + this.endedTxns !== this.header.txnCount) {
      return this.fail(`the body holds ${this.inDoubtTxns + this.endedTxns} transactions, the header says ${this.header.txnCount}`);
    }
    return undefined;
  }

  private count(): number {
    return this.puts + this.tombstones + this.inDoubtTxns + this.endedTxns;
  }

  /** Checks a transaction entry (kinds 3 and 4): after every key entry, in-doubt ones first, each kind in offset order. */
  private checkTxn(buf: Buffer, position: number, kindCode: number, keyBytes: number, valueBytes: number): string | undefined {
    const index = this.count();
    if (this.inDoubtTxns + this.endedTxns >= this.header.txnCount) return `more transactions than the header's ${this.header.txnCount}`;
    if (kindCode === KIND_TXN_IN_DOUBT && this.endedTxns > 0) return `entry ${index}: an in-doubt transaction after an ended one`;
    if (getU32(buf, position + 13) > MAX_SAFE_HIGH || getU32(buf, position + 21) > MAX_SAFE_HIGH) return `entry ${index}: offset or timestamp is not a safe integer`;
    const offset = getU32(buf, position + 9) + getU32(buf, position + 13) * 0x1_0000_0000;
    if (offset >= this.header.walOffset) return `entry ${index}: offset ${offset} is not below the snapshot's wal offset ${this.header.walOffset}`;
    const last = kindCode === KIND_TXN_IN_DOUBT ? this.lastInDoubtOffset : this.lastEndedOffset;
    if (offset <= last) return `entry ${index}: transactions out of order`;
    if (kindCode === KIND_TXN_IN_DOUBT) this.lastInDoubtOffset = offset;
    else this.lastEndedOffset = offset;
    const valueStart = position + SNAPSHOT_ENTRY_HEADER_BYTES + keyBytes;
    if (kindCode === KIND_TXN_IN_DOUBT) {
      const problem = checkTxnWrites(buf.subarray(valueStart, valueStart + valueBytes));
      if (problem !== undefined) return `entry ${index}: an in-doubt transaction whose writes do not decode: ${problem}`;
      this.inDoubtTxns++;
      return undefined;
    }
    if (valueBytes !== SNAPSHOT_ENDED_TXN_VALUE_BYTES || (buf[valueStart] !== 1 && buf[valueStart] !== 2) || getU32(buf, valueStart + 5) > MAX_SAFE_HIGH) {
      return `entry ${index}: a malformed ended transaction`;
    }
    const prepareOffset = getU32(buf, valueStart + 1) + getU32(buf, valueStart + 5) * 0x1_0000_0000 - 1;
    if (prepareOffset >= offset) return `entry ${index}: an ended transaction prepared at ${prepareOffset}, not before its end at ${offset}`;
    this.endedTxns++;
    return undefined;
  }

  private check(buf: Buffer, position: number, kindCode: number, keyBytes: number, valueBytes: number): string | undefined {
    const index = this.count();
    if (kindCode === KIND_TXN_IN_DOUBT || kindCode === KIND_TXN_ENDED) return this.checkTxn(buf, position, kindCode, keyBytes, valueBytes);
    if (this.inDoubtTxns + this.endedTxns > 0 && (kindCode === KIND_PUT || kindCode === KIND_TOMBSTONE)) return `entry ${index}: a key entry after the transactions`;
    if (kindCode === KIND_PUT) {
      if (++this.puts > this.header.putCount) return `more puts than the header's ${this.header.putCount}`;
    } else if (kindCode === KIND_TOMBSTONE) {
      if (this.header.type !== 'incremental') return `entry ${index}: a tombstone in a ${this.header.type} snapshot`;
      if (valueBytes !== 0) return `entry ${index}: a tombstone with a value`;
      if (++this.tombstones > this.header.tombstoneCount) return `more tombstones than the header's ${this.header.tombstoneCount}`;
    } else {
      return `entry ${index}: unknown kind ${kindCode}`;
    }
    if (getU32(buf, position + 13) > MAX_SAFE_HIGH || getU32(buf, position + 21) > MAX_SAFE_HIGH) return `entry ${index}: offset or timestamp is not a safe integer`;
    const offset = getU32(buf, position + 9) + getU32(buf, position + 13) * 0x1_0000_0000;
    if (offset >= this.header.walOffset) return `entry ${index}: offset ${offset} is not below the snapshot's wal offset ${this.header.walOffset}`;
    if (this.header.base !== undefined && offset < this.header.base.walOffset) {
      return `entry ${index}: offset ${offset} is below the base's wal offset ${this.header.base.walOffset}`;
    }
    const keyStart = position + SNAPSHOT_ENTRY_HEADER_BYTES;
    if (this.previousKeyBytes >= 0 && compareBytes(this.previousKey, this.previousKeyBytes, buf, keyStart, keyBytes) >= 0) {
      return `entry ${index}: keys out of order`;
    }
    if (this.previousKey.length < keyBytes) this.previousKey = Buffer.alloc(Math.max(keyBytes, this.previousKey.length * 2));
    copyBytes(buf, keyStart, keyBytes, this.previousKey);
    this.previousKeyBytes = keyBytes;
    return undefined;
  }

  private fail(reason: string): string {
    this.failure = reason;
    return reason;
  }
}

/** Keys this short are compared and copied in JavaScript: cheaper than a call into native code. */
const SHORT_KEY_BYTES = 32;

/** Compares `a[0..aBytes)` with `b[bStart..bStart + bBytes)` by unsigned bytes. */
function compareBytes(a: Buffer, aBytes: number, b: Buffer, bStart: number, bBytes: number): number {
  if (aBytes > SHORT_KEY_BYTES || bBytes > SHORT_KEY_BYTES) return a.compare(b, bStart, bStart + bBytes, 0, aBytes);
  const common = Math.min(aBytes, bBytes);
  for (let i = 0; i < common; i++) {
    const difference = a[i]! - b[bStart + i]!;
    if (difference !== 0) return difference;
  }
  return aBytes - bBytes;
}

function copyBytes(from: Buffer, start: number, length: number, to: Buffer): void {
  if (length > SHORT_KEY_BYTES) {
    from.copy(to, 0, start, start + length);
    return;
  }
  for (let i = 0; i < length; i++) to[i] = from[start + i]!;
}

/** A whole snapshot file, decoded and checked. */
export interface DecodedSnapshotFile {
  readonly header: SnapshotHeader;
  readonly checksum: string;
}

/**
 * Decodes and checks a whole snapshot file held in memory (a point snapshot, a file received by a
 * client): header, trailer, SHA-256, then every entry (decompressed, at most `maxBodyBytes` when
 * gzip-compressed), calling `onEntry` for each. Large files go through a streaming reader instead
 * (src/state/snapshot-reader.ts), which applies the same checks. Never throws on bad bytes.
 */
export function decodeSnapshotFile(
  bytes: Uint8Array,
  onEntry: (entry: SnapshotEntry) => void = () => {},
  maxBodyBytes = 256 * 1024 * 1024,
): SnapshotDecodeResult<DecodedSnapshotFile> {
  const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const header = decodeSnapshotHeader(file);
  if (!header.ok) return header;
  const trailer = decodeSnapshotTrailer(file.subarray(file.length - SNAPSHOT_TRAILER_BYTES), file.length);
  if (!trailer.ok) return trailer;
  const bodyEnd = SNAPSHOT_HEADER_BYTES + trailer.value.bodyBytes;
  if (createHash('sha256').update(file.subarray(0, bodyEnd)).digest('hex') !== trailer.value.checksum) return { ok: false, reason: 'checksum mismatch' };
  let body = file.subarray(SNAPSHOT_HEADER_BYTES, bodyEnd);
  if (header.value.isCompressed) {
    try {
      body = gunzipSync(body, { maxOutputLength: maxBodyBytes });
    } catch (error) {
      return { ok: false, reason: `gzip body: ${(error as Error).message}` };
    }
  }
  const decoder = new SnapshotEntryDecoder(header.value);
  const problem = decoder.push(body, onEntry) ?? decoder.finish();
  if (problem !== undefined) return { ok: false, reason: problem };
  return { ok: true, value: { header: header.value, checksum: trailer.value.checksum } };
}
