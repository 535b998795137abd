import { join } from 'node:path';
import { align8 } from '../codec/align.js';
import { decodeCleanMarker, type CleanMarker } from '../codec/clean-marker.js';
import { decodeEpochHistory, type EpochHistoryFile } from '../codec/epoch-history-file.js';
import { checkFrame, decodeProducer, durableBefore, looksLikeFrameHeader } from '../codec/frame.js';
import { decodeIndexFile, type ProducerState } from '../codec/index-file.js';
import { decodeRecoveryPoint, type RecoveryPoint } from '../codec/recovery-point-file.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import { WalError } from '../errors.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { Storage } from '../storage/storage.js';
import { Segment } from './segment.js';
import { CLEAN_MARKER_FILE, EPOCHS_FILE, parseSegmentFileName, PRODUCERS_FILE, RECOVERY_POINT_FILE, TEMP_SUFFIX, tornFileName } from './segment-name.js';
import { SparseIndex } from './sparse-index.js';
import type { RecoveryFault, RecoveryReport } from './types.js';

/** What recovery hands to the log: its segments (the last one is active) and derived state. */
export interface RecoveredLog {
  readonly segments: Segment[];
  /** The idempotent-append table as of the end of the log, oldest first. */
  readonly producers: ProducerState[];
  /**
   * Sealed segments whose index was rebuilt by a scan, with the idempotent-append table as of each
   * one's end (its index carries it: a later cut of the log takes the table from the last index
   * left): their index files should be written again.
   */
  readonly rebuilt: RebuiltSegment[];
  /** The latest timestamp the log has given out (-1: none), so that new ones never go below it. */
  readonly lastTimestamp: number;
  /** The recovery point read from `RECOVERY`, if any. */
  readonly recoveryPoint: RecoveryPoint | undefined;
  /** The epoch history read from `EPOCHS`, if any (not yet reconciled with the log's end). */
  readonly epochs: EpochHistoryFile | undefined;
  readonly report: RecoveryReport;
}

/** A sealed segment whose index a scan rebuilt, and the producer table as of its end. */
export interface RebuiltSegment {
  readonly segment: Segment;
  readonly producers: ProducerState[];
}

interface RecoveryContext {
  readonly storage: Storage;
  readonly dir: string;
  readonly indexIntervalBytes: number;
  readonly faults: RecoveryFault[];
  readonly rebuilt: RebuiltSegment[];
  producers: ProducerState[];
  /**
   * Each producer's latest state so far, least recently written first: the table as of where the
   * scan is, at most `maxProducers` of them (the table forgets the least recently written beyond).
   */
  latestProducers: Map<string, ProducerState>;
  readonly maxProducers: number;
  /** Every offset below this was durable before the crash (from `RECOVERY`; 0: nothing known). */
  readonly durableBefore: number;
  /**
   * False only before the first open by a version-2 engine (which writes the point at once, over
   * everything a version-1 engine wrote): then version-1 segments keep the version-1 rule.
   */
  readonly hasRecoveryPoint: boolean;
  /**
   * False once the log holds frames another log stamped (a follower's, epoch history flag
   * `replicated`): their sync lags are the other log's durability, so only the recovery point,
   * this log's own, says what was durable here.
   */
  readonly trustsFrameClaims: boolean;
  bytesScanned: number;
  bytesCut: number;
}

/**
 * Opens what is on disk: removes crash debris, loads sealed segments from their indexes without
 * re-reading them, scans what the indexes do not cover, cuts a torn tail of the last segment (keeping
 * the cut bytes in a side file) and refuses anything else that does not check out.
 *
 * Throws `WalError` `WAL_CORRUPTION` (details: `segment`, `position`, `reason`, and the offsets
 * around the damage) for a bad checksum outside the torn tail, a bad segment header, a frame out of
 * sequence, or a missing / out-of-sequence segment.
 */
export function recoverLog(storage: Storage, dir: string, indexIntervalBytes: number, maxProducers: number, clock: () => number): RecoveredLog {
  const started = clock();
  const names = storage.list(dir);
  const recoveryPoint = names.includes(RECOVERY_POINT_FILE) ? decodeRecoveryPoint(storage.readFile(join(dir, RECOVERY_POINT_FILE))) : undefined;
  const epochs = readEpochHistory(storage, dir, names);
  const context: RecoveryContext = {
    storage,
    dir,
    indexIntervalBytes,
    faults: [],
    rebuilt: [],
    producers: [],
    latestProducers: new Map(),
    maxProducers,
    durableBefore: recoveryPoint?.durableNext ?? 0,
    hasRecoveryPoint: recoveryPoint !== undefined,
    trustsFrameClaims: epochs?.isReplicated !== true,
    bytesScanned: 0,
    bytesCut: 0,
  };
  removeDebris(context, names);
  const clean = readCleanMarker(storage, dir, names);
  const saved = readProducerFile(storage, dir, names);
  context.producers = [...(saved?.producers ?? [])];
  context.latestProducers = latestOf(context.producers, context.maxProducers);
  const bases = names
    .map(parseSegmentFileName)
    .filter((base): base is number => base !== undefined)
    .sort((a, b) => a - b);
  const segments: Segment[] = [];
  for (let i = 0; i < bases.length; i++) {
    const segment = loadSegment(context, bases[i]!, i === bases.length - 1, clean);
    const previous = segments[segments.length - 1];
    if (previous !== undefined && previous.nextOffset !== segment.baseOffset) {
      throw new WalError('WAL_CORRUPTION', `segment ${segment.name} does not follow ${previous.name}: offsets ${previous.nextOffset} to ${segment.baseOffset - 1} are missing`, {
        segment: segment.name,
        position: 0,
        reason: 'segment gap',
        expectedOffset: previous.nextOffset,
        foundOffset: segment.baseOffset,
      });
    }
    segments.push(segment);
  }
  const first = segments[0];
  const last = segments[segments.length - 1];
  if (last !== undefined && last.nextOffset < context.durableBefore) {
    // The log ends cleanly, but before records it had made durable: they are gone.
    throw corruption(last.name, last.dataEnd, `the log ends at offset ${last.nextOffset}, below its recovery point ${context.durableBefore}`, last.nextOffset - 1, undefined);
  }
  if (last !== undefined && storage.exists(last.indexPath)) {
    // The active segment's index (from a clean close) is in memory now. On disk it would go stale
    // at the first append, and a crash between the next rotation and the rewrite of this index
    // would leave it trusted as the index of a sealed segment: remove it before anything is written.
    storage.unlink(last.indexPath);
    storage.syncDir(dir);
  }
  const firstOffset = first?.baseOffset ?? 0;
  const nextOffset = last?.nextOffset ?? 0;
  let lastTimestamp = saved?.lastTimestamp ?? -1;
  for (const segment of segments) lastTimestamp = Math.max(lastTimestamp, segment.lastTimestamp);
  return {
    segments,
    producers: context.producers,
    rebuilt: context.rebuilt,
    lastTimestamp,
    recoveryPoint,
    epochs,
    report: {
      segments: segments.length,
      records: nextOffset - firstOffset,
      firstOffset,
      nextOffset,
      bytesScanned: context.bytesScanned,
      bytesCut: context.bytesCut,
      faults: context.faults,
      durationMs: clock() - started,
    },
  };
}

function removeDebris(context: RecoveryContext, names: readonly string[]): void {
  let removed = false;
  for (const name of names) {
    if (!name.endsWith(TEMP_SUFFIX)) continue;
    context.storage.unlink(join(context.dir, name));
    context.faults.push({ kind: 'temp-file-removed', file: name });
    removed = true;
  }
  if (removed) context.storage.syncDir(context.dir);
}

/**
 * The producer table saved on its own when compaction deleted the last sealed segment (whose index
 * held it), with the latest timestamp given out then; undefined when absent or unreadable (derived
 * data: losing it only forgets producers, reported by nothing worse than a retry written twice).
 */
function readProducerFile(storage: Storage, dir: string, names: readonly string[]): { producers: readonly ProducerState[]; lastTimestamp: number } | undefined {
  if (!names.includes(PRODUCERS_FILE)) return undefined;
  const decoded = decodeIndexFile(storage.readFile(join(dir, PRODUCERS_FILE)));
  return decoded.ok ? { producers: decoded.index.producers, lastTimestamp: decoded.index.lastTimestamp } : undefined;
}

/**
 * The epoch history, if the log has one. It is not derived data (fencing and divergence checks rest
 * on it) and it is only ever replaced whole by a rename: a file that does not check out is
 * corruption, never dropped.
 */
function readEpochHistory(storage: Storage, dir: string, names: readonly string[]): EpochHistoryFile | undefined {
  if (!names.includes(EPOCHS_FILE)) return undefined;
  const decoded = decodeEpochHistory(storage.readFile(join(dir, EPOCHS_FILE)));
  if (!decoded.ok) {
    throw new WalError('WAL_CORRUPTION', `the epoch history ${EPOCHS_FILE} does not check out (${decoded.reason})`, { file: EPOCHS_FILE, position: 0, reason: decoded.reason });
  }
  return decoded.file;
}

/** Reads and removes the clean-shutdown marker: from now on the active segment may change. */
function readCleanMarker(storage: Storage, dir: string, names: readonly string[]): CleanMarker | undefined {
  if (!names.includes(CLEAN_MARKER_FILE)) return undefined;
  const path = join(dir, CLEAN_MARKER_FILE);
  const buf = storage.readFile(path);
  storage.unlink(path);
  storage.syncDir(dir);
  return decodeCleanMarker(buf);
}

function loadSegment(context: RecoveryContext, baseOffset: number, isLast: boolean, clean: CleanMarker | undefined): Segment {
  const { storage, dir } = context;
  const probe = new Segment(dir, baseOffset, '', 0, 0);
  const file = storage.open(probe.path, 'read');
  try {
    const fileSize = file.size();
    const headerBytes = Buffer.alloc(SEGMENT_HEADER_BYTES);
    const headerRead = file.readSync(headerBytes, SEGMENT_HEADER_BYTES, 0);
    const decoded = decodeSegmentHeader(headerBytes.subarray(0, headerRead));
    if (!decoded.ok || decoded.header.baseOffset !== baseOffset) {
      const reason = decoded.ok ? `header says base offset ${decoded.header.baseOffset}` : decoded.reason;
      throw corruption(probe.name, 0, reason, baseOffset - 1, undefined);
    }
    const { segmentId, compactedNextOffset } = decoded.header;
    const indexed = loadIndex(context, probe, segmentId, fileSize, isLast, compactedNextOffset);
    const segment = indexed ?? new Segment(dir, baseOffset, segmentId, SEGMENT_HEADER_BYTES, fileSize);
    segment.frameSeed = decoded.header.frameSeed;
    segment.hasGaps = compactedNextOffset !== undefined;
    const trusted = indexed !== undefined && (!isLast || (clean?.baseOffset === baseOffset && clean.dataEnd === indexed.dataEnd));
    if (!trusted) scanSegment(context, segment, file, isLast, decoded.header.formatVersion);
    // noteFrame counts a frame's padding in the segment's size: compare with the file's own.
    if (segment.dataEnd > fileSize) restorePadding(context, segment, fileSize);
    if (compactedNextOffset !== undefined) {
      // Compaction may have dropped the records at the end: the header keeps where they ended.
      // Frames past that end are appends: a cut of the log back to a compacted segment's end
      // (`truncateLogFrom`, `wald repair`) makes it the active segment, which takes appends, and
      // is sealed with them at the next rotation. Every frame was checked on the way (checksum,
      // offsets that only grow), so they are the log's.
      segment.nextOffset = Math.max(segment.nextOffset, compactedNextOffset);
    }
    if (indexed === undefined && !isLast) context.rebuilt.push({ segment, producers: [...context.latestProducers.values()] });
    return segment;
  } finally {
    file.close();
  }
}

/** The segment as its index file describes it, or undefined when there is no usable index. */
function loadIndex(
  context: RecoveryContext,
  probe: Segment,
  segmentId: string,
  fileSize: number,
  isLast: boolean,
  compactedNextOffset: number | undefined,
): Segment | undefined {
  const { storage } = context;
  if (!storage.exists(probe.indexPath)) {
    if (!isLast) context.faults.push({ kind: 'index-rebuilt', segment: probe.name, reason: 'index file missing' });
    return undefined;
  }
  const decoded = decodeIndexFile(storage.readFile(probe.indexPath));
  let reason: string | undefined;
  if (!decoded.ok) reason = decoded.reason;
  else if (decoded.index.segmentId !== segmentId) reason = 'index belongs to another segment file';
  else if (decoded.index.baseOffset !== probe.baseOffset) reason = 'index base offset differs';
  else if (decoded.index.dataEnd < SEGMENT_HEADER_BYTES) reason = 'index data end inside the header';
  else if (compactedNextOffset !== undefined && decoded.index.nextOffset !== compactedNextOffset) reason = 'index next offset differs from the compacted segment';
  else if (decoded.index.dataEnd > fileSize) {
    // Segments never shrink below an indexed end (cuts and roll-backs happen past it): records
    // that were durable are gone.
    throw corruption(probe.name, fileSize, 'segment shorter than its index', probe.baseOffset - 1, decoded.index.nextOffset);
  }
  if (reason !== undefined || !decoded.ok) {
    context.faults.push({ kind: 'index-rebuilt', segment: probe.name, reason: reason ?? 'invalid' });
    return undefined;
  }
  const index = decoded.index;
  const segment = new Segment(
    context.dir,
    probe.baseOffset,
    segmentId,
    index.dataEnd,
    fileSize,
    SparseIndex.from(index.offsets, index.positions, index.timestamps, index.entryCount),
  );
  segment.nextOffset = index.nextOffset;
  segment.firstTimestamp = index.entryCount > 0 ? index.firstTimestamp : -1;
  segment.lastTimestamp = index.entryCount > 0 ? index.lastTimestamp : -1;
  context.producers = [...index.producers];
  context.latestProducers = latestOf(context.producers, context.maxProducers);
  return segment;
}

/**
 * Re-reads a segment from its `dataEnd` to the end of the file, checking every frame, and decides
 * what the first bad frame is (docs/engine.md, "Torn tail or corruption"):
 * - in a sealed segment, corruption: it was synced whole before the next segment was created;
 * - in the last segment, corruption if the bytes there were known durable, else a torn tail (cut).
 *   Known durable: the recovery point says so, or some valid frame after the damage does (its sync
 *   lag claims every offset below a point past the damaged frame's was on stable storage when it
 *   was written). Version-1 frames carry no claims; in a log no version-2 engine opened yet (no
 *   recovery point), any valid frame after the damage in a version-1 segment makes it corruption.
 */
function scanSegment(context: RecoveryContext, segment: Segment, file: ReturnType<Storage['open']>, isLast: boolean, formatVersion: number): void {
  const start = segment.dataEnd;
  const length = Math.max(0, segment.fileSize - start);
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = file.readSync(buf.subarray(got), length - got, start + got);
    if (n === 0) break;
    got += n;
  }
  context.bytesScanned += got;
  let rel = 0;
  for (;;) {
    const check = checkFrame(buf, rel, got, segment.frameSeed);
    // A compacted segment's frames may skip offsets (never go back); any other's follow each other.
    if (check.kind === 'ok' && (check.header.baseOffset === segment.nextOffset || (segment.hasGaps && check.header.baseOffset > segment.nextOffset))) {
      const { header } = check;
      segment.noteFrame(start + rel, align8(header.length), header.baseOffset, header.recordCount, header.timestamp, context.indexIntervalBytes);
      const producer = decodeProducer(buf, rel, header);
      if (producer !== undefined) {
        const state = { ...producer, firstOffset: header.baseOffset, lastOffset: header.baseOffset + header.recordCount - 1, timestamp: header.timestamp };
        context.producers.push(state);
        noteLatest(context.latestProducers, state, context.maxProducers);
      }
      rel += align8(header.length);
      continue;
    }
    if (check.kind === 'zero' && isZero(buf, rel, got)) return;
    const reason =
      check.kind === 'ok'
        ? `frame holds offset ${check.header.baseOffset}, expected ${segment.nextOffset}`
        : check.kind === 'invalid'
          ? check.reason
          : check.kind === 'incomplete'
            ? 'frame runs past the end of the file'
            : 'bytes after the end of the log';
    const position = start + rel;
    const ahead = scanAhead(buf, check.kind === 'ok' ? rel : rel + 8, got, start, segment.frameSeed);
    const legacy = formatVersion === 1 && !context.hasRecoveryPoint;
    // Without a seed (a version-1 segment, also while this engine continues one) any bytes that look
    // like a frame check out, a frame inside a record's value too: their claims are not believed.
    const claimed = Math.max(context.durableBefore, segment.frameSeed === 0 || !context.trustsFrameClaims ? -1 : ahead.durableBefore);
    const wasDurable = claimed > segment.nextOffset || (legacy && ahead.first !== undefined);
    if (!isLast || wasDurable) {
      throw corruption(segment.name, position, reason, segment.nextOffset - 1, ahead.first?.baseOffset, ahead.first?.position);
    }
    cutTornTail(context, segment, buf.subarray(rel, lastNonZero(buf, rel, got)), position);
    return;
  }
}

/** What the valid frames after a damaged one say: the first of them, and the furthest durability claim. */
export interface Ahead {
  readonly first: { readonly position: number; readonly baseOffset: number } | undefined;
  /** Every offset below this was durable when some frame after the damage was written (-1: no claim). */
  readonly durableBefore: number;
}

/**
 * Scans `buf[from..end)` at every 8-aligned position for whole valid frames (positions reported as
 * `base + rel`): what recovery, and `wald verify` offline, weigh a damaged frame against.
 */
export function scanAhead(buf: Buffer, from: number, end: number, base: number, seed: number): Ahead {
  let first: Ahead['first'];
  let claimed = -1;
  let rel = from;
  while (rel + 8 <= end) {
    const length = buf.readUInt32LE(rel);
    if (length === 0) {
      // The zeroed (preallocated) end: skip it a page at a time where it is all zeros.
      rel += rel % 4096 === 0 && rel + 4096 <= end && isZero(buf, rel, rel + 4096) ? 4096 : 8;
      continue;
    }
    // The cheap header checks first: a checksum over `length` bytes at every position of binary
    // data would make this scan quadratic.
    const check = rel + length <= end && rel + 16 <= end && looksLikeFrameHeader(buf, rel) ? checkFrame(buf, rel, end, seed) : undefined;
    if (check?.kind !== 'ok') {
      rel += 8;
      continue;
    }
    first ??= { position: base + rel, baseOffset: check.header.baseOffset };
    claimed = Math.max(claimed, durableBefore(check.header) ?? -1);
    rel += align8(check.header.length);
  }
  return { first, durableBefore: claimed };
}

const ZEROS = Buffer.alloc(64 * 1024);

/** True when `buf[from..end)` is all zeros (compared a 64 KiB slice at a time, natively). */
export function isZero(buf: Buffer, from: number, end: number): boolean {
  for (let p = from; p < end; p += ZEROS.length) {
    const n = Math.min(ZEROS.length, end - p);
    if (!buf.subarray(p, p + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/** One past the last non-zero byte of `buf[from..end)`, at least `from + 1`: the end of what a cut keeps. */
export function lastNonZero(buf: Buffer, from: number, end: number): number {
  let last = end;
  while (last > from && buf[last - 1] === 0) last--;
  return Math.max(last, from + 1);
}

/**
 * Keeps the bytes of a torn tail in a side file, durably, then cuts them off the segment. A side
 * file of the same name left by an earlier recovery (a torn tail at the same place twice, or a crash
 * between saving and cutting) is kept: identical bytes reuse it, others get the next free name.
 */
function cutTornTail(context: RecoveryContext, segment: Segment, cut: Buffer, position: number): void {
  const { storage, dir } = context;
  let sideName = tornFileName(segment.name, position);
  for (let n = 1; storage.exists(join(dir, sideName)); n++) {
    if (storage.readFile(join(dir, sideName)).equals(cut)) break;
    sideName = tornFileName(segment.name, position, n);
  }
  // The side file is durable before the cut is: a crash in between finds the tail again.
  const sidePath = join(dir, sideName);
  if (!storage.exists(sidePath)) writeFileDurably(storage, sidePath, sidePath + TEMP_SUFFIX, cut);
  const file = storage.open(segment.path, 'read-write');
  try {
    file.truncate(position);
    file.sync();
  } finally {
    file.close();
  }
  storage.syncDir(dir);
  segment.fileSize = position;
  segment.dataEnd = position;
  context.bytesCut += cut.length;
  context.faults.push({ kind: 'torn-tail', segment: segment.name, position, bytesCut: cut.length, savedTo: sideName });
}

/**
 * Extends a segment whose file ends inside its last frame's padding up to the end of that frame,
 * with zeros, durably. The frame checked out (its `length` bytes are all there); only padding is
 * missing, and a file shorter than its data would make the index written at the next seal or
 * clean close claim bytes the file lacks, which the open after it refuses as lost data.
 */
function restorePadding(context: RecoveryContext, segment: Segment, position: number): void {
  const { storage } = context;
  const file = storage.open(segment.path, 'read-write');
  try {
    file.truncate(segment.dataEnd);
    file.sync();
  } finally {
    file.close();
  }
  segment.fileSize = segment.dataEnd;
  context.faults.push({ kind: 'padding-restored', segment: segment.name, position, bytesAdded: segment.dataEnd - position });
}

function corruption(
  segment: string,
  position: number,
  reason: string,
  lastGoodOffset: number,
  nextGoodOffset: number | undefined,
  nextGoodPosition?: number,
): WalError {
  const after = nextGoodOffset === undefined ? '' : `; a valid frame with offset ${nextGoodOffset} follows at byte ${nextGoodPosition}`;
  return new WalError(
    'WAL_CORRUPTION',
    `corruption in segment ${segment} at byte ${position} (${reason}); last good offset ${lastGoodOffset}${after}`,
    { segment, position, reason, lastGoodOffset, nextGoodOffset, nextGoodPosition },
  );
}

/** Each producer's latest state in `states` (log order), least recently written first. */
function latestOf(states: readonly ProducerState[], maxProducers: number): Map<string, ProducerState> {
  const latest = new Map<string, ProducerState>();
  for (const state of states) noteLatest(latest, state, maxProducers);
  return latest;
}

/** Makes `state` its producer's latest, forgetting the least recently written beyond `maxProducers`. */
function noteLatest(latest: Map<string, ProducerState>, state: ProducerState, maxProducers: number): void {
  latest.delete(state.producerId);
  latest.set(state.producerId, state);
  if (latest.size > maxProducers) latest.delete(latest.keys().next().value!);
}
