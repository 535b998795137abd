import { isWalError, WalError } from '../errors.js';
import type { StateKeeper } from '../state/state-keeper.js';

/**
 * `error` with the snapshot to install named in its details, when it is a `WAL_OFFSET_COMPACTED`
 * (a Read or TailWal below the first retained offset, or a tail that fell below it): `snapshotId`
 * and `snapshotOffset` of the newest full or incremental snapshot at or above `firstOffset`, from
 * which the log goes on. Anything else, and a snapshot directory that cannot be read or holds no
 * such snapshot, leaves the error as it is.
 */
export function withSnapshotToInstall(error: unknown, state: StateKeeper): unknown {
  if (!isWalError(error, 'WAL_OFFSET_COMPACTED')) return error;
  let newest;
  try {
    newest = state.snapshotSummary().newest;
  } catch {
    return error;
  }
  const firstOffset = error.details['firstOffset'];
  if (newest === undefined || typeof firstOffset !== 'number' || newest.walOffset < firstOffset) return error;
  return new WalError(
    error.code,
    `${error.message}: install snapshot ${newest.id} (offset ${newest.walOffset}) and read on from its offset`,
    { ...error.details, snapshotId: newest.id, snapshotOffset: newest.walOffset },
    { cause: error },
  );
}
