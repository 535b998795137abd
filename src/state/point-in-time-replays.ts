import type { Wal } from '../engine/wal.js';
import { WalError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { replayToPoint, walPointInTimeLog, type PointInTime, type PointInTimeState } from './point-in-time.js';
import { writeSnapshot, type WrittenSnapshot } from './snapshot-writer.js';

/** Default of `max_point_in_time_builds`. */
export const DEFAULT_MAX_POINT_IN_TIME_BUILDS = 2;

/** What {@link PointInTimeReplays} works with. */
export interface PointInTimeReplaysInit {
  /** The live log, read up to its high watermark while appends go on. */
  readonly wal: Wal;
  /** The file-system port of the snapshot files. */
  readonly storage: Storage;
  /** The snapshot directory of the live view (resolved). */
  readonly snapshotDir: string;
  /** Cap on each state built (`max_state_bytes`, the live view's cap). */
  readonly maxStateBytes: number;
  /** Ended transactions each state built remembers (`txn_max_ended`, the live view's). */
  readonly txnMaxEnded: number;
  /** States built at once at most (`max_point_in_time_builds`); more are refused. */
  readonly maxBuilds: number;
  /**
   * Runs a snapshot write of an earlier state while no compaction runs (`Compactor.exclusive`):
   * see {@link PointInTimeReplays.snapshotAt}.
   */
  readonly exclusive: <T>(run: () => Promise<T>) => Promise<T>;
  /** Clock in ms for durations; tests inject one. */
  readonly clock?: (() => number) | undefined;
}

/** A snapshot of the state at a point in time, and how that state was built. */
export interface PointInTimeSnapshot {
  readonly built: PointInTimeState;
  readonly written: WrittenSnapshot;
}

/**
 * The states at points in time a server builds for its clients (StateAt): each a fresh state of
 * its own, built from the snapshots and the live log (point-in-time.ts), never touching the live
 * view. At most `maxBuilds` are built at once, each within `maxStateBytes`, so their memory is
 * bounded by `maxBuilds * maxStateBytes` on top of the live view's; a build beyond the limit is
 * refused at once rather than queued (a client retries; a queue would hold requests, and their
 * deadlines, without bound).
 */
export class PointInTimeReplays {
  private running = 0;

  constructor(private readonly init: PointInTimeReplaysInit) {
    if (!Number.isSafeInteger(init.maxBuilds) || init.maxBuilds < 1) throw new RangeError(`init.maxBuilds must be a positive integer, got ${init.maxBuilds}`);
  }

  /** States being built now. */
  get buildCount(): number {
    return this.running;
  }

  /**
   * The state at `point` (see `replayToPoint`; undefined: the end of the log). Rejects with `WalError` `WAL_TOO_MANY_BUILDS`
   * (details `configKey`, `limit`) when `maxBuilds` are being built, and with the errors of
   * `replayToPoint` (`WAL_POINT_IN_TIME_UNAVAILABLE`, `WAL_OFFSET_OUT_OF_RANGE`, `WAL_STATE_FULL`,
   * the log's read errors).
   */
  stateAt(point: PointInTime | undefined): Promise<PointInTimeState> {
    return this.oneBuild(() => this.build(point));
  }

  /**
   * Builds the state at `point` and writes a full snapshot of it into the snapshot directory
   * (durable when this resolves), all while no compaction runs (`exclusive`). The snapshot is as
   * of the point's offset, so it sorts among the others by that offset: recovery, compaction's
   * reuse and incrementals pick the newest snapshot by offset, so an older one is only a fallback
   * (it is a true state of the log, as every snapshot is), and compaction prunes it as any other
   * once it is below the first retained offset and not among the newest kept (docs/point-in-time.md).
   * Rejects as {@link stateAt} does, with `WAL_POINT_IN_TIME_UNAVAILABLE` (details `atOffset`,
   * `absentOffsets`) when the state built is not exact (key compaction removed records of its
   * range), and with the disk's errors (`WAL_NO_SPACE`, `WAL_IO_ERROR`).
   */
  snapshotAt(point: PointInTime | undefined, options: { readonly compress?: boolean | undefined } = {}): Promise<PointInTimeSnapshot> {
    return this.oneBuild(() =>
      this.init.exclusive(async () => {
        const built = await this.build(point);
        if (built.absentOffsets > 0) {
          // A snapshot is a true state of the log: one missing what key compaction dropped would be
          // loaded, served and restored as exact, and builds from it would report no absent offset.
          throw new WalError(
            'WAL_POINT_IN_TIME_UNAVAILABLE',
            `the state as of offset ${built.nextOffset} is not exact (${built.absentOffsets} offsets in its replayed range were removed by key compaction): no snapshot of it is written; a snapshot taken before the key compaction holds it`,
            { atOffset: built.nextOffset, absentOffsets: built.absentOffsets, firstOffset: this.init.wal.firstOffset },
          );
        }
        const written = await writeSnapshot(this.init.storage, this.init.snapshotDir, built.state.captureView(), { type: 'full' }, { compress: options.compress, now: this.init.clock, txns: built.txns.capture() });
        return { built, written };
      }),
    );
  }

  private build(point: PointInTime | undefined): Promise<PointInTimeState> {
    const { wal, storage, snapshotDir, maxStateBytes, txnMaxEnded } = this.init;
    return replayToPoint({ log: walPointInTimeLog(wal), storage, snapshotDir, maxStateBytes, txnMaxEnded }, { to: point });
  }

  private async oneBuild<T>(run: () => Promise<T>): Promise<T> {
    if (this.running >= this.init.maxBuilds) {
      throw new WalError(
        'WAL_TOO_MANY_BUILDS',
        `${this.running} states at a point in time are being built, the most max_point_in_time_builds allows (${this.init.maxBuilds}); retry later`,
        { configKey: 'max_point_in_time_builds', limit: this.init.maxBuilds },
      );
    }
    this.running++;
    try {
      return await run();
    } finally {
      this.running--;
    }
  }
}
