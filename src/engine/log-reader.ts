import { align8 } from '../codec/align.js';
import { checkFrame, decodeRecords, recordDataBytes, type DecodedRecord, type FrameHeader } from '../codec/frame.js';
import { RecordCursor } from '../codec/record-cursor.js';
import { SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import { WalError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { IoCounters } from './io-counters.js';
import type { Segment } from './segment.js';
import { walErrorFromStorage } from './storage-errors.js';

const MIN_CHUNK_BYTES = 16 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;
/** What a record costs a response beyond its bytes in the frame (protobuf framing, a guess on the high side). */
const RESPONSE_OVERHEAD_BYTES = 48;

/**
 * Records `count` records of a checked frame, from offset `first`, left in the frame's buffer: for
 * transports that copy records out of frames without decoding them into objects.
 */
export interface FrameSlice {
  readonly buffer: Buffer;
  /** Where the frame starts in `buffer`. */
  readonly position: number;
  readonly header: FrameHeader;
  /** First offset of the slice (records of the frame before it are not part of it). */
  readonly first: number;
  readonly count: number;
}

/**
 * Sees each frame that holds offsets from `fromOffset` on, in order; returns how many of its records
 * it took (from `fromOffset`), and `false` in `more` to stop.
 */
type FrameVisitor = (buffer: Buffer, position: number, header: FrameHeader, fromOffset: number, segment: Segment, bytePosition: number) => { taken: number; more: boolean };

/** Reads records from segments: index lookup, then chunked reads with every checksum verified. */
export class LogReader {
  private readonly cursor = new RecordCursor();

  constructor(
    private readonly storage: Storage,
    private readonly segments: readonly Segment[],
    private readonly io: IoCounters,
  ) {}

  /** The segment holding `offset`, or undefined when no retained segment does. */
  segmentFor(offset: number): Segment | undefined {
    const segments = this.segments;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = segments[mid]!;
      if (offset < s.baseOffset) hi = mid - 1;
      else if (offset >= s.nextOffset && mid < segments.length - 1) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /**
   * Records from `fromOffset` below `endOffset`, at most `limit` of them and about `maxBytes` of
   * keys and values (always at least one record when one is available).
   *
   * Throws `WAL_OFFSET_COMPACTED` when a segment it needs was deleted, `WAL_CORRUPTION` when a
   * frame does not check out.
   */
  async read(fromOffset: number, endOffset: number, limit: number, maxBytes: number): Promise<DecodedRecord[]> {
    const out: DecodedRecord[] = [];
    let bytes = 0;
    await this.visit(fromOffset, endOffset, limit, maxBytes, (buffer, position, header, offset, segment, bytePosition) => {
      const start = out.length;
      const result = decodeRecords(buffer, position, header, offset, limit - out.length, out);
      if (typeof result === 'string') throw undecodable(segment, bytePosition, result, offset);
      for (let k = start; k < out.length; k++) {
        const size = recordDataBytes(out[k]!);
        if (bytes + size > maxBytes && k > 0) {
          out.length = k;
          return { taken: k - start, more: false };
        }
        bytes += size;
      }
      return { taken: out.length - start, more: out.length < limit && bytes < maxBytes };
    });
    return out;
  }

  /**
   * Like {@link read}, but returns the records as slices of their frames, undecoded. `maxBytes`
   * bounds the records' size in a response (frame bytes plus framing), at least one record.
   */
  async readFrames(fromOffset: number, endOffset: number, limit: number, maxBytes: number): Promise<FrameSlice[]> {
    const slices: FrameSlice[] = [];
    let taken = 0;
    let bytes = 0;
    const cursor = this.cursor;
    await this.visit(fromOffset, endOffset, limit, maxBytes, (buffer, position, header, offset, segment, bytePosition) => {
      const frameEnd = Math.min(header.baseOffset + header.recordCount, endOffset);
      let count = Math.min(frameEnd - offset, limit - taken);
      const wholeFrameBytes = header.length + header.recordCount * RESPONSE_OVERHEAD_BYTES;
      let full = taken + count >= limit;
      if (bytes + wholeFrameBytes > maxBytes) {
        // Near the budget: measure record by record.
        count = 0;
        cursor.reset(buffer, position, header);
        while (cursor.next() && cursor.offset < offset + Math.min(frameEnd - offset, limit - taken)) {
          if (cursor.offset < offset) continue;
          const size = cursor.recordEnd - cursor.keyStart + RESPONSE_OVERHEAD_BYTES;
          if (bytes + size > maxBytes && taken + count > 0) {
            full = true;
            break;
          }
          bytes += size;
          count++;
        }
        if (cursor.error !== undefined) throw undecodable(segment, bytePosition, cursor.error, offset);
      } else {
        bytes += wholeFrameBytes;
      }
      if (count > 0) slices.push({ buffer, position, header, first: offset, count });
      taken += count;
      return { taken: count, more: !full && count > 0 };
    });
    return slices;
  }

  /** Walks the frames from `fromOffset` below `endOffset` across segments, handing each to `visitor`. */
  private async visit(fromOffset: number, endOffset: number, limit: number, maxBytes: number, visitor: FrameVisitor): Promise<void> {
    let offset = fromOffset;
    while (offset < endOffset) {
      const segment = this.segmentFor(offset);
      if (segment === undefined || !segment.acquire()) throw compacted(offset, this.segments[0]?.baseOffset ?? offset);
      try {
        const { next, more } = await this.visitSegment(segment, offset, endOffset, limit, maxBytes, visitor);
        if (!more || next === offset) return;
        offset = next;
      } finally {
        segment.release();
      }
    }
  }

  private async visitSegment(
    segment: Segment,
    fromOffset: number,
    endOffset: number,
    limit: number,
    maxBytes: number,
    visitor: FrameVisitor,
  ): Promise<{ next: number; more: boolean }> {
    const file = segment.fileFor(this.storage);
    const stop = segment.dataEnd;
    let position = segment.index.positionFor(fromOffset);
    if (position < 0) position = SEGMENT_HEADER_BYTES;
    let offset = fromOffset;
    // Size the read from the segment's average record: enough for `limit` records plus the stretch
    // from the index entry to `fromOffset`, so a page of records is one read and little is re-read.
    const bytesPerRecord = segment.recordCount > 0 ? (segment.dataEnd - SEGMENT_HEADER_BYTES) / segment.recordCount : 256;
    const wanted = Math.min(bytesPerRecord * Math.min(limit, endOffset - fromOffset), maxBytes + bytesPerRecord);
    let chunkBytes = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, Math.ceil(wanted * 1.1) + 8192));
    while (position < stop && offset < endOffset) {
      const length = Math.min(stop - position, chunkBytes);
      const buf = Buffer.allocUnsafe(length);
      const got = await file.read(buf, length, position).catch((error: unknown) => {
        throw walErrorFromStorage(error, `reading ${segment.name} failed`, { segment: segment.name, position });
      });
      if (got === 0) throw corruptAt(segment, position, 'segment shorter than its index', offset);
      this.io.reads++;
      this.io.bytesRead += got;
      let rel = 0;
      while (rel < got) {
        const check = checkFrame(buf, rel, got);
        if (check.kind === 'incomplete' && position + rel + check.length <= stop) break;
        if (check.kind !== 'ok') {
          const reason = check.kind === 'invalid' ? check.reason : check.kind === 'zero' ? 'zeros inside the log' : 'frame runs past the end';
          throw corruptAt(segment, position + rel, reason, offset);
        }
        const header = check.header;
        if (header.baseOffset >= endOffset) return { next: offset, more: false };
        if (header.baseOffset + header.recordCount > offset) {
          const { taken, more } = visitor(buf, rel, header, offset, segment, position + rel);
          offset += taken;
          if (!more) return { next: offset, more: false };
        }
        rel += align8(header.length);
      }
      if (rel === 0) chunkBytes = Math.max(chunkBytes * 2, align8(buf.readUInt32LE(0)));
      position += rel;
    }
    return { next: offset, more: true };
  }
}

function corruptAt(segment: Segment, position: number, reason: string, offset: number): WalError {
  return new WalError('WAL_CORRUPTION', `corruption in segment ${segment.name} at byte ${position} (${reason})`, {
    segment: segment.name,
    position,
    reason,
    lastGoodOffset: offset - 1,
  });
}

function undecodable(segment: Segment, position: number, reason: string, offset: number): WalError {
  return new WalError('WAL_CORRUPTION', `undecodable frame in segment ${segment.name} at byte ${position} (${reason})`, {
    segment: segment.name,
    position,
    reason,
    lastGoodOffset: offset - 1,
  });
}

function compacted(offset: number, firstOffset: number): WalError {
  return new WalError('WAL_OFFSET_COMPACTED', `offset ${offset} is below the first retained offset ${firstOffset}`, {
    fromOffset: offset,
    firstOffset,
  });
}
