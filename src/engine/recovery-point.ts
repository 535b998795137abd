import { join } from 'node:path';
import {
  encodeRecoveryPoint,
  RECOVERY_POINT_FILE_BYTES,
  RECOVERY_POINT_SLOTS,
  type RecoveryPoint,
} from '../codec/recovery-point-file.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { StorageFile } from '../storage/storage.js';
import { RECOVERY_POINT_FILE, TEMP_SUFFIX } from './segment-name.js';
import type { IoStats } from './types.js';
import type { ResolvedWalOptions } from './wal-options.js';

/**
 * Keeps the recovery-point file (`RECOVERY`) up to date: after a sync moved the durable end, it
 * writes the new end into the older of the file's two slots and syncs the file, on the thread
 * pool, at most once per `recoveryPointIntervalMs`. Recovery trusts everything below the point
 * (damage there is corruption), including the last synced frames, which no later frame's sync lag
 * vouches for.
 *
 * The file is a hint that only ever errs on the safe side: a write lost in a crash leaves an older,
 * still true, point. Failures go to `onWarning`; the log does not depend on them.
 */
export class RecoveryPointWriter {
  private wanted: number;
  private written: number;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly options: ResolvedWalOptions,
    private readonly file: StorageFile,
    private sequence: number,
    durableNext: number,
    private readonly io: IoStats,
  ) {
    this.wanted = durableNext;
    this.written = durableNext;
  }

  /**
   * Opens the file (creating it durably when missing: temp -> sync -> rename -> directory sync),
   * continuing from `recovered`, the point recovery read. Returns undefined, with a warning, when
   * the file cannot be had (a full disk must not stop a log from opening).
   */
  static open(options: ResolvedWalOptions, recovered: RecoveryPoint | undefined, io: IoStats): RecoveryPointWriter | undefined {
    const { storage, dir } = options;
    const path = join(dir, RECOVERY_POINT_FILE);
    try {
      if (!storage.exists(path)) writeFileDurably(storage, path, path + TEMP_SUFFIX, Buffer.alloc(RECOVERY_POINT_FILE_BYTES));
      return new RecoveryPointWriter(options, storage.open(path, 'read-write'), recovered?.sequence ?? 0, recovered?.durableNext ?? 0, io);
    } catch (error) {
      options.onWarning('the recovery-point file cannot be written; recovery will know less of what was durable', error);
      return undefined;
    }
  }

  /** Every offset below `durableNext` is on stable storage now. */
  note(durableNext: number): void {
    if (durableNext <= this.wanted) return;
    this.wanted = durableNext;
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.writing !== undefined || this.timer !== undefined || this.wanted <= this.written) return;
    const now = this.options.clock();
    // A clock that stepped back must not hold the point back for as long as it stepped.
    const waitMs = now < this.lastWriteAt ? 0 : this.lastWriteAt + this.options.recoveryPointIntervalMs - now;
    if (waitMs > 0) {
      // Unreferenced: a point not yet written only makes recovery more cautious.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, waitMs);
      this.timer.unref();
      return;
    }
    this.write();
  }

  private write(): void {
    const point = { sequence: this.sequence + 1, durableNext: this.wanted };
    this.lastWriteAt = this.options.clock();
    try {
      this.file.writev([encodeRecoveryPoint(point)], RECOVERY_POINT_SLOTS[point.sequence % 2]!);
    } catch (error) {
      this.options.onWarning('writing the recovery point failed', error);
      return;
    }
    this.io.writes++;
    this.writing = this.file.datasyncAsync().then(
      () => {
        this.io.fsyncs++;
        this.sequence = point.sequence;
        this.written = point.durableNext;
      },
      (error: unknown) => this.options.onWarning('syncing the recovery point failed', error),
    );
    void this.writing.finally(() => {
      this.writing = undefined;
      this.schedule();
    });
  }

  /** Stops writing; resolves once a write in flight is done and the file is closed. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    try {
      this.file.close();
    } catch {
      // Nothing was pending on it.
    }
  }
}
