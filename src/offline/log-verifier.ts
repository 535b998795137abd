import { join } from 'node:path';
import { decodeCleanMarker } from '../codec/clean-marker.js';
import { decodeEpochHistory } from '../codec/epoch-history-file.js';
import { decodeIndexFile } from '../codec/index-file.js';
import { decodeRecoveryPoint } from '../codec/recovery-point-file.js';
import {
  CLEAN_MARKER_FILE,
  EPOCHS_FILE,
  indexFileName,
  parseSegmentFileName,
  PREALLOCATED_FILE,
  PRODUCERS_FILE,
  RECOVERY_POINT_FILE,
  TEMP_SUFFIX,
} from '../engine/segment-name.js';
import { StorageError, type Storage } from '../storage/storage.js';
import { checkIndex } from './index-check.js';
import type { LogFault } from './log-fault.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import { readWholeFile, sizeOrZero } from './read-whole-file.js';
import { scanSegment, type ScanContext, type SegmentScan } from './segment-scan.js';

/** One segment as `wald verify` found it. */
export interface SegmentSummary {
  readonly name: string;
  readonly baseOffset: number;
  /** The offset after the last record of its last valid frame (damage before it is a fault). */
  readonly nextOffset: number;
  readonly recordCount: number;
  readonly frameCount: number;
  readonly fileSizeBytes: number;
  /** Byte position just past the last whole frame of the unbroken run of frames from its start. */
  readonly dataEndBytes: number;
  /** Segment format version (undefined: the header does not check out). */
  readonly formatVersion: number | undefined;
  /** Its index file: `checked` (and good), `damaged` (a fault), or `missing`. */
  readonly index: 'checked' | 'damaged' | 'missing';
}

/** What {@link verifyLog} found. */
export interface LogVerification {
  readonly segments: SegmentSummary[];
  /** Records in valid frames, in every segment. */
  readonly recordCount: number;
  /** The first retained offset (the first segment's base; 0 for a log without segments). */
  readonly firstOffset: number;
  /** The offset after the last record of the last valid frame of the log. */
  readonly nextOffset: number;
  readonly indexFilesChecked: number;
  /** How far the recovery point says the log was durable, if a recovery point is there. */
  readonly recoveryPoint: number | undefined;
  /** A clean-shutdown marker is there and matches the last segment. */
  readonly isCleanlyClosed: boolean;
  readonly faults: LogFault[];
  /** Things recovery handles itself: debris of a crash, side files of earlier cuts, missing indexes. */
  readonly notes: string[];
}

/** How {@link verifyLog} reads. */
export interface VerifyLogOptions {
  readonly progress?: Progress | undefined;
  /**
   * The log may be open in a server (read without its lock): a segment that vanishes was
   * compacted away (a note), and the end of the last segment is read twice before it is called
   * a torn tail, since a frame may have been half written when it was read.
   */
  readonly isLive?: boolean | undefined;
}

/** A segment file read and scanned, with where each of its frames starts. */
interface ReadSegment {
  readonly scan: SegmentScan;
  readonly frames: Map<number, { baseOffset: number; timestamp: number }>;
}

/** Reads and scans one segment; undefined when `isLive` and the file is gone. */
async function readAndScan(storage: Storage, path: string, name: string, base: number, context: ScanContext, progress: Progress, isLive: boolean): Promise<ReadSegment | undefined> {
  let buf: Buffer;
  try {
    buf = await readWholeFile(storage, path, (bytes) => progress.advance(bytes));
  } catch (error) {
    if (isLive && error instanceof StorageError && error.code === 'ENOENT') return undefined;
    throw error;
  }
  const frames = new Map<number, { baseOffset: number; timestamp: number }>();
  const scan = scanSegment(buf, name, base, context, (frame) => {
    frames.set(frame.position, { baseOffset: frame.header.baseOffset, timestamp: frame.header.timestamp });
    return true;
  });
  return { scan, frames };
}

/** True when two scans of one file end alike: the same run of frames, the same damage. */
function isSameEnd(a: SegmentScan, b: SegmentScan): boolean {
  return a.dataEnd === b.dataEnd && a.endOffset === b.endOffset && JSON.stringify(a.faults) === JSON.stringify(b.faults);
}

/**
 * Checks every segment of the log in `dir` frame by frame (with the codec, independently of
 * recovery, so nothing is cut or rebuilt), every index file against its segment, the continuity of
 * the segments, and the `CLEAN`, `PRODUCERS` and `RECOVERY` files. Damage is classified as
 * recovery would classify it at open (torn tail or corruption). Throws `StorageError` only when a
 * file cannot be read at all; reports the bytes read to `progress`.
 */
export async function verifyLog(storage: Storage, dir: string, options: VerifyLogOptions = {}): Promise<LogVerification> {
  const progress = options.progress ?? NO_PROGRESS;
  const names = storage.list(dir).sort();
  const faults: LogFault[] = [];
  const notes: string[] = [];
  const recoveryBytes = names.includes(RECOVERY_POINT_FILE) ? storage.readFile(join(dir, RECOVERY_POINT_FILE)) : undefined;
  const recoveryPoint = recoveryBytes === undefined ? undefined : decodeRecoveryPoint(recoveryBytes);
  if (recoveryBytes !== undefined && recoveryPoint === undefined && recoveryBytes.some((b) => b !== 0)) {
    faults.push({ kind: 'file', file: RECOVERY_POINT_FILE, position: 0, reason: 'no slot of the recovery point checks out' });
  }
  const epochs = names.includes(EPOCHS_FILE) ? decodeEpochHistory(storage.readFile(join(dir, EPOCHS_FILE))) : undefined;
  if (epochs?.ok === false) faults.push({ kind: 'file', file: EPOCHS_FILE, position: 0, reason: `the epoch history does not check out (${epochs.reason})` });
  const trustsFrameClaims = epochs?.ok !== true || !epochs.file.isReplicated;
  // Names sort in offset order (20 digits).
  const segmentNames = names.filter((name) => parseSegmentFileName(name) !== undefined);
  let totalBytes = 0;
  for (const name of segmentNames) totalBytes += sizeOrZero(storage, join(dir, name));
  progress.addTotal(totalBytes);

  const segments: SegmentSummary[] = [];
  let recordCount = 0;
  let indexFilesChecked = 0;
  let previous: SegmentSummary | undefined;
  for (let i = 0; i < segmentNames.length; i++) {
    const name = segmentNames[i]!;
    const base = parseSegmentFileName(name)!;
    const isLast = i === segmentNames.length - 1;
    const context = { isLast, durableBefore: recoveryPoint?.durableNext ?? 0, hasRecoveryPoint: recoveryPoint !== undefined, trustsFrameClaims };
    let read = await readAndScan(storage, join(dir, name), name, base, context, progress, options.isLive === true);
    if (read === undefined) {
      notes.push(`${name} was removed while being read (compaction by the server that holds the log)`);
      continue;
    }
    if (options.isLive === true && read.scan.faults.some((fault) => fault.kind === 'torn-tail')) {
      // A live writer may have been in the middle of a frame: read it again. If the end moved,
      // it was being written; only an end that stays as it was is a torn tail.
      const again = await readAndScan(storage, join(dir, name), name, base, context, NO_PROGRESS, true);
      if (again !== undefined && !isSameEnd(read.scan, again.scan)) {
        notes.push(`${name}: its end is being written by the server that holds the log (checked as far as it was written)`);
        read = { ...again, scan: { ...again.scan, faults: again.scan.faults.filter((fault) => fault.kind !== 'torn-tail') } };
      }
    }
    const { scan, frames } = read;
    if (previous !== undefined && previous.nextOffset !== base) {
      faults.push({
        kind: 'corruption',
        file: name,
        position: 0,
        reason: `segment gap: ${previous.name} ends at offset ${previous.nextOffset}, ${name} starts at ${base}`,
        lastGoodOffset: previous.nextOffset - 1,
        nextGoodOffset: base,
        nextGoodPosition: 64,
      });
    }
    faults.push(...scan.faults);
    const indexName = indexFileName(base);
    let index: SegmentSummary['index'] = 'missing';
    if (names.includes(indexName)) {
      indexFilesChecked++;
      const fault = checkIndex(storage.readFile(join(dir, indexName)), indexName, scan, frames, isLast);
      index = fault === undefined ? 'checked' : 'damaged';
      if (fault !== undefined) faults.push(fault);
    } else if (!isLast) {
      notes.push(`${name} has no index file: the next open scans it and writes one`);
    }
    const summary: SegmentSummary = {
      name,
      baseOffset: base,
      nextOffset: scan.endOffset,
      recordCount: scan.recordCount,
      frameCount: scan.frameCount,
      fileSizeBytes: scan.fileSize,
      dataEndBytes: scan.dataEnd,
      formatVersion: scan.header?.formatVersion,
      index,
    };
    segments.push(summary);
    recordCount += scan.recordCount;
    previous = summary;
  }

  const last = segments.at(-1);
  const nextOffset = last?.nextOffset ?? 0;
  if (last !== undefined && recoveryPoint !== undefined && nextOffset < recoveryPoint.durableNext) {
    faults.push({
      kind: 'corruption',
      file: last.name,
      position: last.dataEndBytes,
      reason: `the log ends at offset ${nextOffset}, below its recovery point ${recoveryPoint.durableNext}: durable records are missing`,
      lastGoodOffset: nextOffset - 1,
    });
  }
  let isCleanlyClosed = false;
  if (names.includes(CLEAN_MARKER_FILE)) {
    const marker = decodeCleanMarker(storage.readFile(join(dir, CLEAN_MARKER_FILE)));
    if (marker === undefined) faults.push({ kind: 'file', file: CLEAN_MARKER_FILE, position: 0, reason: 'the clean-shutdown marker does not check out' });
    else if (last !== undefined && marker.baseOffset === last.baseOffset && marker.dataEnd === last.dataEndBytes) isCleanlyClosed = true;
    else notes.push(`${CLEAN_MARKER_FILE} does not match the last segment: the next open scans it`);
  }
  if (names.includes(PRODUCERS_FILE)) {
    const decoded = decodeIndexFile(storage.readFile(join(dir, PRODUCERS_FILE)));
    if (!decoded.ok) faults.push({ kind: 'file', file: PRODUCERS_FILE, position: undefined, reason: `the producer table: ${decoded.reason}` });
  }
  for (const name of names) {
    if (name === PREALLOCATED_FILE) notes.push(`${name}: the next segment, zero-filled ahead (a server holds the log, or one stopped without closing it)`);
    else if (name.endsWith(TEMP_SUFFIX)) notes.push(`${name}: debris of a crash, removed at the next open`);
    else if (name.endsWith('.torn')) notes.push(`${name}: bytes an earlier recovery cut from a torn tail`);
  }
  return {
    segments,
    recordCount,
    firstOffset: segments[0]?.baseOffset ?? 0,
    nextOffset,
    indexFilesChecked,
    recoveryPoint: recoveryPoint?.durableNext,
    isCleanlyClosed,
    faults,
    notes,
  };
}
