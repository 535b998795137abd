import { readFrameHeader, type FrameHeader } from '../codec/frame.js';
import type { Segment } from './segment.js';

/** One frame as the writer wrote it, with where it went. */
export interface RecentFrame {
  /** The frame's bytes as written (header, payload, padding). Shared: never to be changed. */
  readonly bytes: Buffer;
  readonly header: FrameHeader;
  /** The segment it was written into: the frame is served only while that segment is in the log. */
  readonly segment: Segment;
  /** Where in its segment it was written: `SEGMENT_HEADER_BYTES` for the segment's first frame. */
  readonly position: number;
}

/**
 * What one kept frame costs besides its bytes, counted against the budget: the entry, its header
 * object and the Buffer view (about 200 bytes in V8), so that a cache of small frames stays near
 * its size.
 */
const ENTRY_OVERHEAD_BYTES = 200;

/**
 * The newest frames of the log, kept in memory as the writer wrote them, so that the readers of
 * what was just appended (every tail, the state view, a follower's own view, frames-mode tails of
 * chained followers) get it without a read of the file and a checksum pass over bytes that never
 * left memory. Bounded by `tailCacheBytes` of frames (each counted with {@link ENTRY_OVERHEAD_BYTES}
 * more); the oldest go first, but the newest frame is kept even when it alone is larger. A reader
 * that is further behind reads the file, as before. A frame is kept as the writer had it: a small
 * one may be a slice of Node's shared 8 KiB buffer pool, and on a follower each is a view of the
 * message it arrived in, so the memory kept alive can exceed the bound: by up to one such message
 * (`replication.max_batch_bytes`) on a follower, and on a leader by up to a slab per kept frame
 * in the worst case (about 53 single-record frames share one when nothing is allocated between
 * them). Counting backing buffers whole made a follower's GC much dearer (docs/engine.md).
 *
 * The frames are consecutive: a frame that does not continue the last one (the writer cut frames
 * back after a failed sync and hands their offsets out again) starts the cache afresh, and
 * {@link cutFrom} forgets a cut explicitly. A frame is served only while the segment it was
 * written into is still in the log (`SegmentList.find` returns that very object): compaction
 * deleting a segment, or key compaction replacing it with a rewritten copy, so takes its frames
 * out of service without telling the cache.
 */
export class RecentFrames {
  private frames: RecentFrame[] = [];
  /** Index of the oldest frame kept; those before it are evicted (the array is compacted now and then). */
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** Offset after the last frame kept (meaningful only while {@link isEmpty} is false). */
  private get nextOffset(): number {
    const last = this.frames[this.frames.length - 1]!;
    return last.header.baseOffset + last.header.recordCount;
  }

  private get isEmpty(): boolean {
    return this.head === this.frames.length;
  }

  /** Keeps a frame just written at byte `position` of `segment`. */
  add(bytes: Buffer, segment: Segment, position: number): void {
    if (this.maxBytes === 0) return;
    const header = readFrameHeader(bytes, 0);
    if (!this.isEmpty && header.baseOffset !== this.nextOffset) this.clear();
    this.frames.push({ bytes, header, segment, position });
    this.bytes += bytes.length + ENTRY_OVERHEAD_BYTES;
    while (this.bytes > this.maxBytes && this.frames.length - this.head > 1) {
      this.bytes -= this.frames[this.head]!.bytes.length + ENTRY_OVERHEAD_BYTES;
      this.frames[this.head++] = undefined as unknown as RecentFrame;
    }
    if (this.head >= 1024 && this.head * 2 >= this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
  }

  /** Forgets the frames at and after `offset` (cut off the log). */
  cutFrom(offset: number): void {
    while (!this.isEmpty && this.frames[this.frames.length - 1]!.header.baseOffset >= offset) {
      this.bytes -= this.frames.pop()!.bytes.length + ENTRY_OVERHEAD_BYTES;
    }
    if (this.isEmpty) this.clear();
  }

  /** Forgets every frame. */
  clear(): void {
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
  }

  /**
   * The index (for {@link at}) of the frame holding `offset`, provided its segment is `segment`
   * (the one the log holds `offset` in now); -1 otherwise.
   */
  indexOf(offset: number, segment: Segment | undefined): number {
    if (segment === undefined || this.isEmpty || offset < this.frames[this.head]!.header.baseOffset || offset >= this.nextOffset) return -1;
    let lo = this.head;
    let hi = this.frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.frames[mid]!.header.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.frames[lo]!.segment === segment ? lo : -1;
  }

  /** The frame at index `i`, or undefined past the newest. */
  at(i: number): RecentFrame | undefined {
    return i < this.frames.length ? this.frames[i] : undefined;
  }
}
