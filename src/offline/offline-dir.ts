import { NodeStorage } from '../storage/node-storage.js';
import type { Storage, StorageLock } from '../storage/storage.js';
import { invalidArgument } from '../errors.js';
import { lockDataDir } from '../engine/data-dir-lock.js';

/** How an offline tool opens a data directory. */
export interface OfflineDirOptions {
  /**
   * Read the directory as it is without taking its lock: allowed while a server holds it, and
   * nothing is written (not even `LOCK`). A live log may change under the reader.
   */
  readonly readOnly?: boolean | undefined;
  /** The file system (tests pass their own); default `NodeStorage`. */
  readonly storage?: Storage | undefined;
}

/**
 * A data directory opened by an offline tool (`wald verify`, `dump`, `repair`): it holds the same
 * directory lock `Wal.open` takes, so no server can open the log while the tool reads or cuts it,
 * and the tool is refused while a server holds it. With `readOnly` no lock is taken.
 */
export class OfflineDir {
  private constructor(
    readonly dir: string,
    readonly storage: Storage,
    private readonly lock: StorageLock | undefined,
  ) {}

  /**
   * Opens `dir`, which must exist (an offline tool never creates a log).
   *
   * Throws `WalError` `WAL_LOCKED` (details `dir`, `holder`) when a live process holds the
   * directory, `WAL_INVALID_ARGUMENT` (field `dataDir`) when there is no such directory,
   * `WAL_IO_ERROR` when the lock cannot be taken for another reason.
   */
  static open(dir: string, options: OfflineDirOptions = {}): OfflineDir {
    const storage = options.storage ?? new NodeStorage();
    if (!storage.exists(dir)) throw invalidArgument('dataDir', `no data directory at ${dir}`, { dir });
    if (options.readOnly === true) return new OfflineDir(dir, storage, undefined);
    return new OfflineDir(dir, storage, lockDataDir(storage, dir, `cannot lock ${dir}`));
  }

  /** True when the directory was opened without its lock. */
  get isReadOnly(): boolean {
    return this.lock === undefined;
  }

  /** Releases the lock (if held). */
  close(): void {
    this.lock?.release();
  }
}
