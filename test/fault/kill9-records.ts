/**
 * The records the kill -9 test writes: each value describes itself, so that the parent can check any
 * record found in the log, acknowledged or not, without being told about it.
 *
 * ```
 *  0        4        6        8       10       12       16
 *  +--------+--------+--------+--------+--------+--------+------------------------+
 *  | round  | writer | index  | count  | fill   | seq    | fill bytes (fill long) |
 *  |  u32   |  u16   |  u16   |  u16   |  u16   |  u32   | sha256 pattern         |
 *  +--------+--------+--------+--------+--------+--------+------------------------+
 * ```
 *
 * `index` is the record's place in its batch of `count`; `seq` counts a writer's batches in a round.
 * Every third record also has a key `r<round>w<writer>s<seq>i<index>`.
 */
import { createHash } from 'node:crypto';

const HEAD_BYTES = 16;
/** Longest fill of a value. */
export const MAX_FILL_BYTES = 300;
/** Most records of one batch. */
export const MAX_BATCH_RECORDS = 40;
/** Concurrent writers in the child, so that several batches share one group commit. */
export const WRITERS = 4;
/** Batches each writer appends at most: more than the parent ever waits for before its kill. */
export const BATCHES_PER_WRITER = 150;
/** Small segments, so that kills also land in rotation, index writes and preallocation. */
export const SEGMENT_SIZE_BYTES = 64 * 1024;

/** Where a record belongs: which round, writer, batch and place in the batch. */
export interface RecordTag {
  readonly round: number;
  readonly writer: number;
  readonly seq: number;
  readonly index: number;
  readonly count: number;
  readonly fill: number;
}

/** A record as written and as read back: key (optional) and value. */
export interface RecordBytes {
  readonly key: Uint8Array | undefined;
  readonly value: Uint8Array;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same run. */
export function seededRandom(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    return Math.floor(unit * below);
  };
}

/** The record a tag stands for. */
export function makeRecord(tag: RecordTag): RecordBytes {
  const value = Buffer.alloc(HEAD_BYTES + tag.fill);
  value.writeUInt32LE(tag.round, 0);
  value.writeUInt16LE(tag.writer, 4);
  value.writeUInt16LE(tag.index, 6);
  value.writeUInt16LE(tag.count, 8);
  value.writeUInt16LE(tag.fill, 10);
  value.writeUInt32LE(tag.seq, 12);
  const pattern = createHash('sha256').update(value.subarray(0, HEAD_BYTES)).digest();
  for (let i = 0; i < tag.fill; i++) value[HEAD_BYTES + i] = pattern[i % pattern.length]!;
  const key = tag.index % 3 === 0 ? Buffer.from(`r${tag.round}w${tag.writer}s${tag.seq}i${tag.index}`) : undefined;
  return { key, value };
}

/** The tag a value claims, or undefined when the value is too short to hold one. */
export function readTag(value: Uint8Array): RecordTag | undefined {
  if (value.length < HEAD_BYTES) return undefined;
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return {
    round: b.readUInt32LE(0),
    writer: b.readUInt16LE(4),
    index: b.readUInt16LE(6),
    count: b.readUInt16LE(8),
    fill: b.readUInt16LE(10),
    seq: b.readUInt32LE(12),
  };
}

/** True when both records have the same key (or both none) and the same value, byte for byte. */
export function sameRecord(a: RecordBytes, b: RecordBytes): boolean {
  const sameKey = a.key === undefined || b.key === undefined ? a.key === b.key : Buffer.compare(a.key, b.key) === 0;
  return sameKey && Buffer.compare(a.value, b.value) === 0;
}

/** SHA-256 over the records' keys and values, each length-prefixed (a missing key is not an empty one). */
export function digestRecords(records: readonly RecordBytes[]): string {
  const hash = createHash('sha256');
  const lengths = Buffer.alloc(8);
  for (const record of records) {
    lengths.writeInt32LE(record.key === undefined ? -1 : record.key.length, 0);
    lengths.writeInt32LE(record.value.length, 4);
    hash.update(lengths);
    if (record.key !== undefined) hash.update(record.key);
    hash.update(record.value);
  }
  return hash.digest('hex');
}

/**
 * The batches writer `writer` of round `round` appends, in order: a pure function of the seed, so
 * that the parent can tell exactly what each batch in the log must hold. Yields at most `limit`.
 */
export function* writerBatches(seed: number, round: number, writer: number, limit: number): Generator<RecordBytes[]> {
  const random = seededRandom(seed ^ Math.imul(round + 1, 0x9e3779b1) ^ Math.imul(writer + 1, 0x85ebca6b));
  for (let seq = 0; seq < limit; seq++) {
    const count = 1 + random(MAX_BATCH_RECORDS);
    const records: RecordBytes[] = [];
    for (let index = 0; index < count; index++) records.push(makeRecord({ round, writer, seq, index, count, fill: random(MAX_FILL_BYTES + 1) }));
    yield records;
  }
}

/** One line the child prints after an append resolved. */
export interface AckLine {
  readonly writer: number;
  readonly seq: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly digest: string;
  /** The log's high watermark right after the append resolved. */
  readonly highWatermark: number;
}

/** The line the child prints when an append was rejected; that writer then stops. */
export interface RejectLine {
  readonly writer: number;
  readonly seq: number;
  /** The `WalError` code, or the error's name when it is not a `WalError`. */
  readonly rejected: string;
}

/** The line the child prints once every writer has stopped because an append was rejected. */
export interface StoppedLine {
  readonly stopped: true;
  readonly writeState: string;
}
