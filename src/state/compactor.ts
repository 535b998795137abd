import { decodeCheckpointValue, encodeCheckpointValue } from '../codec/checkpoint-value.js';
import { RECORD_TYPE_NAMES, type RecordType } from '../codec/record.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import type { Wal } from '../engine/wal.js';
import { WalError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { compactKeys, type KeyCompactionResult } from './key-compaction.js';
import { planLeasedDeletion, type LeaseRules, type LeaseStanding, type LeasedDeletionPlan, type RetentionLease } from './retention-lease.js';
import { segmentsBelow, type SegmentDeletionPlan } from './segment-retention.js';
import type { SnapshotInfo } from './snapshot-info.js';
import { prunableSnapshots } from './snapshot-pruning.js';
import { listSnapshots, snapshotPath, verifySnapshot } from './snapshot-reader.js';
import type { StateKeeper } from './state-keeper.js';
import type { StateOptionValues } from './state-options.js';
import { judgePrepare } from './txn-redundancy.js';

/** The `compaction` options (state-options.ts), resolved. */
export type CompactionOptionValues = StateOptionValues['compaction'];

/** Records read per call while a dry run counts the redundant records of the retained log. */
const REDUNDANCY_READ_RECORDS = 1000;
/**
 * Bytes of a compaction's snapshot encoded between turns of the event loop: a quarter of
 * `writeSnapshot`'s default, so that appends get a group commit in about every millisecond of the
 * write instead of every four (docs/benchmarks.md, compaction); the write takes about as long.
 */
const COMPACTION_SNAPSHOT_CHUNK_BYTES = 64 * 1024;
/** Records after a snapshot that a compaction reads to see whether they are only checkpoints (and so the snapshot is still at the head). */
const HEAD_CHECK_RECORDS = 16;

/** What {@link Compactor.compact} takes. */
export interface CompactRequest {
  /** Write a new full snapshot even when the newest one is at the high watermark and verifies. */
  readonly forceSnapshot?: boolean | undefined;
  /** Report what would be done and change nothing. */
  readonly dryRun?: boolean | undefined;
  /**
   * Then also rewrite the sealed segments that remain (those retention keeps) keeping only the
   * latest record per key (`compactKeys`, key-compaction.ts): offsets stay, the segments get gaps.
   */
  readonly aggressive?: boolean | undefined;
  /** With `aggressive`: only segments at least this share (percent, 0..100) redundant are rewritten. Default 20. */
  readonly thresholdPercent?: number | undefined;
}

/** What a compaction did, or for a dry run would do. */
export interface CompactionResult {
  readonly isDryRun: boolean;
  /** Snapshots written: 0 or 1 (a dry run: would be). */
  readonly snapshotsCreated: number;
  /** Sealed segments deleted (a dry run: would be). */
  readonly segmentsDeleted: number;
  /** Bytes of their segment files. */
  readonly bytesReclaimed: number;
  /** Old snapshots deleted after the segments (a dry run: would be, as the directory is now). */
  readonly snapshotsDeleted: number;
  /** Snapshot files in the snapshot directory afterwards (every type). */
  readonly totalSnapshots: number;
  /** Segments of the log afterwards, the active one included. */
  readonly walSegments: number;
  /** The snapshot the log now starts from; undefined in a dry run that would write a new one. */
  readonly snapshotId: string | undefined;
  /** That snapshot's wal offset (a dry run: the offset a new one would have, at least). */
  readonly snapshotOffset: number;
  /** The offset of the checkpoint record appended; undefined when none was (a dry run, or the one after the reused snapshot names it). */
  readonly checkpointOffset: number | undefined;
  /** The first retained offset afterwards. */
  readonly firstOffset: number;
  /** Dry runs only: the share of retained records superseded by a later write to the same key, deleted or aborted (see {@link Compactor.redundancy}). */
  readonly redundancyRatio: number | undefined;
  /** Dry runs only: the retained records by type, from the same scan. */
  readonly recordCounts: RecordTypeCounts | undefined;
  /** With `aggressive`: what the key compaction of the remaining sealed segments did (a dry run: would do). */
  readonly keyCompaction: KeyCompactionResult | undefined;
  /** Sealed segments kept only because followers' retention leases need them (a dry run: would be). */
  readonly leaseHeldSegments: number;
  /** Bytes of those segments. */
  readonly leaseHeldBytes: number;
  /** The holders (follower ids) of the leases that kept them, sorted. */
  readonly leaseHolders: readonly string[];
  readonly durationMs: number;
}

/** What {@link Compactor.deleteSegmentsBefore} did. */
export interface SegmentDeletionResult {
  readonly segmentsDeleted: number;
  readonly bytesReclaimed: number;
  readonly firstOffset: number;
}

/** Records by type. */
export type RecordTypeCounts = Readonly<Record<RecordType, number>>;

/** The share of a log's records that a snapshot makes redundant. */
export interface Redundancy {
  /** Records counted (the retained log up to the view's offset). */
  readonly recordCount: number;
  /**
   * Keyed puts superseded by a later write to their key (or a flush), deletes, aborts, and the
   * PREPAREs that `judgePrepare` finds redundant (of aborted transactions, duplicates, of committed
   * transactions whose every write was superseded).
   */
  readonly redundantCount: number;
  /** `redundantCount / recordCount`, 0 for an empty log. */
  readonly ratio: number;
  /** The records counted, by type. */
  readonly countsByType: RecordTypeCounts;
  /** When the scan ended, by the compactor's clock (ms). */
  readonly scannedMs: number;
}

/** What {@link Compactor} works with. */
export interface CompactorInit {
  readonly wal: Wal;
  /** The view of `wal`: it writes the snapshots. */
  readonly state: StateKeeper;
  /** The file-system port of the log and snapshots. */
  readonly storage: Storage;
  readonly options: CompactionOptionValues;
  /** Clock in ms for retention and durations; tests inject one (the log's own clock stamps the records). */
  readonly clock?: (() => number) | undefined;
  /**
   * The followers' retention leases (read at each plan) and their caps; undefined: none (as on a
   * log no leader serves). See retention-lease.ts.
   */
  readonly leases?: { readonly current: () => readonly RetentionLease[]; readonly rules: LeaseRules } | undefined;
}

/**
 * Reclaims the disk of a log whose key-value view is kept by a {@link StateKeeper}: takes (or
 * reuses) a snapshot at the high watermark, appends a `checkpoint` record naming it, deletes the
 * whole sealed segments below the snapshot's offset that retention does not keep, and prunes the
 * snapshots that no longer help recovery. Runs online: appends, reads and tails go on.
 *
 * The log never loses a record no durable, verified snapshot covers: the snapshot is verified
 * (its chain too) and made durable (file and directory synced) before any segment below it is
 * deleted, and only whole sealed segments below it go. A crash at any step leaves a log that
 * reopens to the same state (the snapshot, or the log, still holds every record); the next
 * compaction finishes the job. Compactions and segment deletions run one at a time, in the order
 * asked: a call made while one runs waits for it.
 */
export class Compactor {
  private readonly wal: Wal;
  private readonly state: StateKeeper;
  private readonly storage: Storage;
  private readonly options: CompactionOptionValues;
  private readonly clock: () => number;
  private readonly leases: CompactorInit['leases'];
  private running: Promise<unknown> = Promise.resolve();
  private lastStart: number | undefined;
  private lastScan: Redundancy | undefined;

  constructor(init: CompactorInit) {
    this.wal = init.wal;
    this.state = init.state;
    this.storage = init.storage;
    this.options = init.options;
    this.clock = init.clock ?? Date.now;
    this.leases = init.leases;
  }

  /** When the last compaction that was not a dry run started (by the clock); undefined before the first. */
  get lastStartedMs(): number | undefined {
    return this.lastStart;
  }

  /**
   * Compacts the log (see the class), or for `dryRun` reports what a compaction now would reclaim
   * and the redundancy of the retained log, changing nothing.
   *
   * Rejects with the errors of writing a snapshot (`WAL_NO_SPACE`, `WAL_IO_ERROR`, the view's
   * failure), of appending the checkpoint (`WAL_READ_ONLY`, `WAL_NO_SPACE`, ...), of deleting
   * segments (`WAL_IO_ERROR`), `WAL_CORRUPTION` when the snapshot just written fails to verify
   * (nothing is deleted then), and `WAL_CLOSED`; with `aggressive`, also with those of
   * `compactKeys` (`RangeError` for a threshold outside 0..100).
   */
  compact(request: CompactRequest = {}): Promise<CompactionResult> {
    const threshold = request.thresholdPercent;
    if (threshold !== undefined && !(Number.isFinite(threshold) && threshold >= 0 && threshold <= 100)) {
      // Checked before anything runs: compactKeys would refuse it only after the segments were deleted.
      return Promise.reject(new RangeError(`request.thresholdPercent must be a number in 0..100, got ${String(threshold)}`));
    }
    return this.oneAtATime(async () => {
      const started = this.clock();
      const result = request.dryRun === true ? await this.dryRun(request) : await this.compactNow(request);
      if (request.aggressive !== true) return result;
      // After the deletion, so that only the segments the log keeps are rewritten; none at or
      // after the lowest standing lease, which a follower still reads as stored.
      const standing = this.plan(this.wal.highWatermark + 1).standings.filter((lease) => lease.lapse === undefined);
      const belowOffset = standing.length === 0 ? undefined : Math.min(...standing.map((lease) => lease.fromOffset));
      const keyCompaction = await compactKeys(this.state, this.wal, { thresholdPercent: request.thresholdPercent, dryRun: request.dryRun, clock: this.clock, belowOffset });
      return { ...result, keyCompaction, durationMs: this.clock() - started };
    });
  }

  /**
   * Deletes the sealed segments whose records all lie below `offset` (never the active one; no
   * retention: the caller named the offset). Refused with `WalError` `WAL_NOT_COVERED` when the
   * newest full or incremental snapshot (verified, made durable) does not hold every record of
   * those segments, unless `force`: then the view cannot be rebuilt after a restart
   * (`WAL_STATE_LOST`) until a snapshot covering the new first offset is restored. An offset at or
   * below the first retained one deletes nothing: the trim point only moves forward.
   *
   * Rejects also with `WAL_IO_ERROR` and `WAL_CLOSED`; `RangeError` for an offset that is not a
   * non-negative integer.
   */
  deleteSegmentsBefore(offset: number, options: { readonly force?: boolean | undefined } = {}): Promise<SegmentDeletionResult> {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be a non-negative integer, got ${String(offset)}`);
    return this.oneAtATime(async () => {
      const plan = segmentsBelow(this.wal.listSegments(), offset);
      if (plan.segmentCount === 0) return { segmentsDeleted: 0, bytesReclaimed: 0, firstOffset: this.wal.firstOffset };
      if (options.force !== true) {
        const newest = this.newestStateSnapshot();
        const cover = newest === undefined ? undefined : await this.durableVerified(newest);
        if (cover === undefined || cover.walOffset < plan.trimOffset) throw notCovered(offset, plan, newest, cover !== undefined);
      }
      const deleted = await this.deleteSegments(plan);
      return { segmentsDeleted: deleted.segmentsDeleted, bytesReclaimed: deleted.bytesReclaimed, firstOffset: this.wal.firstOffset };
    });
  }

  /**
   * Bytes a compaction now would delete: the sealed segments retention does not keep (a
   * compaction snapshots at the high watermark, so every sealed segment is covered). From
   * counters only; no disk access.
   */
  reclaimableBytes(): number {
    return this.plan(this.wal.highWatermark + 1).plan.bytes;
  }

  /**
   * How each follower's retention lease stands now against its caps, and what it holds back from a
   * compaction now (one at the high watermark). From counters only; no disk access.
   */
  leaseStandings(): readonly LeaseStanding[] {
    return this.plan(this.wal.highWatermark + 1).standings;
  }

  /**
   * Counts the records of the retained log (up to the high watermark now) that a snapshot makes
   * redundant: a keyed put at offset o is live when the view's entry for its key has offset o,
   * else superseded; every delete is redundant (its effect is in any later snapshot); keyless
   * records, checkpoints and flushes are plain log data and count as live. Reads the log in
   * bounded batches. Rejects with the errors of `Wal.read`.
   */
  async redundancy(): Promise<Redundancy> {
    await this.state.caughtUp();
    const view = this.state.captureView();
    try {
      let next = this.wal.firstOffset;
      let recordCount = 0;
      let redundantCount = 0;
      const counts = Object.fromEntries(RECORD_TYPE_NAMES.map((name) => [name, 0])) as Record<RecordType, number>;
      // Transactions are judged against the view's table as it is when each PREPARE is reached
      // (as key compaction does): one that ends during the scan may count either way.
      const judge = {
        appliedTxn: (id: Uint8Array) => this.state.appliedTxn(id),
        latestOffsetOfRange: (bytes: Uint8Array, start: number, end: number) => view.get(bytes.subarray(start, end))?.offset ?? -1,
      };
      while (next < view.nextOffset) {
        const records = await this.wal.read(next, { limit: Math.min(REDUNDANCY_READ_RECORDS, view.nextOffset - next) });
        if (records.length === 0) break;
        for (const record of records) {
          recordCount++;
          counts[record.type]++;
          if (record.key === undefined) continue;
          if (record.type === 'delete' || record.type === 'abort') redundantCount++;
          else if (record.type === 'put' && view.get(record.key)?.offset !== record.offset) redundantCount++;
          else if (record.type === 'prepare' && judgePrepare(judge, record).isRedundant) redundantCount++;
        }
        next = records[records.length - 1]!.offset + 1;
      }
      const scan = { recordCount, redundantCount, ratio: recordCount === 0 ? 0 : redundantCount / recordCount, countsByType: counts, scannedMs: this.clock() };
      this.lastScan = scan;
      return scan;
    } finally {
      view.release();
    }
  }

  /**
   * The last {@link redundancy} scan (a dry run's), undefined before the first: what GetStats
   * reports of the record counts, so that it never reads the log itself.
   */
  get lastRedundancyScan(): Redundancy | undefined {
    return this.lastScan;
  }

  /** Resolves once no compaction or segment deletion runs or waits (whatever their outcome). */
  idle(): Promise<void> {
    return this.running.then(() => undefined);
  }

  /**
   * Runs `run` in the queue of compactions and segment deletions: none runs meanwhile. A snapshot
   * of the state at an earlier point (point-in-time-replays.ts) is written so: key compaction reads
   * the oldest snapshot's offset when it starts and drops tombstones below it, and a snapshot
   * older than that, written during it, could be a rebuild's start the compaction did not allow for.
   */
  exclusive<T>(run: () => Promise<T>): Promise<T> {
    return this.oneAtATime(run);
  }

  private oneAtATime<T>(run: () => Promise<T>): Promise<T> {
    const result = this.running.then(run, run);
    this.running = result.catch(() => undefined);
    return result;
  }

  private plan(coverOffset: number): LeasedDeletionPlan {
    const leases = this.leases;
    const rules = { ...this.options, leaseMaxBytes: leases?.rules.leaseMaxBytes ?? 0, leaseMaxAgeMs: leases?.rules.leaseMaxAgeMs ?? 0 };
    return planLeasedDeletion(this.wal.listSegments(), coverOffset, this.clock(), rules, leases?.current() ?? []);
  }

  private async dryRun(request: CompactRequest): Promise<CompactionResult> {
    const started = this.clock();
    const head = await this.reusableSnapshot(request);
    const coverOffset = head?.walOffset ?? this.wal.highWatermark + 1;
    const leased = this.plan(coverOffset);
    const { plan } = leased;
    const { ratio, countsByType } = await this.redundancy();
    const snapshots = listSnapshots(this.storage, this.state.snapshotDir).snapshots;
    const created = head === undefined ? 1 : 0;
    const pruned = prunableSnapshots(snapshots, plan.segmentCount > 0 ? plan.trimOffset : this.wal.firstOffset, this.options.keepSnapshots).length;
    return {
      isDryRun: true,
      snapshotsCreated: created,
      segmentsDeleted: plan.segmentCount,
      bytesReclaimed: plan.bytes,
      snapshotsDeleted: pruned,
      totalSnapshots: snapshots.length + created - pruned,
      walSegments: plan.segmentsLeft,
      snapshotId: head?.id,
      snapshotOffset: coverOffset,
      checkpointOffset: undefined,
      firstOffset: plan.segmentCount > 0 ? plan.trimOffset : this.wal.firstOffset,
      redundancyRatio: ratio,
      recordCounts: countsByType,
      keyCompaction: undefined,
      ...leaseFigures(leased),
      durationMs: this.clock() - started,
    };
  }

  private async compactNow(request: CompactRequest): Promise<CompactionResult> {
    const started = this.clock();
    this.lastStart = started;
    let snapshot: SnapshotInfo | undefined = await this.reusableSnapshot(request);
    let snapshotsCreated = 0;
    if (snapshot === undefined) {
      const created = await this.state.createSnapshot({ chunkBytes: COMPACTION_SNAPSHOT_CHUNK_BYTES });
      snapshotsCreated = 1;
      // The file was fsynced and renamed, its directory synced: verify it before trusting it with the log.
      snapshot = await this.durableVerified(created);
      if (snapshot === undefined) {
        throw new WalError('WAL_CORRUPTION', `the snapshot ${created.id} just written fails to verify; no segment was deleted`, {
          snapshotId: created.id,
          path: created.path,
        });
      }
    }
    const checkpointOffset = (await this.isNamedByLastCheckpoint(snapshot)) ? undefined : await this.appendCheckpoint(snapshot);
    const leased = this.plan(snapshot.walOffset);
    const { plan } = leased;
    const deleted = plan.segmentCount === 0 ? { segmentsDeleted: 0, bytesReclaimed: 0 } : await this.deleteSegments(plan);
    const snapshotsDeleted = this.pruneSnapshots();
    return {
      isDryRun: false,
      snapshotsCreated,
      segmentsDeleted: deleted.segmentsDeleted,
      bytesReclaimed: deleted.bytesReclaimed,
      snapshotsDeleted,
      totalSnapshots: listSnapshots(this.storage, this.state.snapshotDir).snapshots.length,
      walSegments: this.wal.listSegments().length,
      snapshotId: snapshot.id,
      snapshotOffset: snapshot.walOffset,
      checkpointOffset,
      firstOffset: this.wal.firstOffset,
      redundancyRatio: undefined,
      recordCounts: undefined,
      keyCompaction: undefined,
      ...leaseFigures(leased),
      durationMs: this.clock() - started,
    };
  }

  /** The newest full or incremental snapshot, by id (its header only). */
  private newestStateSnapshot(): SnapshotInfo | undefined {
    return this.state.snapshotSummary().newest;
  }

  /**
   * The newest full or incremental snapshot when it is still at the head of the log (nothing but
   * checkpoints after it up to the high watermark) and verifies, made durable; undefined when a
   * new one must be written (or `forceSnapshot`).
   */
  private async reusableSnapshot(request: CompactRequest): Promise<SnapshotInfo | undefined> {
    if (request.forceSnapshot === true) return undefined;
    const newest = this.newestStateSnapshot();
    if (newest === undefined || newest.walOffset < this.wal.firstOffset) return undefined;
    const end = this.wal.highWatermark + 1;
    if (newest.walOffset > end || end - newest.walOffset > HEAD_CHECK_RECORDS) return undefined;
    if (newest.walOffset < end) {
      const after = await this.wal.read(newest.walOffset, { limit: end - newest.walOffset });
      if (after.length !== end - newest.walOffset || after.some((record) => record.type !== 'checkpoint')) return undefined;
    }
    return this.durableVerified(newest);
  }

  /** True when the records after `snapshot` are checkpoints and the last of them names it. */
  private async isNamedByLastCheckpoint(snapshot: SnapshotInfo): Promise<boolean> {
    const end = this.wal.highWatermark + 1;
    if (snapshot.walOffset >= end || end - snapshot.walOffset > HEAD_CHECK_RECORDS) return false;
    const after = await this.wal.read(snapshot.walOffset, { limit: end - snapshot.walOffset });
    const last = after.at(-1);
    if (last === undefined || after.some((record) => record.type !== 'checkpoint')) return false;
    return decodeCheckpointValue(last.value)?.snapshotId === snapshot.id;
  }

  private async appendCheckpoint(snapshot: SnapshotInfo): Promise<number> {
    const { firstOffset } = await this.wal.append([{ type: 'checkpoint', value: encodeCheckpointValue(snapshot.id) }]);
    return firstOffset;
  }

  /**
   * `snapshot` once its chain verifies and its file and directory are synced (a listed file may
   * be one whose rename a crashed process never made durable); undefined when it fails to verify.
   */
  private async durableVerified(snapshot: SnapshotInfo): Promise<SnapshotInfo | undefined> {
    const verified = await verifySnapshot(this.storage, snapshot.path);
    if (!verified.ok) return undefined;
    try {
      for (const link of verified.chain) {
        const file = this.storage.open(link.path, 'read');
        try {
          file.datasync();
        } finally {
          file.close();
        }
      }
      this.storage.syncDir(this.state.snapshotDir);
    } catch (error) {
      throw walErrorFromStorage(error, `syncing snapshot ${snapshot.id}`, { snapshotId: snapshot.id });
    }
    return snapshot;
  }

  /**
   * Deletes the segments of `plan` oldest first, one `Wal.deleteSegmentsBefore` each with a turn
   * of the event loop between: unlinking a large file blocks for milliseconds, and appends waiting
   * behind a whole plan of them would stall; each deletion also syncs the directory, so the log
   * loses its oldest segment first on any file system.
   */
  private async deleteSegments(plan: SegmentDeletionPlan): Promise<{ segmentsDeleted: number; bytesReclaimed: number }> {
    // The snapshot that covers these segments holds the view up to the high watermark, which under
    // `none` (and `interval`, between syncs) is only written: should a power cut take the unsynced
    // end of the log after the segments are gone, the snapshot would lie beyond the log's end (set
    // aside at the open) and nothing would hold the state of the records deleted.
    await this.wal.sync();
    let segmentsDeleted = 0;
    let bytesReclaimed = 0;
    for (const segment of this.wal.listSegments().slice(0, plan.segmentCount)) {
      if (segment.nextOffset > plan.trimOffset) break;
      const deleted = await this.wal.deleteSegmentsBefore(segment.nextOffset);
      segmentsDeleted += deleted;
      if (deleted > 0) bytesReclaimed += segment.sizeBytes;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { segmentsDeleted, bytesReclaimed };
  }

  /** Deletes the snapshots {@link prunableSnapshots} names; a file that cannot be deleted stays for the next compaction. */
  private pruneSnapshots(): number {
    const dir = this.state.snapshotDir;
    const prunable = prunableSnapshots(listSnapshots(this.storage, dir).snapshots, this.wal.firstOffset, this.options.keepSnapshots);
    let deleted = 0;
    for (const info of prunable) {
      try {
        this.storage.unlink(snapshotPath(dir, info.id));
        deleted++;
      } catch {
        // Kept: an old snapshot costs disk, never correctness.
      }
    }
    if (deleted > 0) {
      try {
        this.storage.syncDir(dir);
      } catch {
        // The unlinks may come back after a power cut; the next compaction prunes them again.
      }
    }
    return deleted;
  }
}

/** The lease fields of a {@link CompactionResult}. */
function leaseFigures(leased: LeasedDeletionPlan): Pick<CompactionResult, 'leaseHeldSegments' | 'leaseHeldBytes' | 'leaseHolders'> {
  return { leaseHeldSegments: leased.heldSegments, leaseHeldBytes: leased.heldBytes, leaseHolders: leased.holders };
}

function notCovered(offset: number, plan: SegmentDeletionPlan, newest: SnapshotInfo | undefined, isVerified: boolean): WalError {
  const why =
    newest === undefined
      ? 'there is no full or incremental snapshot'
      : isVerified
        ? `the newest snapshot ${newest.id} holds the records below offset ${newest.walOffset} only`
        : `the newest snapshot ${newest.id} fails to verify`;
  const coveredBelow = newest !== undefined && isVerified ? newest.walOffset : undefined;
  return new WalError(
    'WAL_NOT_COVERED',
    `deleting the segments below offset ${offset} would remove records up to offset ${plan.trimOffset - 1} that no snapshot covers: ${why}. ` +
      'Take a snapshot first (wald snapshot create, or wald compact), or force the deletion',
    { offset, snapshotId: newest?.id, snapshotOffset: newest?.walOffset, coveredBelow },
  );
}
