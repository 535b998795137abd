import { join } from 'node:path';
import type { Storage, StorageFile } from '../storage/storage.js';
import { indexFileName, segmentFileName } from './segment-name.js';
import { SparseIndex } from './sparse-index.js';

/**
 * One segment file: what the log knows about it in memory (offsets, byte extent, sparse index) and
 * its open file, if any. The active segment is written by the writer; sealed ones are only read,
 * and `SegmentFiles` decides which of them keep a file open.
 *
 * Readers `acquire()` a segment around each read so that neither a compaction deleting it nor an
 * eviction from `SegmentFiles` closes the file under them (a closed fd number can be reused by
 * another file): the file closes when the last reader releases it.
 */
export class Segment {
  readonly name: string;
  readonly path: string;
  readonly indexPath: string;
  /** Offset after the last record (== baseOffset when empty). */
  nextOffset: number;
  /** Byte position just past the last frame. */
  dataEnd: number;
  firstTimestamp = -1;
  lastTimestamp = -1;
  /** Where the checksum of every frame of this segment starts (from its header; 0 in version 1). */
  frameSeed = 0;
  /**
   * True for a segment rewritten by key compaction (its header's `compacted` flag): its frames may
   * skip offsets, so readers step over the gaps, and `nextOffset` comes from the header, not from
   * the last frame. Only sealed segments are ever rewritten.
   */
  hasGaps = false;
  /** Bytes the file occupies (more than `dataEnd` while preallocated). */
  fileSize: number;
  private file: StorageFile | undefined;
  private readers = 0;
  private isDeleted = false;
  /** Evicted while read: close at the last release unless a read opens it again first. */
  private isClosePending = false;

  constructor(
    readonly dir: string,
    readonly baseOffset: number,
    readonly segmentId: string,
    dataEnd: number,
    fileSize: number,
    readonly index: SparseIndex = new SparseIndex(),
  ) {
    this.name = segmentFileName(baseOffset);
    this.path = join(dir, this.name);
    this.indexPath = join(dir, indexFileName(baseOffset));
    this.nextOffset = baseOffset;
    this.dataEnd = dataEnd;
    this.fileSize = fileSize;
  }

  /** Offsets the segment spans (its records, and for a compacted segment the gaps among them). */
  get recordCount(): number {
    return this.nextOffset - this.baseOffset;
  }

  /** Records one appended (or recovered) frame: extent, offsets, timestamps, sparse index. */
  noteFrame(position: number, alignedLength: number, baseOffset: number, count: number, timestamp: number, indexIntervalBytes: number): void {
    const last = this.index.lastPosition;
    if (last < 0 || position - last >= indexIntervalBytes) this.index.add(baseOffset, position, timestamp);
    if (this.firstTimestamp < 0) this.firstTimestamp = timestamp;
    this.lastTimestamp = timestamp;
    this.nextOffset = baseOffset + count;
    this.dataEnd = position + alignedLength;
    if (this.fileSize < this.dataEnd) this.fileSize = this.dataEnd;
  }

  /**
   * Forgets the frames from byte `position` on (cut off the file after a failed sync): the segment
   * ends there again, at offset `nextOffset`, its last frame stamped `lastTimestamp` (-1: none).
   */
  cutBack(position: number, nextOffset: number, lastTimestamp: number): void {
    this.index.truncate(position);
    this.dataEnd = position;
    this.fileSize = Math.min(this.fileSize, position);
    this.nextOffset = nextOffset;
    this.lastTimestamp = lastTimestamp;
    if (nextOffset === this.baseOffset) this.firstTimestamp = -1;
  }

  /** Gives the segment an already open file (the writer's). */
  attach(file: StorageFile): void {
    this.file = file;
  }

  /**
   * The open file (the writer's for the active segment), opening it read-only when it is closed.
   * Only for `SegmentFiles`, which bounds how many are open, and only between `acquire` and
   * `release`, so that a deleted segment is never opened again. Throws `StorageError`.
   */
  openFile(storage: Storage): StorageFile {
    if (this.readers === 0 || this.isDeleted) throw new Error(`segment ${this.name} opened without a read in progress`);
    this.isClosePending = false;
    this.file ??= storage.open(this.path, 'read');
    return this.file;
  }

  /** Closes the file now, or when the last read in progress releases it. */
  closeWhenIdle(): void {
    if (this.readers === 0) this.closeFile();
    else this.isClosePending = true;
  }

  /** Marks a read in progress; returns false if the segment is already deleted. */
  acquire(): boolean {
    if (this.isDeleted) return false;
    this.readers++;
    return true;
  }

  /** Ends a read started by `acquire`. */
  release(): void {
    this.readers--;
    if ((this.isDeleted || this.isClosePending) && this.readers === 0) this.closeFile();
  }

  /** True once compaction has removed the segment. */
  get deleted(): boolean {
    return this.isDeleted;
  }

  /** Marks the segment deleted; its file closes once the last reader releases it. */
  markDeleted(): void {
    this.isDeleted = true;
    if (this.readers === 0) this.closeFile();
  }

  /** Closes the file (at log close). */
  closeFile(): void {
    const file = this.file;
    this.file = undefined;
    this.isClosePending = false;
    file?.close();
  }
}
