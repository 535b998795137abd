import { dirname } from 'node:path';
import type { Storage } from './storage.js';

/**
 * Writes a whole small file so that after a crash it is either absent (or as it was) or complete:
 * `tempPath` (removed first if a crash left it) -> write -> `fdatasync` -> rename over `path` ->
 * fsync of the directory. For index files, markers, side files, snapshots: anything a reader must
 * never find half written.
 *
 * Throws `StorageError`; a failed call may leave `tempPath` behind (crash debris, removed at open).
 */
export function writeFileDurably(storage: Storage, path: string, tempPath: string, bytes: Uint8Array): void {
  if (storage.exists(tempPath)) storage.unlink(tempPath);
  const file = storage.open(tempPath, 'create-new');
  try {
    file.writev([bytes], 0);
    file.datasync();
  } finally {
    file.close();
  }
  storage.rename(tempPath, path);
  storage.syncDir(dirname(path));
}
