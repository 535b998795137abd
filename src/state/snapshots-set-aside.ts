/**
 * Snapshots whose state the log no longer has, moved out of the snapshot directory.
 */
import { basename, join } from 'node:path';
import { TRUNCATED_DIR } from '../engine/truncate-log-from.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import type { Storage } from '../storage/storage.js';
import { listSnapshots } from './snapshot-reader.js';

/**
 * Moves the snapshots of `snapshotDir` whose wal offset is above `offset` into
 * `<dataDir>/truncated/` (newest first, so that an incremental never outlives its base in the
 * snapshot directory; each rename made durable): their state holds records at or past `offset`
 * that the log does not have (cut off, or lost in a power cut under `sync_policy: none`), and the
 * log will give those offsets to other records. Left in place, such a snapshot would be loaded as
 * soon as the log grew past it again. Returns the paths they were moved to.
 *
 * Throws `WalError` `WAL_IO_ERROR` when a file cannot be moved.
 */
export function setAsideSnapshotsAbove(storage: Storage, dataDir: string, snapshotDir: string, offset: number): string[] {
  const above = listSnapshots(storage, snapshotDir).snapshots.filter((info) => info.walOffset > offset);
  if (above.length === 0) return [];
  const side = join(dataDir, TRUNCATED_DIR);
  const moved: string[] = [];
  try {
    storage.mkdirp(side);
    storage.syncDir(dataDir);
    for (const info of above.reverse()) {
      const to = join(side, basename(info.path));
      storage.rename(info.path, to);
      storage.syncDir(side);
      storage.syncDir(snapshotDir);
      moved.push(to);
    }
  } catch (error) {
    throw walErrorFromStorage(error, `moving snapshots above offset ${offset} out of ${snapshotDir}`, { dir: snapshotDir });
  }
  return moved;
}
