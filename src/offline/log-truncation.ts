import { basename, dirname, join } from 'node:path';
import { align8 } from '../codec/align.js';
import { decodeIndexFile, encodeIndexFile } from '../codec/index-file.js';
import { decodeRecoveryPoint, encodeRecoveryPoint, RECOVERY_POINT_FILE_BYTES, RECOVERY_POINT_SLOTS } from '../codec/recovery-point-file.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import type { EpochStart } from '../codec/epoch-history-file.js';
import { cutEpochHistory, epochsCutAt, readEpochHistoryFile } from '../engine/epoch-history.js';
import { isZero, lastNonZero } from '../engine/recovery.js';
import { replaceWithPlainHeader } from '../engine/truncate-log-from.js';
import { CLEAN_MARKER_FILE, indexFileName, parseSegmentFileName, PRODUCERS_FILE, RECOVERY_POINT_FILE, TEMP_SUFFIX } from '../engine/segment-name.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import { invalidArgument, WalError } from '../errors.js';
import { listSnapshots } from '../state/snapshot-reader.js';
import { cutStrandingView } from '../state/snapshots-set-aside.js';
import { snapshotDirOf } from '../state/state-options.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { Storage } from '../storage/storage.js';
import { readWholeFile } from './read-whole-file.js';
import { scanSegment } from './segment-scan.js';

/** What `wald repair --truncate-at` will do, worked out before anything is written. */
export interface TruncationPlan {
  /** The log will end before this offset: its next offset will be this. */
  readonly offset: number;
  /** The offset after the last record there now (of an unbroken run; damage ends it). */
  readonly logEnd: number;
  /** The segment that will be the last one, cut at `cutPosition` (a frame boundary). */
  readonly segment: string;
  readonly cutPosition: number;
  /** Bytes of `segment` from `cutPosition` to its last non-zero byte (rounded up to 8): kept in the side directory. */
  readonly cutBytes: number;
  /** Whole segments after it, removed into the side directory (oldest first). */
  readonly removedSegments: string[];
  /** Snapshot files whose state includes records from `offset` on: moved into the side directory too. */
  readonly snapshots: string[];
  /**
   * Entries of the epoch history (`EPOCHS`) that start at or after `offset`, removed from it (their
   * frames are cut); recorded in `REPAIR.json`.
   */
  readonly epochs: readonly EpochStart[];
}

/** What a truncation did. */
export interface TruncationReport extends TruncationPlan {
  /** The side directory inside the data directory that holds everything cut (`repair-<time>`). */
  readonly savedTo: string;
}

/** The name of the side directory of a repair at `nowMs`: `repair-20261201T151500123Z`. */
export function repairDirName(nowMs: number): string {
  return `repair-${new Date(nowMs).toISOString().replace(/[-:.]/g, '')}`;
}

/**
 * Works out how to cut the log in `dir` so that it ends before `offset`, without writing: the
 * segment holding `offset` is cut at the start of the frame whose first offset is `offset`, every
 * later segment is removed, and snapshots above `offset` go too (their state holds cut records,
 * and offsets from `offset` on will be given out again).
 *
 * An offset inside a batch is refused rather than rounded: a frame is one atomic batch, so cutting
 * part of it is impossible and cutting all of it would drop records below `offset` that the
 * operator asked to keep; the error names the frame's offsets so the operator can choose.
 *
 * Throws `WalError`: `WAL_OFFSET_COMPACTED` below the first retained offset, or in a compacted
 * log below every snapshot that reaches its first offset (detail `minTruncateAt`),
 * `WAL_OFFSET_OUT_OF_RANGE` beyond the end of the log or past damage (the message names the
 * furthest offset that can be cut at), `WAL_INVALID_ARGUMENT` (field `truncateAt`) inside a batch or inside a segment key compaction rewrote,
 * `WAL_CORRUPTION` for a gap between segments before `offset` or a bad segment header.
 */
export async function planTruncation(storage: Storage, dir: string, offset: number, snapshotDir: string): Promise<TruncationPlan> {
  const names = storage.list(dir).sort();
  const segments = names.filter((name) => parseSegmentFileName(name) !== undefined);
  const bases = segments.map((name) => parseSegmentFileName(name)!);
  if (bases.length === 0) throw new WalError('WAL_OFFSET_OUT_OF_RANGE', `the log in ${dir} has no segments`, { truncateAt: offset });
  if (offset < bases[0]!) {
    throw new WalError('WAL_OFFSET_COMPACTED', `offset ${offset} is below the first retained offset ${bases[0]}`, { truncateAt: offset, firstOffset: bases[0] });
  }
  let holder = bases.findLastIndex((base) => base <= offset);
  // A segment starting at `offset` goes whole: the one before it ends there.
  if (bases[holder] === offset && holder > 0) holder--;
  // Damage in a segment before the cut would stay in the log, under records the cut keeps: the
  // furthest offset a cut can keep is where the first damage starts (each segment is read whole).
  for (let i = 0; i < holder; i++) {
    const earlier = scanSegment(await readWholeFile(storage, join(dir, segments[i]!)), segments[i]!, bases[i]!, { isLast: false, durableBefore: 0, hasRecoveryPoint: true, stopAtDamage: true });
    const damage = earlier.faults[0];
    if (damage !== undefined) {
      throw new WalError(
        'WAL_OFFSET_OUT_OF_RANGE',
        `offset ${offset} lies past damage in ${segments[i]} at byte ${damage.position} (${damage.reason}): the log can be cut at offset ${earlier.nextOffset} at most`,
        { truncateAt: offset, segment: segments[i], position: damage.position, maxTruncateAt: earlier.nextOffset },
      );
    }
    // A missing segment between the two: the log would still not open with a cut past it.
    const end = Math.max(earlier.nextOffset, earlier.header?.compactedNextOffset ?? 0);
    if (bases[i + 1] !== end) {
      throw new WalError(
        'WAL_OFFSET_OUT_OF_RANGE',
        `offset ${offset} lies past a gap: ${segments[i]} ends at offset ${end} and the next segment, ${segments[i + 1]}, starts at ${bases[i + 1]}: the log can be cut at offset ${end} at most`,
        { truncateAt: offset, segment: segments[i], maxTruncateAt: end },
      );
    }
  }
  const name = segments[holder]!;
  const isLast = holder === segments.length - 1;
  const buf = await readWholeFile(storage, join(dir, name));
  let cutPosition: number | undefined;
  let inside: { first: number; next: number } | undefined;
  const scan = scanSegment(buf, name, bases[holder]!, { isLast, durableBefore: 0, hasRecoveryPoint: true, stopAtDamage: true }, (frame) => {
    const { baseOffset, recordCount } = frame.header;
    if (baseOffset === offset) cutPosition = frame.position;
    else if (baseOffset < offset && offset < baseOffset + recordCount) inside = { first: baseOffset, next: baseOffset + recordCount };
    return cutPosition === undefined && inside === undefined;
  });
  if (inside !== undefined) {
    throw invalidArgument('truncateAt', `offset ${offset} is inside a batch (offsets ${inside.first} to ${inside.next - 1}, one frame): cut at ${inside.first} or ${inside.next}`, {
      truncateAt: offset,
      batchFirstOffset: inside.first,
      batchNextOffset: inside.next,
    });
  }
  if (scan.header === undefined) throw new WalError('WAL_CORRUPTION', `segment ${name}: ${scan.faults[0]?.reason ?? 'bad header'}`, { segment: name, position: 0 });
  const compactedEnd = scan.header.compactedNextOffset;
  // At the start of a key-compacted segment (only the first one: for a later one the segment before
  // ends there) every record of it goes, and so does its compacted end (see applyTruncation).
  const isCompactedStart = compactedEnd !== undefined && offset === bases[holder];
  if (isCompactedStart) cutPosition = SEGMENT_HEADER_BYTES;
  if (compactedEnd !== undefined && offset !== compactedEnd && !isCompactedStart) {
    // Its header says where it ends: a cut inside would leave that end (and its gaps) behind, and
    // the log would go on at the old end rather than at `offset`.
    throw invalidArgument('truncateAt', `offset ${offset} is inside ${name}, which key compaction rewrote: cut at its start ${bases[holder]} or its end ${compactedEnd}`, {
      truncateAt: offset,
      segment: name,
      segmentFirstOffset: bases[holder],
      segmentNextOffset: compactedEnd,
    });
  }
  if (cutPosition === undefined && scan.nextOffset === offset) cutPosition = scan.dataEnd;
  if (cutPosition === undefined) {
    const damage = scan.faults[0];
    if (damage !== undefined) {
      throw new WalError(
        'WAL_OFFSET_OUT_OF_RANGE',
        `offset ${offset} lies past damage in ${name} at byte ${damage.position} (${damage.reason}): the log can be cut at offset ${scan.nextOffset} at most`,
        { truncateAt: offset, segment: name, position: damage.position, maxTruncateAt: scan.nextOffset },
      );
    }
    if (!isLast) {
      throw new WalError('WAL_CORRUPTION', `segment ${name} ends at offset ${scan.nextOffset}, before ${offset}, and the next segment starts after it`, {
        segment: name,
        position: scan.dataEnd,
        truncateAt: offset,
      });
    }
    throw new WalError('WAL_OFFSET_OUT_OF_RANGE', `offset ${offset} is beyond the end of the log (next offset ${scan.nextOffset})`, { truncateAt: offset, nextOffset: scan.nextOffset });
  }
  // Whole 8-byte units up to the last non-zero byte: the frames cut with their padding, not the
  // zeros of a preallocated end.
  const cutBytes = isZero(buf, cutPosition, buf.length) ? 0 : Math.min(buf.length, align8(lastNonZero(buf, cutPosition, buf.length))) - cutPosition;
  const removedSegments = segments.slice(holder + 1);
  let logEnd = scan.nextOffset;
  if (removedSegments.length > 0) {
    const lastName = removedSegments.at(-1)!;
    const lastScan = scanSegment(await readWholeFile(storage, join(dir, lastName)), lastName, parseSegmentFileName(lastName)!, { isLast: true, durableBefore: 0, hasRecoveryPoint: true, stopAtDamage: true });
    logEnd = lastScan.nextOffset;
  } else if (scan.faults.length === 0) {
    // The holder is the last segment: its end is where the run of frames ends.
    const whole = scanSegment(buf, name, bases[holder]!, { isLast, durableBefore: 0, hasRecoveryPoint: true, stopAtDamage: true });
    logEnd = whole.nextOffset;
  }
  const listed = listSnapshots(storage, snapshotDirOf(dir, snapshotDir)).snapshots;
  const firstOffset = bases[0]!;
  // A compacted log's key-value state comes from a snapshot that reaches its first offset: moving
  // every such snapshot away (they are all above the cut) would leave a log the server cannot open.
  const lowest = cutStrandingView(listed, firstOffset, offset);
  if (lowest !== undefined) {
    throw new WalError(
      'WAL_OFFSET_COMPACTED',
      `offset ${offset} would set aside every snapshot that reaches the log's first offset ${firstOffset} (compaction removed the records before it): the key-value state could not be rebuilt; cut at ${lowest} or above`,
      { truncateAt: offset, firstOffset, minTruncateAt: lowest },
    );
  }
  const snapshots = listed.filter((info) => info.walOffset > offset).map((info) => info.path);
  const epochs = epochsCutAt(readEpochHistoryFile(storage, dir), offset);
  return { offset, logEnd, segment: name, cutPosition, cutBytes, removedSegments, snapshots, epochs };
}

/**
 * True when the plan changes nothing: the log already ends at its offset, with nothing after (no
 * snapshot above it, no epoch starting at or after it: a repair that stopped part way finishes).
 */
export function isNothingToCut(plan: TruncationPlan): boolean {
  return plan.cutBytes === 0 && plan.removedSegments.length === 0 && plan.snapshots.length === 0 && plan.epochs.length === 0;
}

/**
 * Carries out a plan of {@link planTruncation} in an order that leaves a log that opens after a
 * crash at any step (each step durable before the next: renames and cuts are followed by an
 * fsync of the directory): the side directory; the snapshots above the offset moved into it (a
 * snapshot of cut records must never be loaded once new records reuse their offsets); the
 * recovery point lowered to the offset (else the shorter log would read as lost durable records);
 * the producer table (`PRODUCERS`) rid of producers whose last append is cut; the `CLEAN` marker
 * and the cut segment's index removed (the next open scans it); the later segments moved into it,
 * the last first, so that the log never has a gap; the cut bytes saved (`<segment>.<position>.cut`)
 * and only then the segment truncated; then the epoch history cut (the entries starting at or after
 * the offset: only once their frames are gone, see `cutEpochHistory`); last, `REPAIR.json`
 * describing it all. The caller holds the directory lock. Throws `WalError` `WAL_IO_ERROR` /
 * `WAL_NO_SPACE` (`StorageError` underneath), `WAL_CORRUPTION` for an `EPOCHS` file that does not
 * check out.
 */
export function applyTruncation(storage: Storage, dir: string, plan: TruncationPlan, nowMs: number): TruncationReport {
  try {
    return truncate(storage, dir, plan, nowMs);
  } catch (error) {
    throw walErrorFromStorage(error, `repair of ${dir} failed part way (run it again to finish)`, { dir });
  }
}

function truncate(storage: Storage, dir: string, plan: TruncationPlan, nowMs: number): TruncationReport {
  let sideName = repairDirName(nowMs);
  for (let n = 1; storage.exists(join(dir, sideName)); n++) sideName = `${repairDirName(nowMs)}-${n}`;
  const side = join(dir, sideName);
  storage.mkdirp(side);
  storage.syncDir(dir);

  if (plan.snapshots.length > 0) {
    const sideSnapshots = join(side, 'snapshots');
    storage.mkdirp(sideSnapshots);
    storage.syncDir(side);
    // Newest first: an incremental never outlives its base in the snapshot directory.
    for (const path of [...plan.snapshots].reverse()) {
      storage.rename(path, join(sideSnapshots, basename(path)));
      storage.syncDir(sideSnapshots);
      storage.syncDir(dirname(path));
    }
  }

  const recoveryPath = join(dir, RECOVERY_POINT_FILE);
  const point = storage.exists(recoveryPath) ? decodeRecoveryPoint(storage.readFile(recoveryPath)) : undefined;
  if (point !== undefined && point.durableNext > plan.offset) {
    const lowered = { sequence: point.sequence + 1, durableNext: plan.offset };
    const file = Buffer.alloc(RECOVERY_POINT_FILE_BYTES);
    encodeRecoveryPoint(lowered).copy(file, RECOVERY_POINT_SLOTS[lowered.sequence % 2]!);
    writeFileDurably(storage, recoveryPath, recoveryPath + TEMP_SUFFIX, file);
  }

  const producersPath = join(dir, PRODUCERS_FILE);
  const producers = storage.exists(producersPath) ? decodeIndexFile(storage.readFile(producersPath)) : undefined;
  if (producers?.ok === true && producers.index.nextOffset > plan.offset) {
    const kept = producers.index.producers.filter((producer) => producer.lastOffset < plan.offset);
    writeFileDurably(storage, producersPath, producersPath + TEMP_SUFFIX, encodeIndexFile({ ...producers.index, nextOffset: plan.offset, producers: kept }));
  }

  const cleanPath = join(dir, CLEAN_MARKER_FILE);
  if (storage.exists(cleanPath)) storage.unlink(cleanPath);
  const holderBase = parseSegmentFileName(plan.segment)!;
  const holderIndex = indexFileName(holderBase);
  // A cut at the start of a key-compacted segment: its header's compacted end goes too (below), or
  // the log would go on there rather than at the offset; its index, which says the same, goes now.
  const holderHeader = decodeSegmentHeader(storage.readFile(join(dir, plan.segment)).subarray(0, SEGMENT_HEADER_BYTES));
  const isCompactedStart = holderHeader.ok && holderHeader.header.compactedNextOffset !== undefined && plan.offset === holderHeader.header.baseOffset;
  if ((plan.cutBytes > 0 || isCompactedStart) && storage.exists(join(dir, holderIndex))) storage.rename(join(dir, holderIndex), join(side, holderIndex));
  storage.syncDir(dir);

  for (const name of [...plan.removedSegments].reverse()) {
    const index = indexFileName(parseSegmentFileName(name)!);
    if (storage.exists(join(dir, index))) storage.rename(join(dir, index), join(side, index));
    storage.rename(join(dir, name), join(side, name));
    storage.syncDir(side);
    storage.syncDir(dir);
  }

  const holderPath = join(dir, plan.segment);
  const file = storage.open(holderPath, 'read-write');
  try {
    if (plan.cutBytes > 0) {
      const cut = Buffer.alloc(plan.cutBytes);
      const n = file.readSync(cut, plan.cutBytes, plan.cutPosition);
      const cutPath = join(side, `${plan.segment}.${plan.cutPosition}.cut`);
      writeFileDurably(storage, cutPath, cutPath + TEMP_SUFFIX, cut.subarray(0, n));
    }
    if (file.size() > plan.cutPosition) {
      file.truncate(Math.max(plan.cutPosition, SEGMENT_HEADER_BYTES));
      file.sync();
    }
  } finally {
    file.close();
  }
  if (isCompactedStart && holderHeader.ok) replaceWithPlainHeader(storage, holderPath, holderHeader.header);
  storage.syncDir(dir);
  cutEpochHistory(storage, dir, plan.offset);

  const report: TruncationReport = { ...plan, savedTo: sideName };
  const manifest = join(side, 'REPAIR.json');
  writeFileDurably(storage, manifest, manifest + TEMP_SUFFIX, Buffer.from(`${JSON.stringify({ repairedAtMs: nowMs, ...report }, null, 2)}\n`));
  return report;
}
