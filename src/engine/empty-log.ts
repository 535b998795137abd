import { WalError } from '../errors.js';
import { NodeStorage } from '../storage/node-storage.js';
import { createAndLockDataDir } from './data-dir-lock.js';
import { createSegmentFile, newFrameSeed } from './segment-file.js';
import { parseSegmentFileName } from './segment-name.js';
import { walErrorFromStorage } from './storage-errors.js';
import type { IoStats } from './types.js';
import { resolveWalOptions, type WalOptions } from './wal-options.js';

/** What {@link createEmptyLog} takes: where (and through which storage), and the first offset. */
export interface EmptyLogOptions extends Pick<WalOptions, 'dir' | 'storage' | 'clock'> {
  /**
   * The offset the log starts at: its first record gets it. A log is named by its segments' base
   * offsets, so this is the name of its one, empty segment.
   */
  readonly baseOffset: number;
}

/**
 * Creates a log with no records whose next offset is `baseOffset`, in a directory that holds no
 * log yet: one empty segment named `baseOffset`, made durably as every segment is (temp file ->
 * header -> fdatasync -> rename -> directory fsync; a new directory's own entry synced too).
 * `Wal.open` then opens it as a log whose first and next offset are `baseOffset`. This is how a
 * snapshot is restored into a new data directory: the snapshot holds the state below
 * `baseOffset` (its wal offset), and the key-value view accepts a log that starts above 0 when a
 * snapshot covers its first offset.
 *
 * After a crash at any step the directory holds either no segment (an open makes a log at 0; a
 * leftover temp file is removed then) or the whole empty segment.
 *
 * Throws `RangeError` for a `baseOffset` that is not a non-negative safe integer, `WalError`
 * `WAL_INVALID_ARGUMENT` (field `dir`) when the directory holds a segment already, `WAL_LOCKED`
 * when another process holds it, and `WAL_IO_ERROR` / `WAL_NO_SPACE` when the disk fails.
 */
export function createEmptyLog(options: EmptyLogOptions): void {
  const { baseOffset } = options;
  if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) throw new RangeError(`options.baseOffset must be a non-negative safe integer, got ${String(baseOffset)}`);
  const resolved = resolveWalOptions({ dir: options.dir, storage: options.storage, clock: options.clock, preallocate: false }, () => new NodeStorage());
  const { storage, dir } = resolved;
  const lock = createAndLockDataDir(storage, dir, `cannot create a log in ${dir}`);
  try {
    const existing = storage.list(dir).find((name) => parseSegmentFileName(name) !== undefined);
    if (existing !== undefined) {
      throw new WalError('WAL_INVALID_ARGUMENT', `dir: ${dir} holds a log already (segment ${existing})`, { field: 'dir', dir, segment: existing });
    }
    const io: IoStats = { bytesWritten: 0, bytesRead: 0, writes: 0, reads: 0, fsyncs: 0 };
    const { file } = createSegmentFile(resolved, baseOffset, undefined, io, newFrameSeed());
    file.close();
  } catch (error) {
    throw walErrorFromStorage(error, `cannot create a log in ${dir}`, { dir });
  } finally {
    lock.release();
  }
}
