import { LRUCache } from 'lru-cache';
import { StorageError, type Storage, type StorageFile } from '../storage/storage.js';
import type { Segment } from './segment.js';
import { walErrorFromStorage } from './storage-errors.js';

/**
 * The owner of the segments' open files: every read of a segment gets its file here, so that at
 * most `maxOpenSegmentFiles` sealed segments keep a file open (a log of thousands of segments
 * would otherwise die of `EMFILE`). The least recently read is closed first; the active segment's
 * file, the writer's, is never closed here.
 *
 * Eviction closes a file only once no read in flight uses it (`Segment.closeWhenIdle`): a file
 * closed under a read could have its fd number reused by another file. So briefly more files may be
 * open than the limit: at most one more per concurrent read. A read opens the file again as needed,
 * but never that of a deleted segment.
 */
export class SegmentFiles {
  private readonly sealed: LRUCache<Segment, Segment>;

  /** `activeSegment` tells which segment the writer owns now. */
  constructor(
    private readonly storage: Storage,
    maxOpenSegmentFiles: number,
    private readonly activeSegment: () => Segment,
  ) {
    this.sealed = new LRUCache<Segment, Segment>({ max: maxOpenSegmentFiles, dispose: (segment) => evict(segment) });
  }

  /**
   * Starts a read of `segment`: returns its open file, to be used until `segment.release()`, or
   * undefined when the segment was deleted (the caller reports `WAL_OFFSET_COMPACTED`).
   *
   * Throws `WalError` `WAL_IO_ERROR` when the file cannot be opened (the read is then already
   * released).
   */
  acquire(segment: Segment): StorageFile | undefined {
    if (!segment.acquire()) return undefined;
    try {
      if (segment !== this.activeSegment() && this.sealed.get(segment) === undefined) this.sealed.set(segment, segment);
      return segment.openFile(this.storage);
    } catch (error) {
      segment.release();
      if (!(error instanceof StorageError)) throw error;
      throw walErrorFromStorage(error, `opening ${segment.name} failed`, { segment: segment.name });
    }
  }

  /**
   * Tells that the writer sealed `segment` (rotated to the next): its file, still the writer's
   * open one, now counts against the limit like any other sealed segment's.
   */
  seal(segment: Segment): void {
    this.sealed.set(segment, segment);
  }

  /** Deletes `segment` (compaction): it is never opened again; its file closes after the last read. */
  delete(segment: Segment): void {
    segment.markDeleted();
    this.sealed.delete(segment);
  }
}

/** Closes an evicted segment's file when idle; never throws, since it runs inside another segment's read or a rotation. */
function evict(segment: Segment): void {
  try {
    segment.closeWhenIdle();
  } catch {
    // A failed close(2) still frees the fd on Linux, and a sealed segment was synced at rotation:
    // nothing is lost, and the read or rotation that evicted it must not fail for it.
  }
}
