import { join } from 'node:path';
import { encodeEpochHistory, type EpochStart } from '../codec/epoch-history-file.js';
import { MAX_EPOCH } from '../codec/frame.js';
import { WalError } from '../errors.js';
import { writeFileDurably } from '../storage/durable-file.js';
import { NodeStorage } from '../storage/node-storage.js';
import { createAndLockDataDir } from './data-dir-lock.js';
import { createSegmentFile, newFrameSeed } from './segment-file.js';
import { EPOCHS_FILE, parseSegmentFileName, TEMP_SUFFIX } from './segment-name.js';
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
  /**
   * The checksum seed of the log's frames (a positive u32); default: a new random one. A follower
   * bootstrapping from its leader's snapshot passes its leader's (`Wal.frameSeed`), so that the
   * leader's frames check out in its segment.
   */
  readonly frameSeed?: number | undefined;
  /**
   * The epoch history to start with (a follower adopting its leader's, oldest first: epochs
   * increasing, 1 .. 2^48 - 1, start offsets non-decreasing). Entries starting after `baseOffset`
   * are left out (the frames that follow bring their epochs). Given, the log is marked
   * `replicated` (docs/format.md, "Epoch history").
   */
  readonly epochHistory?: readonly EpochStart[] | undefined;
  /** True when the caller holds the directory's lock already (and keeps it): no lock is taken. */
  readonly heldLock?: boolean | undefined;
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
 * With `epochHistory`, the history file is written (durably) before the segment: a crash between
 * the two leaves no segment, and the call can be made again.
 *
 * Throws `RangeError` for a `baseOffset` that is not a non-negative safe integer, a `frameSeed`
 * that is not a positive u32 or an `epochHistory` out of order, `WalError`
 * `WAL_INVALID_ARGUMENT` (field `dir`) when the directory holds a segment already, `WAL_LOCKED`
 * when another process holds it, and `WAL_IO_ERROR` / `WAL_NO_SPACE` when the disk fails.
 */
export function createEmptyLog(options: EmptyLogOptions): void {
  const { baseOffset } = options;
  if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) throw new RangeError(`options.baseOffset must be a non-negative safe integer, got ${String(baseOffset)}`);
  const { frameSeed, epochHistory } = options;
  if (frameSeed !== undefined && !(Number.isInteger(frameSeed) && frameSeed > 0 && frameSeed <= 0xffff_ffff)) {
    throw new RangeError(`options.frameSeed must be an integer in 1..2^32 - 1, got ${String(frameSeed)}`);
  }
  const entries = epochHistory === undefined ? undefined : checkEpochHistory(epochHistory).filter((entry) => entry.startOffset <= baseOffset);
  const resolved = resolveWalOptions({ dir: options.dir, storage: options.storage, clock: options.clock, preallocate: false }, () => new NodeStorage());
  const { storage, dir } = resolved;
  // A caller that holds the lock already (a snapshot restore, across all its steps) passes it.
  const lock = options.heldLock === true ? undefined : createAndLockDataDir(storage, dir, `cannot create a log in ${dir}`);
  try {
    const existing = storage.list(dir).find((name) => parseSegmentFileName(name) !== undefined);
    if (existing !== undefined) {
      throw new WalError('WAL_INVALID_ARGUMENT', `dir: ${dir} holds a log already (segment ${existing})`, { field: 'dir', dir, segment: existing });
    }
    if (entries !== undefined) {
      const path = join(dir, EPOCHS_FILE);
      writeFileDurably(storage, path, path + TEMP_SUFFIX, encodeEpochHistory({ entries, isReplicated: true }));
    }
    const io: IoStats = { bytesWritten: 0, bytesRead: 0, writes: 0, reads: 0, fsyncs: 0 };
    const { file } = createSegmentFile(resolved, baseOffset, undefined, io, frameSeed ?? newFrameSeed());
    file.close();
  } catch (error) {
    throw walErrorFromStorage(error, `cannot create a log in ${dir}`, { dir });
  } finally {
    lock?.release();
  }
}

function checkEpochHistory(entries: readonly EpochStart[]): readonly EpochStart[] {
  if (!Array.isArray(entries)) throw new TypeError('options.epochHistory must be an array');
  entries.forEach((entry, i) => {
    const previous = entries[i - 1];
    const isValid =
      Number.isSafeInteger(entry.epoch) &&
      entry.epoch >= 1 &&
      entry.epoch <= MAX_EPOCH &&
      Number.isSafeInteger(entry.startOffset) &&
      entry.startOffset >= 0 &&
      (previous === undefined || (entry.epoch > previous.epoch && entry.startOffset >= previous.startOffset));
    if (!isValid) throw new RangeError(`options.epochHistory[${i}] (epoch ${String(entry.epoch)} at ${String(entry.startOffset)}) is out of range or out of order`);
  });
  return entries;
}
