import { StorageError, type Storage } from '../storage/storage.js';

/** Bytes read at a time, so that progress moves and the event loop turns on large segments. */
const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Reads a whole file on the thread pool, a chunk at a time, calling `onBytes` with each chunk's
 * size. Segments are read whole (at most `segmentSizeBytes`, 64 MiB by default) because a damaged
 * frame is judged by the frames after it. Throws `StorageError`.
 */
export async function readWholeFile(storage: Storage, path: string, onBytes: (bytes: number) => void = () => {}): Promise<Buffer> {
  const file = storage.open(path, 'read');
  try {
    const size = file.size();
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = await file.read(buf.subarray(got), Math.min(CHUNK_BYTES, size - got), got);
      if (n === 0) break;
      got += n;
      onBytes(n);
    }
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    file.close();
  }
}

/** Bytes of a file; 0 when it is gone (a segment compacted away under a reader of a live log). */
export function sizeOrZero(storage: Storage, path: string): number {
  try {
    return storage.size(path);
  } catch (error) {
    if (error instanceof StorageError && error.code === 'ENOENT') return 0;
    throw error;
  }
}
