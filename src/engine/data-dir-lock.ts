import { dirname, resolve as resolvePath } from 'node:path';
import { WalError } from '../errors.js';
import { StorageError, type Storage, type StorageLock } from '../storage/storage.js';
import { walErrorFromStorage } from './storage-errors.js';

/**
 * Takes the exclusive lock of data directory `dir` (the `LOCK` file of the storage port): the one
 * way the log, the offline tools and a restore keep two processes out of one directory.
 *
 * Throws `WalError` `WAL_LOCKED` (details `dir`, `holder`) when a live process holds it, and the
 * storage failure as `WAL_IO_ERROR` / `WAL_NO_SPACE` (`what` says what was being done) otherwise.
 */
export function lockDataDir(storage: Storage, dir: string, what: string): StorageLock {
  try {
    return storage.lock(dir);
  } catch (error) {
    throw lockFailure(error, dir, what);
  }
}

/**
 * Creates data directory `dir` when it is missing, its entry made durable in its parent (a new
 * directory must survive a power cut as well as the files in it), then takes its lock (see
 * {@link lockDataDir}, which says what it throws).
 */
export function createAndLockDataDir(storage: Storage, dir: string, what: string): StorageLock {
  try {
    const isNew = !storage.exists(dir);
    storage.mkdirp(dir);
    if (isNew) storage.syncDir(dirname(resolvePath(dir)));
    return storage.lock(dir);
  } catch (error) {
    throw lockFailure(error, dir, what);
  }
}

function lockFailure(error: unknown, dir: string, what: string): unknown {
  if (error instanceof TypeError || error instanceof RangeError) return error;
  if (error instanceof StorageError && error.code === 'ELOCKED') {
    return new WalError('WAL_LOCKED', `the data directory ${dir} is in use by ${error.holder ?? 'another process'}`, { dir, holder: error.holder });
  }
  return walErrorFromStorage(error, what, { dir });
}
