/**
 * The 64-byte header at the start of every segment file. All integers little-endian.
 *
 * ```
 *  0       4       6       8               16                              32
 *  +-------+-------+-------+---------------+-------------------------------+
 *  | magic |version| flags |  base offset  |     segment id (16 random)    |
 *  +-------+-------+-------+---------------+-------------------------------+
 *  32              40      44              52              60      64
 *  +---------------+-------+---------------+---------------+-------+
 *  |  created (ms) | seed  |  next offset  | reserved (0)  |  crc  |
 *  +---------------+-------+---------------+---------------+-------+
 * ```
 *
 * `flags` bit 0 (`compacted`): the segment was rewritten by key compaction (segment-rewriter.ts),
 * so its frames may skip offsets (a gap is a run of records compaction dropped), and `next offset`
 * (u64) is the offset after the last record the segment ever held, which its last frame no longer
 * shows when compaction dropped the records at its end. Without the flag `next offset` is zero
 * and frames are dense. Other flag bits are refused: an engine that knows no such bit must not
 * read a segment that may rely on it.
 *
 * `seed` (u32, version 2; zero in version 1) is where every frame checksum of the segment starts
 * (see frame.ts): random per log, never sent to clients, so bytes that merely look like a frame
 * (a frame inside a record's value, a frame of another log) do not check out in this segment.
 *
 * `magic` is the ASCII bytes `WALD`; `crc` is CRC-32C of bytes 0..60. The base offset is the offset
 * of the first record the segment holds (or will hold); the random id ties index files to the one
 * segment they were built from.
 */
import { crc32c } from './crc32c.js';

export const SEGMENT_MAGIC = 0x444c4157; // "WALD" read as a little-endian u32
/**
 * The version new segments are written with. 2: frames carry a sync lag (bytes 36..40) and the
 * leader epoch shrinks to a u32. 1 (up to commit 27a8d45): the same bytes held a u64 epoch of 0.
 */
export const SEGMENT_FORMAT_VERSION = 2;
/** Versions this code reads. */
const READABLE_VERSIONS: readonly number[] = [1, 2];
export const SEGMENT_HEADER_BYTES = 64;
/** Header flag: the segment was rewritten by key compaction (offsets may have gaps; see the file comment). */
const FLAG_COMPACTED = 1;

/** The decoded segment header. */
export interface SegmentHeader {
  readonly formatVersion: number;
  readonly baseOffset: number;
  /** 16 random bytes, hex. */
  readonly segmentId: string;
  readonly createdAtMs: number;
  /** The frame checksum seed of the segment (0 in version 1). */
  readonly frameSeed: number;
  /**
   * Set only on a segment rewritten by key compaction (header flag `compacted`): the offset after
   * the last record it held before compaction. Its frames may skip offsets below it.
   */
  readonly compactedNextOffset?: number;
}

/** Encodes a segment header into a fresh 64-byte buffer. */
export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  buf.writeUInt32LE(SEGMENT_MAGIC, 0);
  buf.writeUInt16LE(header.formatVersion, 4);
  if (header.compactedNextOffset !== undefined) {
    buf.writeUInt16LE(FLAG_COMPACTED, 6);
    buf.writeBigUInt64LE(BigInt(header.compactedNextOffset), 44);
  }
  buf.writeBigUInt64LE(BigInt(header.baseOffset), 8);
  Buffer.from(header.segmentId, 'hex').copy(buf, 16, 0, 16);
  buf.writeBigUInt64LE(BigInt(header.createdAtMs), 32);
  buf.writeUInt32LE(header.frameSeed >>> 0, 40);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 60)), 60);
  return buf;
}

/** Result of decoding a segment header: never throws on bad bytes. */
export type SegmentHeaderResult =
  | { readonly ok: true; readonly header: SegmentHeader }
  | { readonly ok: false; readonly reason: string };

/** Decodes and checks the header at the start of `buf`. */
export function decodeSegmentHeader(buf: Uint8Array): SegmentHeaderResult {
  if (buf.length < SEGMENT_HEADER_BYTES) return { ok: false, reason: 'short header' };
  const b = Buffer.from(buf.buffer, buf.byteOffset, SEGMENT_HEADER_BYTES);
  if (b.readUInt32LE(0) !== SEGMENT_MAGIC) return { ok: false, reason: 'bad magic' };
  if (b.readUInt32LE(60) !== crc32c(b.subarray(0, 60))) return { ok: false, reason: 'header checksum mismatch' };
  const formatVersion = b.readUInt16LE(4);
  if (!READABLE_VERSIONS.includes(formatVersion)) {
    return { ok: false, reason: `unsupported format version ${formatVersion}` };
  }
  const flags = b.readUInt16LE(6);
  if ((flags & ~FLAG_COMPACTED) !== 0 || (formatVersion === 1 && flags !== 0)) return { ok: false, reason: `unknown segment flags 0x${flags.toString(16)}` };
  const header: SegmentHeader = {
    formatVersion,
    baseOffset: Number(b.readBigUInt64LE(8)),
    segmentId: b.subarray(16, 32).toString('hex'),
    createdAtMs: Number(b.readBigUInt64LE(32)),
    frameSeed: formatVersion === 1 ? 0 : b.readUInt32LE(40),
  };
  if ((flags & FLAG_COMPACTED) === 0) return { ok: true, header };
  const compactedNextOffset = Number(b.readBigUInt64LE(44));
  if (compactedNextOffset < header.baseOffset) return { ok: false, reason: `compacted next offset ${compactedNextOffset} below the base offset` };
  return { ok: true, header: { ...header, compactedNextOffset } };
}
