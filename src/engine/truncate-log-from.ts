import { join } from 'node:path';
import { align8 } from '../codec/align.js';
import { checkFrame, type FrameHeader } from '../codec/frame.js';
import { decodeIndexFile, encodeIndexFile } from '../codec/index-file.js';
import { decodeRecoveryPoint, encodeRecoveryPoint, RECOVERY_POINT_FILE_BYTES, RECOVERY_POINT_SLOTS } from '../codec/recovery-point-file.js';
import { decodeSegmentHeader, encodeSegmentHeader, SEGMENT_HEADER_BYTES, type SegmentHeader } from '../codec/segment-header.js';
import { invalidArgument, WalError } from '../errors.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { Storage } from '../storage/storage.js';
import { lockDataDir } from './data-dir-lock.js';
import { cutEpochHistory } from './epoch-history.js';
import { CLEAN_MARKER_FILE, indexFileName, parseSegmentFileName, PRODUCERS_FILE, RECOVERY_POINT_FILE, TEMP_SUFFIX } from './segment-name.js';
import { walErrorFromStorage } from './storage-errors.js';

/** The folder of a data directory that keeps what {@link truncateLogFrom} removed. */
export const TRUNCATED_DIR = 'truncated';

/** What {@link truncateLogFrom} did. */
export interface LogTruncation {
  /** Records removed: the log's old next offset minus the offset cut at. */
  readonly removedRecords: number;
  /** The side file holding the removed frames (`truncated/<offset>.<time>.frames`, relative to the data directory); undefined when none was removed. */
  readonly sideFile: string | undefined;
}

/** One segment file read whole: its header, its frames, where they end. */
interface ScannedSegment {
  readonly name: string;
  readonly header: SegmentHeader;
  readonly bytes: Buffer;
  readonly frames: readonly { readonly position: number; readonly header: FrameHeader; readonly size: number }[];
  readonly dataEnd: number;
  /** The offset after its last record (a compacted segment's header next offset). */
  readonly nextOffset: number;
}

/**
 * Removes every record at or after `offset` from the closed log in `dir` (a follower's divergent
 * tail, before it takes its leader's frames from `offset`), crash-safely and keeping what it
 * removes: the removed frames (as stored, in offset order, without segment headers) are first
 * written durably to a side file `truncated/<offset>.<time>.frames`; then the recovery point is
 * lowered to `offset`, the producer table (`PRODUCERS`) rid of appends at or after it, the
 * `CLEAN` marker and the cut segment's index removed, the later segments deleted (the last
 * first, so the log never has a hole), the segment holding `offset` truncated there, and last the
 * epoch history cut: every entry starting at or after `offset` goes (their frames are gone, and
 * the next frame at `offset` brings its own epoch). Each step is durable before the next (fsync of
 * the file and of the directory); after a crash part way the log opens as a prefix of the old
 * one at least `offset` long, and running the call again finishes the cut.
 *
 * Snapshots are not the engine's: a caller with a key-value view must set aside snapshots taken
 * above `offset` itself (their state holds removed records).
 *
 * `offset` must be a frame boundary (a frame's base offset, or the log's next offset: then only
 * the epoch history is cut) not below the first retained offset. Holds the directory lock while
 * it works (`WAL_LOCKED` if a log is open on it).
 *
 * Throws `WalError` `WAL_INVALID_ARGUMENT` (field `offset`) inside a frame or inside a segment
 * rewritten by key compaction, `WAL_OFFSET_COMPACTED` below the first retained offset,
 * `WAL_OFFSET_OUT_OF_RANGE` beyond the next offset, `WAL_CORRUPTION` for a segment that does not
 * check out, `WAL_LOCKED`, `WAL_IO_ERROR` / `WAL_NO_SPACE`; `RangeError` for a malformed offset.
 */
export function truncateLogFrom(storage: Storage, dir: string, offset: number, options: { readonly clock?: () => number } = {}): LogTruncation {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be a non-negative integer, got ${String(offset)}`);
  const lock = lockDataDir(storage, dir, `cannot truncate the log in ${dir}`);
  try {
    return truncate(storage, dir, offset, (options.clock ?? Date.now)());
  } catch (error) {
    throw error instanceof WalError || error instanceof RangeError ? error : walErrorFromStorage(error, `truncating the log in ${dir} failed part way (run it again to finish)`, { dir });
  } finally {
    lock.release();
  }
}

function truncate(storage: Storage, dir: string, offset: number, nowMs: number): LogTruncation {
  const names = storage.list(dir);
  const segmentNames = names.filter((name) => parseSegmentFileName(name) !== undefined).sort();
  const bases = segmentNames.map((name) => parseSegmentFileName(name)!);
  if (bases.length === 0 || offset < bases[0]!) {
    throw new WalError('WAL_OFFSET_COMPACTED', `offset ${offset} is below the first retained offset ${bases[0] ?? 0}`, { offset, firstOffset: bases[0] ?? 0 });
  }
  // The segment holding `offset`: a segment starting exactly there goes whole (the one before ends there).
  let holderIndex = bases.findLastIndex((base) => base <= offset);
  if (bases[holderIndex] === offset && holderIndex > 0) holderIndex--;
  const holder = scanSegment(storage, dir, segmentNames[holderIndex]!);
  const later = segmentNames.slice(holderIndex + 1).map((name) => scanSegment(storage, dir, name));
  const logEnd = (later.at(-1) ?? holder).nextOffset;
  if (offset > logEnd) throw new WalError('WAL_OFFSET_OUT_OF_RANGE', `offset ${offset} is beyond the end of the log (next offset ${logEnd})`, { offset, nextOffset: logEnd });
  const cutPosition = cutPositionOf(holder, offset);
  const removed = [...holder.frames.filter((frame) => frame.position >= cutPosition).map((frame) => holder.bytes.subarray(frame.position, frame.position + frame.size))];
  for (const segment of later) for (const frame of segment.frames) removed.push(segment.bytes.subarray(frame.position, frame.position + frame.size));

  let sideFile: string | undefined;
  if (removed.length > 0) {
    const sideDir = join(dir, TRUNCATED_DIR);
    if (!storage.exists(sideDir)) {
      storage.mkdirp(sideDir);
      storage.syncDir(dir);
    }
    const stamp = new Date(nowMs).toISOString().replace(/[-:.]/g, '');
    let name = `${String(offset).padStart(20, '0')}.${stamp}.frames`;
    for (let n = 1; storage.exists(join(sideDir, name)); n++) name = `${String(offset).padStart(20, '0')}.${stamp}.${n}.frames`;
    writeFileDurably(storage, join(sideDir, name), join(sideDir, name + TEMP_SUFFIX), Buffer.concat(removed));
    sideFile = join(TRUNCATED_DIR, name);
  }

  // A recovery point above the cut would make the shorter log read as one that lost durable records.
  const recoveryPath = join(dir, RECOVERY_POINT_FILE);
  const point = names.includes(RECOVERY_POINT_FILE) ? decodeRecoveryPoint(storage.readFile(recoveryPath)) : undefined;
  if (point !== undefined && point.durableNext > offset) {
    const lowered = { sequence: point.sequence + 1, durableNext: offset };
    const file = Buffer.alloc(RECOVERY_POINT_FILE_BYTES);
    encodeRecoveryPoint(lowered).copy(file, RECOVERY_POINT_SLOTS[lowered.sequence % 2]!);
    writeFileDurably(storage, recoveryPath, recoveryPath + TEMP_SUFFIX, file);
  }
  const producersPath = join(dir, PRODUCERS_FILE);
  const producers = names.includes(PRODUCERS_FILE) ? decodeIndexFile(storage.readFile(producersPath)) : undefined;
  if (producers?.ok === true && producers.index.nextOffset > offset) {
    const kept = producers.index.producers.filter((producer) => producer.lastOffset < offset);
    writeFileDurably(storage, producersPath, producersPath + TEMP_SUFFIX, encodeIndexFile({ ...producers.index, nextOffset: offset, producers: kept }));
  }
  if (removed.length > 0 || isCompactedStart(holder, offset)) {
    if (storage.exists(join(dir, CLEAN_MARKER_FILE))) storage.unlink(join(dir, CLEAN_MARKER_FILE));
    // The cut segment is the last one now: the next open scans it, and rebuilds the producers from it.
    const holderIndexFile = join(dir, indexFileName(holder.header.baseOffset));
    if (storage.exists(holderIndexFile)) storage.unlink(holderIndexFile);
    storage.syncDir(dir);
    for (const segment of [...later].reverse()) {
      const indexFile = join(dir, indexFileName(segment.header.baseOffset));
      if (storage.exists(indexFile)) storage.unlink(indexFile);
      storage.unlink(join(dir, segment.name));
      storage.syncDir(dir);
    }
    if (isCompactedStart(holder, offset)) {
      // Cut at the start of a key-compacted segment: nothing of the rewrite stays, and neither may
      // its header's end (the log would go on there, not at `offset`). The segment is replaced,
      // atomically, by its header without the compacted end.
      replaceWithPlainHeader(storage, join(dir, holder.name), holder.header);
    } else {
      const file = storage.open(join(dir, holder.name), 'read-write');
      try {
        file.truncate(cutPosition);
        file.sync();
      } finally {
        file.close();
      }
    }
    storage.syncDir(dir);
  }
  cutEpochHistory(storage, dir, offset);
  return { removedRecords: logEnd - offset, sideFile };
}

/** Where `segment` is cut for the log to end before `offset`: the start of the frame at `offset`, or its data end. */
function cutPositionOf(segment: ScannedSegment, offset: number): number {
  const { compactedNextOffset, baseOffset } = segment.header;
  if (compactedNextOffset !== undefined && offset !== compactedNextOffset && offset !== baseOffset) {
    throw invalidArgument('offset', `offset ${offset} is inside ${segment.name}, which key compaction rewrote: cut at its start ${baseOffset} or its end ${compactedNextOffset}`, {
      value: offset,
      segment: segment.name,
    });
  }
  if (offset === segment.nextOffset) return segment.dataEnd;
  for (const frame of segment.frames) {
    const { baseOffset: base, recordCount } = frame.header;
    if (base === offset) return frame.position;
    if (base < offset && offset < base + recordCount) {
      throw invalidArgument('offset', `offset ${offset} is inside a frame (offsets ${base} to ${base + recordCount - 1}): cut at ${base} or ${base + recordCount}`, {
        value: offset,
        frameFirstOffset: base,
        frameNextOffset: base + recordCount,
      });
    }
  }
  return segment.frames[0]?.position ?? SEGMENT_HEADER_BYTES;
}

/** Reads a segment file whole and walks its frames (a closed log: damage anywhere is corruption). */
function scanSegment(storage: Storage, dir: string, name: string): ScannedSegment {
  const file = storage.open(join(dir, name), 'read');
  let bytes: Buffer;
  try {
    bytes = Buffer.alloc(file.size());
    for (let got = 0; got < bytes.length; ) {
      const n = file.readSync(bytes.subarray(got), bytes.length - got, got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    file.close();
  }
  const decoded = decodeSegmentHeader(bytes);
  if (!decoded.ok) throw new WalError('WAL_CORRUPTION', `segment ${name}: ${decoded.reason}`, { segment: name, position: 0, reason: decoded.reason });
  const header = decoded.header;
  const frames: { position: number; header: FrameHeader; size: number }[] = [];
  let position = SEGMENT_HEADER_BYTES;
  let nextOffset = header.baseOffset;
  for (;;) {
    const check = checkFrame(bytes, position, bytes.length, header.frameSeed);
    if (check.kind === 'zero') break;
    if (check.kind !== 'ok') {
      const reason = check.kind === 'invalid' ? check.reason : 'frame runs past the end of the file';
      throw new WalError('WAL_CORRUPTION', `corruption in segment ${name} at byte ${position} (${reason}); open the log once to recover it`, { segment: name, position, reason });
    }
    const size = align8(check.header.length);
    frames.push({ position, header: check.header, size });
    nextOffset = check.header.baseOffset + check.header.recordCount;
    position += size;
  }
  return { name, header, bytes, frames, dataEnd: position, nextOffset: Math.max(nextOffset, header.compactedNextOffset ?? 0) };
}

/** True when a cut at `offset` removes every record of `segment`, a key-compacted one. */
function isCompactedStart(segment: { readonly header: SegmentHeader }, offset: number): boolean {
  return segment.header.compactedNextOffset !== undefined && offset === segment.header.baseOffset;
}

/**
 * Replaces the segment file at `path` by `header` without its compacted end (temp -> fdatasync ->
 * rename -> directory fsync): an empty segment of the same base offset, id and frame seed. Shared
 * by the follower's cut and `wald repair`.
 */
export function replaceWithPlainHeader(storage: Storage, path: string, header: SegmentHeader): void {
  writeFileDurably(storage, path, path + TEMP_SUFFIX, encodeSegmentHeader({ ...header, compactedNextOffset: undefined }));
}
