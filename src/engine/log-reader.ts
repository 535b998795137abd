import { align8 } from '../codec/align.js';
import { checkFrame, decodeRecords, type FrameCheck, type FrameHeader } from '../codec/frame.js';
import { recordSizeBytes } from '../codec/record-size.js';
import { SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import { WalError } from '../errors.js';
import type { StorageFile } from '../storage/storage.js';
import type { RecentFrames } from './recent-frames.js';
import type { Segment } from './segment.js';
import type { SegmentList } from './segment-list.js';
import { walErrorFromStorage } from './storage-errors.js';
import type { IoStats, WalRecord } from './types.js';

const MIN_CHUNK_BYTES = 16 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;

/** Records read in one go, with their size. */
export interface ReadBatch {
  readonly records: WalRecord[];
  /** The sum of {@link recordSizeBytes} over `records`. */
  readonly sizeBytes: number;
  /**
   * Where the read stopped: the offset after its last record, or further when it stepped over a
   * gap of a compacted segment after it (no record lies between). The start when it found nothing.
   */
  readonly nextOffset: number;
}

/** How far a read has come: the size of what it holds, and whether that reached the limit. */
interface ReadProgress {
  bytes: number;
  isFull: boolean;
  /** Records taken so far against the limit: those in the batch and those skipped ({@link ReadProgress.skipKeylessPuts}). */
  taken: number;
  /** The offset after the last record taken. */
  nextOffset: number;
  /** Whether `PUT`s without a key are left out of the batch (taken, not decoded). */
  readonly skipKeylessPuts: boolean;
}

/** Reads records from segments: index lookup, then chunked reads with every checksum verified. */
export class LogReader {
  constructor(
    private readonly segments: SegmentList,
    private readonly io: IoStats,
    private readonly recent: RecentFrames,
  ) {}

  /**
   * Records from `fromOffset` below `endOffset`: at most `limit` of them, and at most `maxBytes` by
   * {@link recordSizeBytes}, except that one record larger than that is returned alone (a read
   * returns at least one record when one is available). Gaps of compacted segments are stepped
   * over: a read from an offset inside one starts at the next record after it.
   *
   * With `skipKeylessPuts`, `PUT` records without a key are left out (no object is made for them)
   * but count against `limit` as if they were there, and `nextOffset` covers them: for a consumer
   * to which such records change nothing (the key-value view). The batch may then hold no record
   * although `nextOffset` moved.
   *
   * Throws `WAL_OFFSET_COMPACTED` when a segment it needs was deleted, `WAL_CORRUPTION` when a
   * frame does not check out, `WAL_IO_ERROR` when a file cannot be opened or read.
   */
  async read(fromOffset: number, endOffset: number, limit: number, maxBytes: number, skipKeylessPuts = false): Promise<ReadBatch> {
    const out: WalRecord[] = [];
    const progress: ReadProgress = { bytes: 0, isFull: false, taken: 0, nextOffset: fromOffset, skipKeylessPuts };
    let offset = fromOffset;
    while (progress.taken < limit && offset < endOffset && !progress.isFull) {
      const segment = this.segments.find(offset);
      const recent = this.recent.indexOf(offset, segment);
      if (recent >= 0) {
        const next = this.readRecent(recent, segment!, offset, endOffset, limit, maxBytes, progress, out);
        if (next > offset || progress.isFull) {
          offset = next;
          continue;
        }
      }
      const file = segment === undefined ? undefined : this.segments.files.acquire(segment);
      if (segment === undefined || file === undefined) throw compacted(offset, this.segments.first.baseOffset);
      try {
        const before = progress.taken;
        const isExhausted = await this.readSegment(segment, file, offset, endOffset, limit, maxBytes, progress, out);
        if (progress.taken > before) offset = progress.nextOffset;
        // Past the last frame of a compacted (sealed) segment only a gap is left: go on after it.
        // The active segment has no gaps, and its end may move: there the read ends.
        if (isExhausted && segment.hasGaps) offset = Math.max(offset, Math.min(segment.nextOffset, endOffset));
        else if (progress.taken === before) break;
      } finally {
        segment.release();
      }
    }
    return { records: out, sizeBytes: progress.bytes, nextOffset: offset };
  }

  /**
   * The first offset below `endOffset` whose timestamp is at or after `timestampMs`, or `endOffset`
   * when there is none. A segment deleted by compaction meanwhile is skipped: the search goes on in
   * what is still retained.
   */
  async offsetForTimestamp(timestampMs: number, endOffset: number): Promise<number> {
    for (;;) {
      const segment = this.segments.findByTimestamp(timestampMs);
      if (segment === undefined) return endOffset;
      const file = this.segments.files.acquire(segment);
      if (file === undefined) {
        // Compaction takes a segment out of the list as it deletes it: search again. One still in
        // the list is closed with the log.
        if (this.segments.includes(segment)) throw compacted(segment.baseOffset, segment.baseOffset);
        continue;
      }
      let found: number;
      try {
        found = await this.scanForTimestamp(segment, file, timestampMs);
      } finally {
        segment.release();
      }
      // Compaction may have removed the offset found meanwhile; every later record is as late, so
      // the first one still retained is the answer then.
      return Math.min(Math.max(found, this.segments.first.baseOffset), endOffset);
    }
  }

  /** Scans `segment` from its time index entry for the first frame stamped `timestampMs` or later. */
  private async scanForTimestamp(segment: Segment, file: StorageFile, timestampMs: number): Promise<number> {
    let position = segment.index.positionForTimestamp(timestampMs);
    if (position < 0) position = SEGMENT_HEADER_BYTES;
    let chunkBytes = MIN_CHUNK_BYTES * 4;
    while (position < segment.dataEnd) {
      const length = Math.min(segment.dataEnd - position, chunkBytes);
      const buf = Buffer.allocUnsafe(length);
      const got = await file.read(buf, length, position).catch((error: unknown) => {
        throw walErrorFromStorage(error, `reading ${segment.name} failed`, { segment: segment.name, position });
      });
      this.io.reads++;
      this.io.bytesRead += got;
      let rel = 0;
      for (;;) {
        const check = checkFrame(buf, rel, got, segment.frameSeed);
        if (check.kind === 'incomplete' && position + rel + check.length <= segment.dataEnd) break;
        if (check.kind !== 'ok') throw frameCorruption(segment, position + rel, check, segment.baseOffset - 1);
        if (check.header.timestamp >= timestampMs) return check.header.baseOffset;
        rel += align8(check.header.length);
        if (rel >= got) break;
      }
      // A frame longer than the chunk: read the whole frame next time.
      if (rel === 0) chunkBytes = Math.max(chunkBytes, align8(buf.readUInt32LE(0)));
      position += rel;
    }
    return segment.nextOffset;
  }

  /**
   * Reads records of `segment` into `out` from the recent frames, from the one at index `i` (which
   * holds `fromOffset`), as {@link readSegment} would from the file; returns the offset reached.
   */
  private readRecent(i: number, segment: Segment, fromOffset: number, endOffset: number, limit: number, maxBytes: number, progress: ReadProgress, out: WalRecord[]): number {
    let offset = fromOffset;
    for (let frame = this.recent.at(i); frame?.segment === segment && progress.taken < limit && offset < endOffset; frame = this.recent.at(++i)) {
      const header = frame.header;
      if (header.baseOffset >= endOffset) break;
      offset = takeRecords(frame.bytes, 0, header, offset, limit, maxBytes, progress, out, segment, frame.position);
      if (progress.isFull || offset < header.baseOffset + header.recordCount) break;
    }
    return offset;
  }

  /** Reads records of `segment` into `out`; true when nothing more below `endOffset` is there (it read to the segment's end). */
  private async readSegment(
    segment: Segment,
    file: StorageFile,
    fromOffset: number,
    endOffset: number,
    limit: number,
    maxBytes: number,
    progress: ReadProgress,
    out: WalRecord[],
  ): Promise<boolean> {
    const stop = segment.dataEnd;
    let position = segment.index.positionFor(fromOffset);
    if (position < 0) position = SEGMENT_HEADER_BYTES;
    let offset = fromOffset;
    // Size the read from the segment's average record: enough for `limit` records plus the stretch
    // from the index entry to `fromOffset`, so a page of records is one read and little is re-read.
    const bytesPerRecord = segment.recordCount > 0 ? (segment.dataEnd - SEGMENT_HEADER_BYTES) / segment.recordCount : 256;
    const wanted = Math.min(bytesPerRecord * Math.min(limit, endOffset - fromOffset), maxBytes + bytesPerRecord);
    let chunkBytes = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, Math.ceil(wanted * 1.1) + 8192));
    while (position < stop && progress.taken < limit && offset < endOffset && !progress.isFull) {
      const length = Math.min(stop - position, chunkBytes);
      const buf = Buffer.allocUnsafe(length);
      const got = await file.read(buf, length, position).catch((error: unknown) => {
        throw walErrorFromStorage(error, `reading ${segment.name} failed`, { segment: segment.name, position });
      });
      if (got === 0) {
        throw new WalError('WAL_CORRUPTION', `segment ${segment.name} ends at byte ${position}, before its last frame`, {
          segment: segment.name,
          position,
          reason: 'segment shorter than its index',
          lastGoodOffset: offset - 1,
        });
      }
      this.io.reads++;
      this.io.bytesRead += got;
      let rel = 0;
      while (rel < got && progress.taken < limit && !progress.isFull) {
        const check = checkFrame(buf, rel, got, segment.frameSeed);
        if (check.kind === 'incomplete' && position + rel + check.length <= stop) break;
        if (check.kind !== 'ok') throw frameCorruption(segment, position + rel, check, offset - 1);
        const header = check.header;
        // Nothing below the end is left here; in a compacted segment that is as good as its end.
        if (header.baseOffset >= endOffset) return segment.hasGaps;
        if (header.baseOffset + header.recordCount > offset) {
          offset = takeRecords(buf, rel, header, offset, limit, maxBytes, progress, out, segment, position + rel);
          // Stopped by the budget, or inside the frame by `limit`: its other records are still to be read.
          if (progress.isFull || offset < header.baseOffset + header.recordCount) return false;
        }
        rel += align8(header.length);
      }
      if (rel === 0) chunkBytes = Math.max(chunkBytes * 2, align8(buf.readUInt32LE(0)));
      position += rel;
    }
    return position >= stop;
  }
}

/**
 * Decodes the records of a checked frame at `buf[rel..]` from `offset` into `out`, within `limit`
 * (records taken, skipped ones included) and the byte budget of `maxBytes` (one record larger than
 * the budget comes alone). Returns the offset after the last record taken; sets `progress.isFull`
 * when the budget is reached. `position`: where the frame lies in `segment`, for the error of a
 * frame that does not decode.
 */
function takeRecords(buf: Buffer, rel: number, header: FrameHeader, offset: number, limit: number, maxBytes: number, progress: ReadProgress, out: WalRecord[], segment: Segment, position: number): number {
  const start = out.length;
  const first = Math.max(offset, header.baseOffset);
  const result = decodeRecords(buf, rel, header, offset, limit - progress.taken, out, progress.skipKeylessPuts);
  if (typeof result === 'string') {
    throw new WalError('WAL_CORRUPTION', `undecodable frame in segment ${segment.name} at byte ${position} (${result})`, {
      segment: segment.name,
      position,
      reason: result,
      lastGoodOffset: offset - 1,
    });
  }
  // The records taken are consecutive from `first`; those in `out` are all of them, or (skipping
  // keyless PUTs) some of them.
  let next = first + result;
  for (let k = start; k < out.length; k++) {
    const size = recordSizeBytes(out[k]!);
    if (progress.bytes + size > maxBytes && k > 0) {
      next = out[k]!.offset;
      out.length = k;
      progress.isFull = true;
      break;
    }
    progress.bytes += size;
    if (progress.bytes >= maxBytes) {
      next = out[k]!.offset + 1;
      out.length = k + 1;
      progress.isFull = true;
      break;
    }
  }
  progress.taken += next - first;
  if (next > first) progress.nextOffset = next;
  return next > first ? next : offset;
}

/** The `WAL_CORRUPTION` of a frame that fails its check at `position` of `segment` (reads of records and of raw frames). */
export function frameCorruption(segment: Segment, position: number, check: Exclude<FrameCheck, { kind: 'ok' }>, lastGoodOffset: number): WalError {
  const reason = check.kind === 'invalid' ? check.reason : check.kind === 'zero' ? 'zeros inside the log' : 'frame runs past the end';
  return new WalError('WAL_CORRUPTION', `corruption in segment ${segment.name} at byte ${position} (${reason})`, {
    segment: segment.name,
    position,
    reason,
    lastGoodOffset,
  });
}

/** The `WAL_OFFSET_COMPACTED` of a read from `offset` below the first retained offset. */
export function compacted(offset: number, firstOffset: number): WalError {
  return new WalError('WAL_OFFSET_COMPACTED', `offset ${offset} is below the first retained offset ${firstOffset}`, {
    fromOffset: offset,
    firstOffset,
  });
}
