import type { SnapshotInfo } from '../state/snapshot-info.js';
import { replayToPoint, type PointInTime } from '../state/point-in-time.js';
import { snapshotDirOf } from '../state/state-options.js';
import type { Storage } from '../storage/storage.js';
import { verifyDataDir } from './data-dir-verifier.js';
import type { LogFault } from './log-fault.js';
import { OfflineLog } from './offline-log.js';
import { NO_PROGRESS, type Progress } from './progress.js';

/** What `wald replay` replays. */
export interface ReplayDataDirOptions {
  /** The server's `snapshot_dir` (relative: inside the data directory). */
  readonly snapshotDir: string;
  /** Count the records from this point (the state there is built first); default: the earliest state available. */
  readonly from?: PointInTime | undefined;
  /** Replay up to this point; default: the end of the log. */
  readonly to?: PointInTime | undefined;
  /** First check every frame of the log and every snapshot's chain (as `wald verify`); replay nothing on a fault. */
  readonly verify?: boolean | undefined;
  /** Cap on the state's memory estimate (`max_state_bytes`). */
  readonly maxStateBytes: number;
  /** Ended transactions the state remembers (`txn_max_ended`): the replay forgets ended ids as the server did. */
  readonly txnMaxEnded: number;
  /** Where the check of `verify` reports its progress (bytes read). */
  readonly progress?: Progress | undefined;
  /** Clock in ms for the duration; tests inject one. */
  readonly clock?: (() => number) | undefined;
}

/** What a replay did: the figures of `wald replay`. */
export interface ReplayReport {
  /** Segment files the replay read records from (to build the state at `from`, and after it). */
  readonly segmentsReplayed: number;
  /** Records replayed from {@link fromOffset} up to {@link toOffset}. */
  readonly recordsReplayed: number;
  /** Keys those records put or deleted (a flush counts the keys it removed). */
  readonly keysAffected: number;
  readonly durationMs: number;
  /** The counted replay started here: the state held every record below it. */
  readonly fromOffset: number;
  /** The state replayed to holds every record below this offset. */
  readonly toOffset: number;
  /** Records replayed from the snapshot up to {@link fromOffset}, to build the state there. */
  readonly recordsBeforeFrom: number;
  /** Offsets in the counted range without a record (removed by key compaction). */
  readonly absentOffsets: number;
  /** The snapshot the state was built from; undefined: from the empty state at offset 0. */
  readonly snapshot: SnapshotInfo | undefined;
  /** Newer snapshots that could not be used, with their reasons. */
  readonly skippedSnapshots: readonly { readonly file: string; readonly reason: string }[];
  /** Keys in the state at {@link toOffset}, and its memory estimate. */
  readonly keyCount: number;
  readonly memoryBytes: number;
  /** With `verify`: what the check found (no replay when `faults` is not empty: the figures above are then 0). */
  readonly verification: { readonly segmentsChecked: number; readonly snapshotsVerified: number; readonly faults: readonly LogFault[] } | undefined;
}

/**
 * Replays the log of the data directory `dir` offline into a fresh state (`replayToPoint` over an
 * {@link OfflineLog}): the state at `from` is built from the newest snapshot at or below it that
 * loads plus the log, then the records from `from` up to `to` are replayed and counted. Writes
 * nothing, so two runs give the same report (but for the duration). The caller holds the
 * directory's lock (offline-dir.ts).
 *
 * Throws `WalError` `WAL_POINT_IN_TIME_UNAVAILABLE`, `WAL_OFFSET_OUT_OF_RANGE`,
 * `WAL_INVALID_ARGUMENT` (`from` after `to`), `WAL_STATE_FULL`, `WAL_CORRUPTION` (damage in a
 * segment read), and `StorageError` when a file cannot be read.
 */
export async function replayDataDir(storage: Storage, dir: string, options: ReplayDataDirOptions): Promise<ReplayReport> {
  const clock = options.clock ?? Date.now;
  const started = clock();
  const progress = options.progress ?? NO_PROGRESS;
  let verification: ReplayReport['verification'];
  if (options.verify === true) {
    const checked = await verifyDataDir(storage, dir, { snapshotDir: options.snapshotDir, progress });
    verification = { segmentsChecked: checked.segments.length, snapshotsVerified: checked.snapshotsVerified, faults: checked.faults };
    if (checked.faults.length > 0) {
      return {
        segmentsReplayed: 0,
        recordsReplayed: 0,
        keysAffected: 0,
        durationMs: clock() - started,
        fromOffset: 0,
        toOffset: 0,
        recordsBeforeFrom: 0,
        absentOffsets: 0,
        snapshot: undefined,
        skippedSnapshots: [],
        keyCount: 0,
        memoryBytes: 0,
        verification,
      };
    }
  }
  const log = await OfflineLog.open(storage, dir);
  const snapshotDir = snapshotDirOf(dir, options.snapshotDir);
  const built = await replayToPoint({ log, storage, snapshotDir, maxStateBytes: options.maxStateBytes, txnMaxEnded: options.txnMaxEnded }, { from: options.from ?? 'earliest', to: options.to });
  return {
    segmentsReplayed: log.segmentsReplayed,
    recordsReplayed: built.recordsReplayed,
    keysAffected: built.keysAffected,
    durationMs: clock() - started,
    fromOffset: built.fromOffset,
    toOffset: built.nextOffset,
    recordsBeforeFrom: built.recordsBeforeFrom,
    absentOffsets: built.absentOffsets,
    snapshot: built.snapshot,
    skippedSnapshots: built.skippedSnapshots.map((problem) => ({ file: problem.file, reason: problem.reason })),
    keyCount: built.state.size,
    memoryBytes: built.state.memoryBytes,
    verification,
  };
}
