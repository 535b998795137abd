/**
 * The key-value state as it was at a point in time: the newest snapshot at or before the point
 * that loads and verifies (full, or an incremental chain), plus the log from the snapshot's offset
 * up to the point, replayed through {@link RecordApplier} into a fresh {@link KeyState}. The live
 * view is never touched. docs/point-in-time.md describes the rules.
 */
import type { WalRecord } from '../codec/record.js';
import type { Wal } from '../engine/wal.js';
import { isWalError, WalError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { EntryCursor } from './entry-cursor.js';
import { KeyState } from './key-state.js';
import { RecordApplier } from './record-applier.js';
import { TxnTable } from './txn-table.js';
import type { SnapshotInfo } from './snapshot-info.js';
import { listSnapshots, loadSnapshot, type SnapshotProblem } from './snapshot-reader.js';

/** Keys read from the state at a time when counting the keys a replay changed. */
const COUNT_BATCH_KEYS = 1024;
/** Plans tried when compaction removes the log under a replay of a live log (the second plan then names what is left). */
const MAX_PLANS = 2;

/**
 * A point in time: an offset (the state holds every record below it, as a snapshot's wal offset
 * says) or an instant in ms since the epoch (the state holds every record whose timestamp is at or
 * before it).
 */
export type PointInTime = { readonly offset: number } | { readonly timestampMs: number };

/**
 * The log a state at a point in time is replayed from: the live log ({@link walPointInTimeLog}) or
 * its segment files read offline (src/offline/offline-log.ts).
 */
export interface PointInTimeLog {
  /** The first retained offset (records below it were compacted away). */
  readonly firstOffset: number;
  /** The offset after the last record that may be read (the high watermark + 1). */
  readonly endOffset: number;
  /** The first offset whose record's timestamp is at or after `timestampMs`, or {@link endOffset} when none is. */
  offsetForTimestamp(timestampMs: number): Promise<number>;
  /** The timestamp of the retained record at `offset`, undefined when there is none. */
  timestampAt(offset: number): Promise<number | undefined>;
  /** The records from `fromOffset` up to `toOffset` (exclusive), in offset order, in batches. */
  batches(fromOffset: number, toOffset: number): AsyncIterable<readonly WalRecord[]>;
}

/** The live log as a {@link PointInTimeLog}: reads up to the high watermark while appends go on. */
export function walPointInTimeLog(wal: Wal): PointInTimeLog {
  return {
    get firstOffset() {
      return wal.firstOffset;
    },
    get endOffset() {
      return wal.highWatermark + 1;
    },
    offsetForTimestamp: (timestampMs) => wal.offsetForTimestamp(timestampMs),
    async timestampAt(offset) {
      if (offset < wal.firstOffset || offset > wal.highWatermark) return undefined;
      const [record] = await wal.read(offset, { limit: 1 });
      return record?.timestamp;
    },
    batches: (fromOffset, toOffset) => wal.rangeBatches(fromOffset, toOffset),
  };
}

/** Where a state at a point in time is built from. */
export interface PointInTimeSource {
  readonly log: PointInTimeLog;
  /** The file-system port of the snapshot files. */
  readonly storage: Storage;
  /** The snapshot directory (resolved against the data directory). */
  readonly snapshotDir: string;
  /** Cap on the built state's memory estimate (`max_state_bytes`, as the live view's). */
  readonly maxStateBytes: number;
  /**
   * Ended transactions remembered (`txn_max_ended`, as the live view's): past it the oldest ended
   * id is forgotten and may be prepared again, so the replay must forget as the view did.
   */
  readonly txnMaxEnded: number;
  /** Page size of the built state (tests use small pages). */
  readonly pageBytes?: number | undefined;
}

/** What to replay: up to `to`, and which records to count. */
export interface ReplayRequest {
  /** The point the state is built to; default: the end of the log. */
  readonly to?: PointInTime | undefined;
  /**
   * The records counted: those from this point up to `to` (the state at `from` is built from a
   * snapshot and the log first, uncounted). `'earliest'`: from the earliest state available (the
   * oldest snapshot that loads, or offset 0 of a log that starts there). Default: from the
   * snapshot the state at `to` is built from.
   */
  readonly from?: PointInTime | 'earliest' | undefined;
  /** Called after each batch applied, with the records applied so far (for progress). */
  readonly onBatch?: ((recordsApplied: number) => void) | undefined;
}

/** The state at a point in time and how it was built. */
export interface PointInTimeState {
  /** The state, as of {@link nextOffset}: the caller's (no view is open on it). */
  readonly state: KeyState;
  /** The transactions as of {@link nextOffset} (in doubt there, and the ended ones remembered): what a snapshot of the state carries. */
  readonly txns: TxnTable;
  /** The state holds every record below this offset and none at or above it. */
  readonly nextOffset: number;
  /** For an instant: the instant asked (the state holds every record stamped at or before it). */
  readonly timestampMs: number | undefined;
  /** The snapshot the replay started from (the head of its chain), undefined when it started from an empty state at offset 0. */
  readonly snapshot: SnapshotInfo | undefined;
  /** Files of the snapshot's chain (1 for a full snapshot, 0 without one). */
  readonly chainLength: number;
  /** Newer snapshots at or below the point that could not be used, with their reasons. */
  readonly skippedSnapshots: readonly SnapshotProblem[];
  /** The offset the counted replay started at ({@link ReplayRequest.from}, else the snapshot's offset). */
  readonly fromOffset: number;
  /** Records applied from {@link fromOffset} up to {@link nextOffset}. */
  readonly recordsReplayed: number;
  /** Records applied from the snapshot up to {@link fromOffset}, to build the state there (0 unless `from` was given). */
  readonly recordsBeforeFrom: number;
  /**
   * Offsets from {@link fromOffset} up to {@link nextOffset} with no record in the log: key
   * compaction removed them (superseded records), so the state there may hold a key a removed
   * `PUT` still held at that point. 0 for a log never key-compacted.
   */
  readonly absentOffsets: number;
  /** Keys put or deleted by the counted records (a `flush_all` counts the keys it removed). */
  readonly keysAffected: number;
}

/** A snapshot to start from, or an empty state at offset 0. */
interface StartPlan {
  readonly candidates: readonly SnapshotInfo[];
  readonly fromEmpty: boolean;
}

/**
 * Builds the state at `request.to` from `source` (see the file comment). The state is checked
 * against `source.maxStateBytes` after the snapshot loads and after each batch.
 *
 * Rejects with `WalError` `WAL_POINT_IN_TIME_UNAVAILABLE` (OUT_OF_RANGE; details `atOffset`,
 * `atTimestampMs`, `firstOffset`, `earliestOffset`, `earliestTimestampMs`, `snapshotFailures`)
 * when no snapshot and retained log reach the point, `WAL_OFFSET_OUT_OF_RANGE` for an offset beyond
 * the log's end, `WAL_INVALID_ARGUMENT` for `from` after `to`, `WAL_STATE_FULL` when the state
 * passes the cap, and the log's read errors (`WAL_CORRUPTION`, `WAL_IO_ERROR`, `WAL_CLOSED`).
 * Throws `RangeError` for a malformed point.
 */
export async function replayToPoint(source: PointInTimeSource, request: ReplayRequest = {}): Promise<PointInTimeState> {
  for (let plan = 1; ; plan++) {
    try {
      return await replayOnce(source, request);
    } catch (error) {
      // A live log compacted under the replay: plan again from what is left (which names the
      // earliest point still available when this one is gone).
      if (plan >= MAX_PLANS || !isWalError(error, 'WAL_OFFSET_COMPACTED')) throw error;
    }
  }
}

async function replayOnce(source: PointInTimeSource, request: ReplayRequest): Promise<PointInTimeState> {
  const { log } = source;
  const end = log.endOffset;
  const firstOffset = log.firstOffset;
  const to = await resolvePoint(source, request.to ?? { offset: end }, end, 'to');
  const from = request.from === undefined || request.from === 'earliest' ? undefined : await resolvePoint(source, request.from, end, 'from');
  if (from !== undefined && from.offset > to.offset) {
    throw new WalError('WAL_INVALID_ARGUMENT', `from: the point ${from.offset} is after the point to replay to (${to.offset})`, { field: 'from', fromOffset: from.offset, toOffset: to.offset });
  }
  // The state is built at `start` (from a snapshot and the log), then replayed on to `to`.
  const start = from ?? to;
  const listing = listSnapshots(source.storage, source.snapshotDir);
  const replayable = listing.snapshots.filter((info) => info.type !== 'point');
  const failures: SnapshotProblem[] = [];
  if (to.isUnknowable || start.isUnknowable) throw await unavailable(source, start.isUnknowable ? start : to, replayable, failures);
  const plan = startPlan(replayable, start.offset, firstOffset, request.from === 'earliest');
  let state: KeyState | undefined;
  let txns: TxnTable | undefined;
  let snapshot: SnapshotInfo | undefined;
  let chainLength = 0;
  for (const candidate of plan.candidates) {
    const loaded = await loadSnapshot(source.storage, candidate.path, { maxStateBytes: source.maxStateBytes, pageBytes: source.pageBytes, txnMaxEnded: source.txnMaxEnded });
    if (!loaded.ok) {
      failures.push(loaded);
      continue;
    }
    state = loaded.state;
    txns = loaded.txns;
    snapshot = candidate;
    chainLength = loaded.chain.length;
    break;
  }
  if (state === undefined) {
    if (!plan.fromEmpty) throw await unavailable(source, start, replayable, failures);
    state = new KeyState({ maxStateBytes: source.maxStateBytes, pageBytes: source.pageBytes });
  }
  const built = state;
  checkCap(built, source.maxStateBytes);
  let keysRemovedByFlushes = 0;
  let lastFlushOffset = -1;
  let isCounting = false;
  // The snapshot's transactions, so that one in doubt there commits or aborts in the replay.
  const applier = new RecordApplier(
    built,
    (offset, keysRemoved) => {
      if (!isCounting) return;
      keysRemovedByFlushes += keysRemoved;
      lastFlushOffset = offset;
    },
    txns ?? new TxnTable(source.txnMaxEnded),
  );
  let applied = 0;
  const replay = async (fromOffset: number, toOffset: number): Promise<number> => {
    let count = 0;
    for await (const batch of log.batches(fromOffset, toOffset)) {
      applier.applyAll(batch);
      count += batch.length;
      applied += batch.length;
      checkCap(built, source.maxStateBytes);
      request.onBatch?.(applied);
    }
    return count;
  };
  const countFrom = from === undefined ? built.nextOffset : from.offset;
  const recordsBeforeFrom = built.nextOffset < countFrom ? await replay(built.nextOffset, countFrom) : 0;
  // The state's change tracking (what incremental snapshots read) starts at the first counted
  // record, so that the keys the counted records change can be counted at the end.
  built.finishRestore(Math.max(countFrom, built.nextOffset));
  isCounting = true;
  const recordsReplayed = await replay(countFrom, to.offset);
  // A flush forgets the changes before it: its keys are counted by the flush, the rest after it.
  const keysAffected = keysRemovedByFlushes + countChangesSince(built, Math.max(countFrom, lastFlushOffset + 1));
  // The state holds every record below the point, also when the last offsets before it have no
  // record (key compaction removed them): a snapshot of it says so.
  built.finishRestore(to.offset);
  return {
    state: built,
    txns: applier.txns,
    nextOffset: to.offset,
    timestampMs: to.timestampMs,
    snapshot,
    chainLength,
    skippedSnapshots: failures,
    fromOffset: countFrom,
    recordsReplayed,
    recordsBeforeFrom,
    absentOffsets: to.offset - countFrom - recordsReplayed,
    keysAffected,
  };
}

/** A point resolved to the offset its state is as of. */
interface ResolvedPoint {
  readonly offset: number;
  readonly timestampMs: number | undefined;
  /**
   * An instant before the first retained record of a compacted log: the records compacted away
   * may have later timestamps, so no state is known to be the state then.
   */
  readonly isUnknowable: boolean;
}

async function resolvePoint(source: PointInTimeSource, point: PointInTime, end: number, field: string): Promise<ResolvedPoint> {
  if ('offset' in point) {
    const offset = point.offset;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`${field}.offset must be a non-negative safe integer, got ${offset}`);
    if (offset > end) {
      throw new WalError('WAL_OFFSET_OUT_OF_RANGE', `${field}: offset ${offset} is beyond the end of the log (the state can be built up to offset ${end})`, {
        field,
        fromOffset: offset,
        highWatermark: end - 1,
      });
    }
    return { offset, timestampMs: undefined, isUnknowable: false };
  }
  const timestampMs = point.timestampMs;
  if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new RangeError(`${field}.timestampMs must be a non-negative safe integer, got ${timestampMs}`);
  // Every record stamped at or before the instant: the records below the first one stamped after it.
  const offset = Math.min(await source.log.offsetForTimestamp(timestampMs + 1), end);
  const firstOffset = source.log.firstOffset;
  return { offset, timestampMs, isUnknowable: firstOffset > 0 && offset <= firstOffset };
}

/**
 * The snapshots to try, in order, for the state at `offset`: those at or below it whose log up to
 * it is retained (at or above the first retained offset, or exactly at the point), newest first
 * (oldest first for `'earliest'`); and whether an empty state at offset 0 is a start (a log that
 * starts at 0).
 */
function startPlan(snapshots: readonly SnapshotInfo[], offset: number, firstOffset: number, isEarliest: boolean): StartPlan {
  const usable = snapshots.filter((info) => info.walOffset <= offset && (info.walOffset >= firstOffset || info.walOffset === offset));
  if (isEarliest && firstOffset === 0) return { candidates: [], fromEmpty: true };
  return { candidates: isEarliest ? usable : [...usable].reverse(), fromEmpty: firstOffset === 0 };
}

/** Keys put or deleted at or after `offset`, from the state's change tracking. */
function countChangesSince(state: KeyState, offset: number): number {
  const view = state.captureView();
  try {
    if (!view.canListChangesSince(offset)) return 0;
    const cursor = new EntryCursor(COUNT_BATCH_KEYS, { since: offset, withDeletions: true });
    let count = 0;
    while (!cursor.isDone) {
      view.read(cursor, Number.POSITIVE_INFINITY);
      count += cursor.count;
    }
    return count;
  } finally {
    view.release();
  }
}

function checkCap(state: KeyState, maxStateBytes: number): void {
  if (state.memoryBytes <= maxStateBytes) return;
  throw new WalError(
    'WAL_STATE_FULL',
    `the state at the point in time passes max_state_bytes (${maxStateBytes} bytes; it holds about ${state.memoryBytes} so far)`,
    { configKey: 'max_state_bytes', limit: maxStateBytes, stateBytes: state.memoryBytes },
  );
}

/** The refusal of a point no snapshot and retained log reach, naming the earliest state there is. */
async function unavailable(source: PointInTimeSource, point: ResolvedPoint, snapshots: readonly SnapshotInfo[], failures: readonly SnapshotProblem[]): Promise<WalError> {
  const { log } = source;
  const firstOffset = log.firstOffset;
  // The earliest state: the oldest snapshot whose log is retained (headers only: unverified), or
  // offset 0 of a log that starts there.
  const earliest = firstOffset === 0 ? 0 : snapshots.find((info) => info.walOffset >= firstOffset)?.walOffset;
  let earliestTimestampMs: number | undefined;
  if (earliest !== undefined) {
    // Records below `earliest` are in the state there; the instant of the last of them is the
    // earliest instant, when it is retained; else the first retained record's.
    earliestTimestampMs = earliest > firstOffset ? await log.timestampAt(earliest - 1) : await log.timestampAt(earliest);
  }
  const at = point.timestampMs === undefined ? `offset ${point.offset}` : `instant ${point.timestampMs} (ms since the epoch)`;
  const why = point.isUnknowable
    ? `it is before the first retained record (offset ${firstOffset}) and the timestamps of the records compacted away are not known`
    : `the log starts at offset ${firstOffset} and no snapshot at or below offset ${point.offset}, at or above ${firstOffset}, loads` +
      (failures.length === 0 ? '' : ` (${failures.length} failed: ${failures.map((f) => `${f.file}: ${f.reason}`).join('; ')})`);
  const earliestText =
    earliest === undefined
      ? 'no state is available (no snapshot reaches the retained log)'
      : `the earliest state available is at offset ${earliest}` + (earliestTimestampMs === undefined ? '' : ` (instant ${earliestTimestampMs})`);
  return new WalError('WAL_POINT_IN_TIME_UNAVAILABLE', `the state at ${at} cannot be built: ${why}; ${earliestText}`, {
    atOffset: point.offset,
    atTimestampMs: point.timestampMs,
    firstOffset,
    earliestOffset: earliest,
    earliestTimestampMs,
    snapshotFailures: failures.length,
  });
}
