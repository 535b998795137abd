/**
 * Snapshots whose state the log no longer has, set aside in the snapshot directory.
 */
import { walErrorFromStorage } from '../engine/storage-errors.js';
import type { Storage } from '../storage/storage.js';
import type { SnapshotInfo } from './snapshot-info.js';
import { listSnapshots } from './snapshot-reader.js';

/**
 * The suffix a set-aside snapshot file gets (`<id>.snap.set-aside`): no listing, load, prune or
 * GetSnapshot takes it for a snapshot any more, and its bytes stay for whoever wants to look.
 */
export const SET_ASIDE_SUFFIX = '.set-aside';

/**
 * Sets aside the snapshots of `snapshotDir` whose wal offset is above `offset`, renaming each to
 * `<name>.set-aside` in the same directory (a rename that never crosses file systems, wherever
 * `snapshot_dir` points), newest first so that an incremental never outlives its base, each
 * rename made durable: their state holds records at or past `offset` that the log does not have
 * (cut off, or lost in a power cut under `sync_policy: none`), and the log will give those offsets
 * to other records. Left as they were, such a snapshot would be loaded as soon as the log grew
 * past it again. Returns the paths they were renamed to.
 *
 * Throws `WalError` `WAL_IO_ERROR` when a file cannot be renamed.
 */
export function setAsideSnapshotsAbove(storage: Storage, snapshotDir: string, offset: number): string[] {
  const above = listSnapshots(storage, snapshotDir).snapshots.filter((info) => info.walOffset > offset);
  const renamed: string[] = [];
  try {
    for (const info of above.reverse()) {
      const to = info.path + SET_ASIDE_SUFFIX;
      storage.rename(info.path, to);
      storage.syncDir(snapshotDir);
      renamed.push(to);
    }
  } catch (error) {
    throw walErrorFromStorage(error, `setting aside the snapshots above offset ${offset} in ${snapshotDir}`, { dir: snapshotDir });
  }
  return renamed;
}

/**
 * Whether a cut of a log that starts at `firstOffset` at `offset` (setting aside the snapshots
 * above it) would leave its key-value view impossible to rebuild: the log is compacted, and every
 * full or incremental snapshot that reaches its first offset lies above the cut (point snapshots
 * hold one key and never rebuild the view). Returns the lowest offset a cut may go down to then
 * (the lowest such snapshot's), else undefined. `wald repair` and a follower's divergence cut both
 * refuse such a cut.
 */
export function cutStrandingView(snapshots: readonly SnapshotInfo[], firstOffset: number, offset: number): number | undefined {
  if (firstOffset === 0) return undefined;
  const reaching = snapshots.filter((info) => info.type !== 'point' && info.walOffset >= firstOffset);
  if (reaching.length === 0 || reaching.some((info) => info.walOffset <= offset)) return undefined;
  return Math.min(...reaching.map((info) => info.walOffset));
}
