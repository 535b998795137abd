import { createHash } from 'node:crypto';
import { align8 } from '../codec/align.js';
import { checkFrame, type FrameHeader } from '../codec/frame.js';
import { SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import { invalidArgument, WalError } from '../errors.js';
import { compacted, frameCorruption } from './log-reader.js';
import type { RecentFrame, RecentFrames } from './recent-frames.js';
import type { Segment } from './segment.js';
import type { SegmentList } from './segment-list.js';
import { walErrorFromStorage } from './storage-errors.js';
import type { IoStats } from './types.js';

/** One frame as its segment stores it (`Wal.readFrames`). */
export interface RawFrameInfo {
  /** Header, payload and padding: the stored bytes, never to be changed (see {@link FrameReader}). */
  readonly bytes: Buffer;
  readonly baseOffset: number;
  readonly recordCount: number;
  readonly epoch: number;
  /** The frame's checksum as stored (it starts from the log's frame seed). */
  readonly crc32c: number;
  readonly timestamp: number;
}

/** Whole consecutive frames of one segment (`Wal.readFrames`). */
export interface FrameRun {
  /** At least one when any durable frame lies at or after the start. */
  readonly frames: readonly RawFrameInfo[];
  /** The 64-byte header of the segment of `frames[0]`, when `frames[0]` is that segment's first frame. */
  readonly segmentHeader?: Buffer;
  /** The offset after the last frame's records (the start when the run is empty). */
  readonly nextOffset: number;
}

/** What `Wal.hashRange` answers (HashRange, replication.proto). */
export interface RangeHash {
  /** SHA-256 over the stored bytes of the frames counted, in offset order. */
  readonly sha256: Buffer;
  /** The base offset of the first frame counted (the asked start when none was). */
  readonly fromOffset: number;
  /** The offset after the last record of the last frame counted (`fromOffset` when none was). */
  readonly toOffset: number;
  readonly frameCount: number;
  readonly recordCount: number;
}

/** A frame found by a scan, and where. */
interface StoredFrame {
  readonly bytes: Buffer;
  readonly header: FrameHeader;
  readonly segment: Segment;
  /** The segment's header bytes, when this is its first frame. */
  readonly segmentHeader: Buffer | undefined;
}

const MIN_CHUNK_BYTES = 16 * 1024;
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const HASH_CHUNK_BYTES = 1024 * 1024;

/**
 * Reads frames out of segments as they are stored, without decoding their records: the leader's
 * side of replication (frames for followers) and range hashes. Every frame read from a file has its
 * checksum verified on the way out (bit rot is `WAL_CORRUPTION`, never shipped).
 *
 * A run of frames that were just written comes from the recent frames (recent-frames.ts) instead:
 * the writer's own buffers, checksummed when they were made (or checked on arrival, a follower's),
 * shared and never to be changed. Otherwise the bytes handed out are views of a buffer this reader
 * allocated and filled by a read of the file for that call alone. Either way a caller may hold
 * them while the segment is rewritten by key compaction or deleted by compaction. A read buffer is
 * sized from the bytes asked for, so a run holds little more memory than its frames. Range hashes
 * always read the files.
 */
export class FrameReader {
  constructor(
    private readonly segments: SegmentList,
    private readonly io: IoStats,
    private readonly recent: RecentFrames,
  ) {}

  /**
   * Whole frames of one segment from `fromOffset` whose base offset is below `endOffset` (at most
   * the high watermark + 1, so they lie wholly below it), at most `maxBytes` of them (one larger frame comes alone). `fromOffset` must not lie inside a
   * frame; in a compacted segment's gap the run starts at the next frame.
   *
   * Throws `WAL_INVALID_ARGUMENT` (field `fromOffset`) inside a frame, `WAL_OFFSET_COMPACTED` when
   * a segment it needs was deleted, `WAL_CORRUPTION`, `WAL_IO_ERROR`.
   */
  async readRun(fromOffset: number, endOffset: number, maxBytes: number): Promise<FrameRun> {
    const recent = this.recentRun(fromOffset, endOffset, maxBytes);
    if (recent !== undefined) return recent;
    const frames: RawFrameInfo[] = [];
    let segmentHeader: Buffer | undefined;
    let first: Segment | undefined;
    let bytes = 0;
    const chunkBytes = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, align8(maxBytes) + 8192));
    for await (const frame of this.scan(fromOffset, endOffset, chunkBytes, true)) {
      if (first !== undefined && (frame.segment !== first || bytes + frame.bytes.length > maxBytes)) break;
      if (first === undefined) {
        first = frame.segment;
        segmentHeader = frame.segmentHeader;
      }
      const { header } = frame;
      frames.push({
        bytes: frame.bytes,
        baseOffset: header.baseOffset,
        recordCount: header.recordCount,
        epoch: header.leaderEpoch,
        crc32c: frame.bytes.readUInt32LE(4),
        timestamp: header.timestamp,
      });
      bytes += frame.bytes.length;
    }
    const last = frames.at(-1);
    const nextOffset = last === undefined ? fromOffset : last.baseOffset + last.recordCount;
    return segmentHeader === undefined ? { frames, nextOffset } : { frames, segmentHeader, nextOffset };
  }

  /**
   * {@link readRun} from the recent frames, when they hold a frame starting at `fromOffset` that is
   * not its segment's first (a run from there carries the segment header, read from the file).
   */
  private recentRun(fromOffset: number, endOffset: number, maxBytes: number): FrameRun | undefined {
    let i = this.recent.indexOf(fromOffset, this.segments.find(fromOffset));
    const first = this.recent.at(i);
    if (i < 0 || first === undefined || first.position === SEGMENT_HEADER_BYTES || first.header.baseOffset !== fromOffset) return undefined;
    const frames: RawFrameInfo[] = [];
    let bytes = 0;
    for (let frame: RecentFrame | undefined = first; frame?.segment === first.segment && frame.header.baseOffset < endOffset; frame = this.recent.at(++i)) {
      if (frames.length > 0 && bytes + frame.bytes.length > maxBytes) break;
      const { header } = frame;
      frames.push({ bytes: frame.bytes, baseOffset: header.baseOffset, recordCount: header.recordCount, epoch: header.leaderEpoch, crc32c: frame.bytes.readUInt32LE(4), timestamp: header.timestamp });
      bytes += frame.bytes.length;
    }
    const last = frames[frames.length - 1]!;
    return { frames, nextOffset: last.baseOffset + last.recordCount };
  }

  /**
   * The 64-byte header of the segment holding `offset` (a copy), so that a tail that starts inside
   * a segment can tell its follower the segment's frame seed. Throws `WAL_OFFSET_COMPACTED` when
   * the segment was deleted, `WAL_IO_ERROR`.
   */
  async segmentHeaderOf(offset: number): Promise<Buffer> {
    const segment = this.segments.find(offset);
    const file = segment === undefined ? undefined : this.segments.files.acquire(segment);
    if (segment === undefined || file === undefined) throw compacted(offset, this.segments.first.baseOffset);
    try {
      const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
      const got = await file.read(buf, SEGMENT_HEADER_BYTES, 0).catch((error: unknown) => {
        throw walErrorFromStorage(error, `reading ${segment.name} failed`, { segment: segment.name, position: 0 });
      });
      this.io.reads++;
      this.io.bytesRead += got;
      if (got < SEGMENT_HEADER_BYTES) throw shortSegment(segment, got, offset);
      return buf;
    } finally {
      segment.release();
    }
  }

  /**
   * SHA-256 over the stored bytes of the frames whose base offset is in `[fromOffset, endOffset)`,
   * in offset order. Throws as {@link readRun} does (but a start inside a frame is allowed: the
   * frame is not counted).
   */
  async hash(fromOffset: number, endOffset: number): Promise<RangeHash> {
    const hash = createHash('sha256');
    let first: number | undefined;
    let toOffset = fromOffset;
    let frameCount = 0;
    let recordCount = 0;
    for await (const frame of this.scan(fromOffset, endOffset, HASH_CHUNK_BYTES, false)) {
      const { header } = frame;
      if (header.baseOffset < fromOffset) continue;
      first ??= header.baseOffset;
      hash.update(frame.bytes);
      toOffset = header.baseOffset + header.recordCount;
      frameCount++;
      recordCount += header.recordCount;
    }
    return { sha256: hash.digest(), fromOffset: first ?? fromOffset, toOffset, frameCount, recordCount };
  }

  /**
   * The frames holding or following `fromOffset` whose base offset is below `endOffset`, in
   * offset order across segments. With `refuseInside`, a start inside a frame is refused.
   */
  private async *scan(fromOffset: number, endOffset: number, chunkBytes: number, refuseInside: boolean): AsyncGenerator<StoredFrame> {
    let offset = fromOffset;
    let segment = this.segments.find(offset);
    while (segment !== undefined && offset < endOffset) {
      const file = this.segments.files.acquire(segment);
      if (file === undefined) throw compacted(offset, this.segments.first.baseOffset);
      try {
        const stop = segment.dataEnd;
        let position = Math.max(segment.index.positionFor(offset), SEGMENT_HEADER_BYTES);
        let chunk = chunkBytes;
        while (position < stop) {
          // The segment's first frame is read with the header before it.
          const readStart = position === SEGMENT_HEADER_BYTES ? 0 : position;
          const length = Math.min(stop - readStart, chunk);
          const buf = Buffer.allocUnsafe(length);
          const got = await file.read(buf, length, readStart).catch((error: unknown) => {
            throw walErrorFromStorage(error, `reading ${segment!.name} failed`, { segment: segment!.name, position: readStart });
          });
          this.io.reads++;
          this.io.bytesRead += got;
          if (got < position - readStart + 8) throw shortSegment(segment, position, offset);
          let rel = position - readStart;
          while (rel < got) {
            const check = checkFrame(buf, rel, got, segment.frameSeed);
            const size = check.kind === 'ok' ? align8(check.header.length) : check.kind === 'incomplete' ? align8(check.length) : 0;
            if ((check.kind === 'ok' || check.kind === 'incomplete') && rel + size > got && readStart + rel + size <= stop) break;
            if (check.kind !== 'ok') throw frameCorruption(segment, readStart + rel, check, offset - 1);
            const { header } = check;
            // Frames are atomic: one starting below the end (a high watermark + 1) lies wholly below it.
            if (header.baseOffset >= endOffset) return;
            if (header.baseOffset + header.recordCount > offset) {
              if (refuseInside && header.baseOffset < offset) {
                throw invalidArgument('fromOffset', `offset ${offset} is inside a frame (offsets ${header.baseOffset} to ${header.baseOffset + header.recordCount - 1}): start at ${header.baseOffset} or ${header.baseOffset + header.recordCount}`, {
                  value: offset,
                  frameFirstOffset: header.baseOffset,
                  frameNextOffset: header.baseOffset + header.recordCount,
                });
              }
              refuseInside = false;
              const segmentHeader = readStart + rel === SEGMENT_HEADER_BYTES ? buf.subarray(0, SEGMENT_HEADER_BYTES) : undefined;
              offset = header.baseOffset + header.recordCount;
              yield { bytes: buf.subarray(rel, rel + size), header, segment, segmentHeader };
            }
            rel += size;
          }
          // A frame longer than the chunk: read it whole next time.
          if (rel === position - readStart) chunk = Math.max(chunk * 2, align8(buf.readUInt32LE(rel)) + (position === SEGMENT_HEADER_BYTES ? SEGMENT_HEADER_BYTES : 0));
          position = readStart + rel;
        }
      } finally {
        segment.release();
      }
      // Past the last frame: a compacted segment may end with a gap; the next segment starts at its next offset.
      offset = Math.max(offset, segment.nextOffset);
      const next = this.segments.find(offset);
      if (next === segment || (next !== undefined && next.baseOffset < segment.baseOffset)) return;
      // Compaction deleted the segments after this one meanwhile: a scan must not end early as if
      // the log ended there (a hash of part of the range would pass for the range's).
      if (next === undefined && offset < endOffset && offset < this.segments.first.baseOffset) throw compacted(offset, this.segments.first.baseOffset);
      segment = next;
    }
  }
}

function shortSegment(segment: Segment, position: number, offset: number): WalError {
  return new WalError('WAL_CORRUPTION', `segment ${segment.name} ends at byte ${position}, before its last frame`, {
    segment: segment.name,
    position,
    reason: 'segment shorter than its index',
    lastGoodOffset: offset - 1,
  });
}
