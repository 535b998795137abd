/**
 * The index file persisted beside a segment (`<base>.idx`): the segment's sparse offset and time
 * index, plus what is needed to trust it without re-reading the segment. Derived data: when it is
 * missing or does not match its segment, the segment is scanned and the index rebuilt.
 *
 * ```
 *  0       4       6       8               16                              32
 *  +-------+-------+-------+---------------+-------------------------------+
 *  | magic |version|  zero |  base offset  |   segment id (16 bytes)       |
 *  +-------+-------+-------+---------------+-------------------------------+
 *  32              40              48      52      56              64              72
 *  +---------------+---------------+-------+-------+---------------+---------------+
 *  |  next offset  |   data end    |entries| zero  | first ts (ms) | last ts (ms)  |
 *  +---------------+---------------+-------+-------+---------------+---------------+
 *  72: entries, 16 bytes each: offset - base (u32) | position (u32) | timestamp (u64)
 *  then: producer count (u32) | 4 zero bytes
 *  then per producer: sequence | first offset | last offset | timestamp (u64 each) |
 *        id length (u16) | id (UTF-8)
 *  then: crc32c (u32) of every byte before it | 4 zero bytes
 * ```
 *
 * The producers are the idempotent-append table as of `data end`, so that a retry is still
 * recognised after a restart without re-reading sealed segments.
 *
 * `magic` is ASCII `WIDX`. `data end` is the byte position just past the segment's last frame;
 * `next offset` is the offset after its last record. Entry positions are byte positions of frame
 * starts within the segment; the first entry is the first frame.
 */
import { crc32c } from './crc32c.js';
import { readU64, writeU64 } from './u64.js';

export const INDEX_MAGIC = 0x58444957; // "WIDX"
export const INDEX_FORMAT_VERSION = 1;
const INDEX_HEADER_BYTES = 72;
const ENTRY_BYTES = 16;

/** Everything an index file says. */
export interface IndexFileContents {
  readonly baseOffset: number;
  readonly segmentId: string;
  readonly nextOffset: number;
  readonly dataEnd: number;
  readonly firstTimestamp: number;
  readonly lastTimestamp: number;
  /** Parallel arrays, one element per entry. */
  readonly offsets: ArrayLike<number>;
  readonly positions: ArrayLike<number>;
  readonly timestamps: ArrayLike<number>;
  readonly entryCount: number;
  readonly producers: readonly ProducerState[];
}

/** The last append of one producer, as remembered for idempotent retries. */
export interface ProducerState {
  readonly producerId: string;
  readonly sequence: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly timestamp: number;
}

/** Encodes an index file. */
export function encodeIndexFile(index: IndexFileContents): Buffer {
  let producerBytes = 8;
  for (const producer of index.producers) producerBytes += 34 + Buffer.byteLength(producer.producerId, 'utf8');
  const size = INDEX_HEADER_BYTES + index.entryCount * ENTRY_BYTES + producerBytes + 8;
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(INDEX_MAGIC, 0);
  buf.writeUInt16LE(INDEX_FORMAT_VERSION, 4);
  writeU64(buf, index.baseOffset, 8);
  Buffer.from(index.segmentId, 'hex').copy(buf, 16, 0, 16);
  writeU64(buf, index.nextOffset, 32);
  writeU64(buf, index.dataEnd, 40);
  buf.writeUInt32LE(index.entryCount, 48);
  writeU64(buf, index.firstTimestamp, 56);
  writeU64(buf, index.lastTimestamp, 64);
  let p = INDEX_HEADER_BYTES;
  for (let i = 0; i < index.entryCount; i++) {
    buf.writeUInt32LE(index.offsets[i]! - index.baseOffset, p);
    buf.writeUInt32LE(index.positions[i]!, p + 4);
    writeU64(buf, index.timestamps[i]!, p + 8);
    p += ENTRY_BYTES;
  }
  buf.writeUInt32LE(index.producers.length, p);
  p += 8;
  for (const producer of index.producers) {
    writeU64(buf, producer.sequence, p);
    writeU64(buf, producer.firstOffset, p + 8);
    writeU64(buf, producer.lastOffset, p + 16);
    writeU64(buf, producer.timestamp, p + 24);
    const idBytes = buf.write(producer.producerId, p + 34, 'utf8');
    buf.writeUInt16LE(idBytes, p + 32);
    p += 34 + idBytes;
  }
  buf.writeUInt32LE(crc32c(buf.subarray(0, p)), p);
  return buf;
}

/** Result of decoding an index file: never throws on bad bytes. */
export type IndexFileResult =
  | { readonly ok: true; readonly index: IndexFileContents }
  | { readonly ok: false; readonly reason: string };

/** Decodes and checks an index file. */
export function decodeIndexFile(buf: Buffer): IndexFileResult {
  if (buf.length < INDEX_HEADER_BYTES + 8) return { ok: false, reason: 'short index file' };
  if (buf.readUInt32LE(0) !== INDEX_MAGIC) return { ok: false, reason: 'bad magic' };
  if (buf.readUInt16LE(4) !== INDEX_FORMAT_VERSION) return { ok: false, reason: 'unsupported index version' };
  const end = buf.length - 8;
  if (buf.readUInt32LE(end) !== crc32c(buf.subarray(0, end))) return { ok: false, reason: 'index checksum mismatch' };
  const entryCount = buf.readUInt32LE(48);
  if (INDEX_HEADER_BYTES + entryCount * ENTRY_BYTES + 8 > end) {
    return { ok: false, reason: 'index size does not match its entry count' };
  }
  const baseOffset = readU64(buf, 8);
  const offsets = new Float64Array(entryCount);
  const positions = new Float64Array(entryCount);
  const timestamps = new Float64Array(entryCount);
  let p = INDEX_HEADER_BYTES;
  for (let i = 0; i < entryCount; i++) {
    offsets[i] = baseOffset + buf.readUInt32LE(p);
    positions[i] = buf.readUInt32LE(p + 4);
    timestamps[i] = readU64(buf, p + 8);
    p += ENTRY_BYTES;
  }
  const producerCount = buf.readUInt32LE(p);
  p += 8;
  const producers: ProducerState[] = [];
  for (let i = 0; i < producerCount; i++) {
    if (p + 34 > end) return { ok: false, reason: 'producer table past the end' };
    const idBytes = buf.readUInt16LE(p + 32);
    if (p + 34 + idBytes > end) return { ok: false, reason: 'producer table past the end' };
    producers.push({
      sequence: readU64(buf, p),
      firstOffset: readU64(buf, p + 8),
      lastOffset: readU64(buf, p + 16),
      timestamp: readU64(buf, p + 24),
      producerId: buf.toString('utf8', p + 34, p + 34 + idBytes),
    });
    p += 34 + idBytes;
  }
  if (p !== end) return { ok: false, reason: 'trailing bytes in index file' };
  return {
    ok: true,
    index: {
      baseOffset,
      segmentId: buf.subarray(16, 32).toString('hex'),
      nextOffset: readU64(buf, 32),
      dataEnd: readU64(buf, 40),
      firstTimestamp: readU64(buf, 56),
      lastTimestamp: readU64(buf, 64),
      offsets,
      positions,
      timestamps,
      entryCount,
      producers,
    },
  };
}
