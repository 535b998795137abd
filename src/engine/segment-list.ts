import type { Storage } from '../storage/storage.js';
import type { Segment } from './segment.js';
import { SegmentFiles } from './segment-files.js';

/**
 * The segments of a log, oldest first; the last one is the active segment. The list's one owner:
 * the writer adds a segment when it rotates, compaction removes the oldest, readers search it.
 * It also owns the segments' open files (`files`), bounded by `maxOpenSegmentFiles`.
 */
export class SegmentList {
  readonly files: SegmentFiles;
  private readonly segments: Segment[];

  /** `segments` is not empty: a log always has its active segment. */
  constructor(segments: readonly Segment[], storage: Storage, maxOpenSegmentFiles: number) {
    if (segments.length === 0) throw new RangeError('a log has at least its active segment');
    this.segments = [...segments];
    this.files = new SegmentFiles(storage, maxOpenSegmentFiles, () => this.active);
  }

  /** The oldest retained segment. */
  get first(): Segment {
    return this.segments[0]!;
  }

  /** The segment being written. */
  get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** How many segments the log has (the active one included). */
  get count(): number {
    return this.segments.length;
  }

  /** Oldest first. */
  [Symbol.iterator](): IterableIterator<Segment> {
    return this.segments[Symbol.iterator]();
  }

  /** The segment holding `offset` (the active one for offsets past the end), or undefined below the first. */
  find(offset: number): Segment | undefined {
    const segments = this.segments;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = segments[mid]!;
      if (offset < s.baseOffset) hi = mid - 1;
      else if (offset >= s.nextOffset && mid < segments.length - 1) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /** The first segment with a record stamped `timestampMs` or later, if any. */
  findByTimestamp(timestampMs: number): Segment | undefined {
    return this.segments.find((s) => s.lastTimestamp >= timestampMs && s.nextOffset > s.baseOffset);
  }

  /** True while `segment` is part of the log. */
  includes(segment: Segment): boolean {
    return this.segments.includes(segment);
  }

  /** The writer rotated: `segment` is the new active one, the old one is sealed. */
  add(segment: Segment): void {
    this.files.seal(this.active);
    this.segments.push(segment);
  }

  /**
   * Takes the oldest segment out of the log (compaction, after its file was unlinked). Reads in
   * flight in it finish; its file closes after the last of them. Never the active segment.
   */
  removeFirst(): Segment {
    if (this.segments.length < 2) throw new RangeError('the active segment is never removed');
    const segment = this.segments.shift()!;
    this.files.delete(segment);
    return segment;
  }

  /**
   * Puts `replacement` in the place of the sealed segment `old` (key compaction renamed its
   * rewritten file over the old one): reads from now on get the new file; reads in flight in `old`
   * finish on its open file, which closes after the last of them. Never the active segment.
   */
  replace(old: Segment, replacement: Segment): void {
    const i = this.segments.indexOf(old);
    if (i < 0 || i === this.segments.length - 1) throw new RangeError(`segment ${old.name} is not a sealed segment of the log`);
    this.segments[i] = replacement;
    this.files.delete(old);
  }

  /**
   * Puts `replacement` in the place of the active segment, which is empty (a follower took its
   * leader's segment of the same base offset, renamed over it). The old file closes after any read
   * in flight in it.
   */
  replaceActive(replacement: Segment): void {
    const old = this.active;
    if (old.nextOffset !== old.baseOffset || replacement.baseOffset !== old.baseOffset) throw new RangeError(`segment ${old.name} is not an empty active segment at ${replacement.baseOffset}`);
    this.segments[this.segments.length - 1] = replacement;
    old.markDeleted();
  }

    /** Bytes of segment files on disk (preallocated space included). */
  bytesOnDisk(): number {
    let bytes = 0;
    for (const segment of this.segments) bytes += segment.fileSize;
    return bytes;
  }

  /** At close: every file closes once the reads in flight in it are done. */
  closeAll(): void {
    for (const segment of this.segments) segment.markDeleted();
  }
}
