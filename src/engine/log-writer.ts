import { performance } from 'node:perf_hooks';
import { checksumFrame, stampFrame, syncLag, type ProducerStamp } from '../codec/frame.js';
import { SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import { WalError } from '../errors.js';
import type { StorageFile } from '../storage/storage.js';
import type { ProducerState } from '../codec/index-file.js';
import { DiskFullProbe } from './disk-full-probe.js';
import type { CheckedFrame } from './frame-run-check.js';
import { IndexWriter } from './index-writer.js';
import type { ProducerTable, ProducerUndo } from './producer-table.js';
import { NextSegment } from './next-segment.js';
import type { RecentFrames } from './recent-frames.js';
import type { Segment } from './segment.js';
import type { SegmentList } from './segment-list.js';
import { createSegmentFile, newFrameSeed, SegmentInPlaceError, type SegmentTarget } from './segment-file.js';
import { isNoSpace, walErrorFromStorage } from './storage-errors.js';
import type { AppendResult, IoStats, WriteState } from './types.js';
import type { ResolvedWalOptions } from './wal-options.js';

/** One append waiting in the writer's queue. Its frame is already encoded and stamped. */
interface PendingAppend {
  readonly frame: Buffer;
  /** The checksum seed the frame was stamped with (the active segment's when it was queued). */
  seed: number;
  readonly firstOffset: number;
  readonly count: number;
  readonly timestamp: number;
  readonly sync: boolean;
  readonly producer: ProducerStamp | undefined;
  /**
   * A frame another log stamped (`Wal.appendFrames`): written as it is (never checksummed again),
   * and never the cause of a rotation by size; its segments are the other log's.
   */
  readonly isRaw: boolean;
  /** For a raw frame that starts a segment of the other log: the segment to write it into. */
  readonly target: SegmentTarget | undefined;
  /** Byte position just past the frame once it is written to the active segment; -1 before. */
  end: number;
  /** How to put the producer table back if the frame is cut off again. */
  producerUndo: ProducerUndo | undefined;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/** What the writer tells the log about. */
export interface WriterEvents {
  /** The offset visible to readers moved. */
  visibleAdvanced(): void;
  /** A sync succeeded: every offset below `durableNext` is on stable storage. */
  synced(durableNext: number): void;
  /** Something failed that an operator must hear about, though no caller is waiting for it. */
  warn(message: string, error: unknown): void;
}

/**
 * The single writer of a log: it owns the active segment, a queue of encoded batches, and the group
 * commit. `enqueue` stamps a batch with its offsets and queues it; one `flush` per event-loop turn
 * writes everything queued with one `writev` and, under `always` (or when any batch asked), one
 * `fdatasync`, then resolves every waiter it covered. Concurrent appends so share one sync.
 *
 * Failure rules: a failed write is rolled back (the file truncated to the last whole frame) and its
 * batches rejected (`WAL_NO_SPACE` puts the log in disk-full mode until a probe finds space again);
 * a failed `fdatasync` makes the log read-only until it is re-opened, because the page cache can no
 * longer be trusted to hold what it claims. Either way only batches not yet acknowledged are cut
 * and rejected: under `interval` and `none` a batch is acknowledged once written, and nothing
 * acknowledged is ever taken back (nor its offsets handed out again).
 */
export class LogWriter {
  private state: WriteState = 'writable';
  /** The leader epoch new batches are stamped with (the newest of the log's epoch history). */
  epoch = 0;
  /** Offset after the last frame queued. */
  private assignedNext: number;
  /** Offset after the last frame known to be on stable storage. */
  durableNext: number;
  private lastTimestamp: number;
  /** Byte position in the active segment up to which the file is synced. */
  private durableEnd: number;
  /**
   * Where the last acknowledged batch of the active segment ends: the byte position, the offset
   * after it and its timestamp. Equal to the durable end under `always`; ahead of it under
   * `interval` and `none`, where a failed sync must not cut what was acknowledged.
   */
  private acked: { end: number; next: number; timestamp: number };
  private queue: PendingAppend[] = [];
  private flushScheduled = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly next: NextSegment;
  private readonly probe: DiskFullProbe;
  private readonly files: IndexWriter;

  constructor(
    private readonly options: ResolvedWalOptions,
    private readonly segments: SegmentList,
    private activeFile: StorageFile,
    private readonly producers: ProducerTable,
    private readonly events: WriterEvents,
    readonly io: IoStats,
    lastTimestamp: number,
    /** Where every frame written goes too, for the readers of what was just appended. */
    private readonly recent: RecentFrames,
  ) {
    const active = segments.active;
    this.assignedNext = active.nextOffset;
    this.durableNext = active.nextOffset;
    this.lastTimestamp = Math.max(lastTimestamp, 0);
    this.durableEnd = active.dataEnd;
    this.acked = { end: active.dataEnd, next: active.nextOffset, timestamp: active.lastTimestamp };
    this.next = new NextSegment(options, events.warn);
    this.probe = new DiskFullProbe(options, () => this.spaceReturned());
    this.files = new IndexWriter(options, producers, io);
    if (options.syncPolicy === 'interval') {
      // Referenced on purpose: unsynced appends must not be abandoned by an exiting process.
      this.syncTimer = setInterval(() => this.syncTick(), options.syncIntervalMs);
    }
  }

  /** Whether the log takes appends (`writable`), waits for space (`disk-full`) or refuses them for good (`read-only`). */
  get writeState(): WriteState {
    return this.state;
  }

  /** Changes the write state and tells the observer (disk-full entered or left, read-only entered). */
  private enterWriteState(state: WriteState): void {
    const previous = this.state;
    if (state === previous) return;
    this.state = state;
    this.options.observer?.onWriteStateChange?.(state, previous);
  }

  /** Offset after the last frame written to the file (the active segment ends the log). */
  get writtenNext(): number {
    return this.active.nextOffset;
  }

  /** Offset the next queued batch will start at. */
  get nextOffset(): number {
    return this.assignedNext;
  }

  /** The active segment. */
  private get active(): Segment {
    return this.segments.active;
  }

  /** Last offset readers may see: durable under `always`/`interval`, written under `none`. */
  get visibleNext(): number {
    return this.options.syncPolicy === 'none' ? this.writtenNext : this.durableNext;
  }

  /** Throws the error an append gets while the log refuses writes. */
  checkWritable(): void {
    if (this.writeState === 'read-only') throw readOnlyError();
    if (this.writeState === 'disk-full' && !this.probe.probeIfDue()) {
      throw new WalError('WAL_NO_SPACE', 'the disk is full; appends resume once space is freed', { writeState: this.writeState });
    }
  }

  /**
   * Stamps an encoded batch with the next offsets, a timestamp, the writer's epoch and what is
   * durable so far (the frame's sync lag, which recovery reads), and queues it for the next flush.
   * An idempotent append's `producer` is entered in the producer table as the frame is written.
   */
  enqueue(frame: Buffer, count: number, sync: boolean, producer: ProducerStamp | undefined): Promise<AppendResult> {
    const firstOffset = this.assignedNext;
    const timestamp = Math.max(this.options.clock(), this.lastTimestamp);
    this.lastTimestamp = timestamp;
    const seed = this.active.frameSeed;
    stampFrame(frame, firstOffset, timestamp, this.epoch, syncLag(firstOffset, this.durableNext), seed);
    this.assignedNext += count;
    const result = new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ frame, seed, firstOffset, count, timestamp, sync, producer, isRaw: false, target: undefined, end: -1, producerUndo: undefined, resolve, reject });
      this.scheduleFlush();
    });
    if (producer !== undefined) this.producers.begin(producer.producerId, producer.sequence, result);
    return result;
  }

  /**
   * The segment the next queued frame lands in: the active one, or the segment of another log
   * that a queued frame starts (see {@link enqueueFrames}).
   */
  landingSegment(): { readonly segmentId: string; readonly frameSeed: number } {
    for (let k = this.queue.length - 1; k >= 0; k--) {
      const target = this.queue[k]!.target;
      if (target !== undefined) return target.header;
    }
    return this.active;
  }

  /**
   * Queues frames another log stamped, checked by the caller (frame-run-check.ts: they continue
   * the log at {@link nextOffset}), to be written byte for byte through the same group commit as
   * appends: acknowledged per the sync policy, the high watermark moving only after this log's
   * own sync under `always` and `interval`. `target`: the first frame starts that segment of the
   * other log (the active segment is sealed before it, or replaced when it is empty and has the
   * same base offset), unless the active segment is that segment already. Resolves once the last
   * frame is acknowledged; rejects as an append would (and a prefix may then be in the log).
   */
  enqueueFrames(frames: readonly CheckedFrame[], target: SegmentTarget | undefined): Promise<void> {
    return new Promise<void>((resolveRun, rejectRun) => {
      const last = frames.length - 1;
      frames.forEach((checked, i) => {
        const { frame, header, producer } = checked;
        this.lastTimestamp = Math.max(this.lastTimestamp, header.timestamp);
        this.assignedNext = header.baseOffset + header.recordCount;
        // One promise for the run: the last frame settles it. A failure that rejects any frame of the
        // run rejects every frame queued after it too (see `fail`), so the last one as well.
        this.queue.push({
          frame,
          seed: checked.seed,
          firstOffset: header.baseOffset,
          count: header.recordCount,
          timestamp: header.timestamp,
          sync: false,
          producer,
          isRaw: true,
          target: i === 0 ? target : undefined,
          end: -1,
          producerUndo: undefined,
          resolve: i === last ? () => resolveRun() : IGNORE,
          reject: i === last ? rejectRun : IGNORE,
        });
      });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Writes everything queued, syncs per the policy, and settles every waiter. Synchronous: the
   * writer's I/O runs on the main thread, where `writev` + `fdatasync` cost the least.
   */
  flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    if (this.writeState === 'read-only') {
      // A sync failed after these were queued (the interval timer's): writing them now and syncing
      // again could "succeed" over pages the kernel already dropped. Nothing of them was written.
      this.fail(batch, 0, readOnlyError());
      return;
    }
    let settled = 0; // batch[0..settled) are resolved
    let i = 0;
    try {
      while (i < batch.length) {
        const start = i;
        const buffers: Buffer[] = [];
        let position = this.active.dataEnd;
        while (i < batch.length) {
          const pending = batch[i]!;
          const length = pending.frame.length;
          // Another log's frames go where that log put them: into the segment it started.
          if (pending.target !== undefined && pending.target.header.segmentId !== this.active.segmentId) break;
          const fits = pending.isRaw || position + length <= this.options.segmentSizeBytes;
          if (!fits && (position > SEGMENT_HEADER_BYTES || i > start)) break;
          // Queued before a rotation into a segment of another seed (only after a version-1 one).
          if (!pending.isRaw && pending.seed !== this.active.frameSeed) {
            checksumFrame(pending.frame, this.active.frameSeed);
            pending.seed = this.active.frameSeed;
          }
          buffers.push(pending.frame);
          position += length;
          i++;
        }
        if (buffers.length > 0) this.writeFrames(batch, start, i, buffers);
        if (i < batch.length) {
          // Sync before the next segment exists, and acknowledge what that sync covered at once:
          // should creating the next segment fail, those batches are in the log for good.
          this.datasync();
          settled = this.resolve(batch, settled, i);
          const target = batch[i]!.target;
          this.rotate(target !== undefined && target.header.segmentId !== this.active.segmentId ? target : undefined);
        }
      }
      let mustSync = this.options.syncPolicy === 'always';
      for (let k = settled; k < batch.length && !mustSync; k++) mustSync = batch[k]!.sync;
      if (mustSync) this.datasync();
      this.resolve(batch, settled, batch.length);
      if (this.options.observer?.onCommit !== undefined) this.reportCommit(batch);
      this.events.visibleAdvanced();
    } catch (error) {
      this.fail(batch, settled, error);
    }
  }

  /** Tells the observer about a group commit: its appends, records and frame bytes. */
  private reportCommit(batch: readonly PendingAppend[]): void {
    let records = 0;
    let bytes = 0;
    for (const pending of batch) {
      records += pending.count;
      bytes += pending.frame.length;
    }
    this.options.observer?.onCommit?.(batch.length, records, bytes);
  }

  private resolve(batch: readonly PendingAppend[], from: number, to: number): number {
    for (let k = from; k < to; k++) {
      const p = batch[k]!;
      if (p.producer !== undefined) this.producers.end(p.producer.producerId, p.producer.sequence);
      p.resolve({ firstOffset: p.firstOffset, lastOffset: p.firstOffset + p.count - 1, timestamp: p.timestamp, duplicate: false });
    }
    const last = batch[to - 1];
    if (to > from && last !== undefined) this.acked = { end: last.end, next: last.firstOffset + last.count, timestamp: last.timestamp };
    return to;
  }

  private writeFrames(batch: readonly PendingAppend[], start: number, end: number, buffers: readonly Buffer[]): void {
    const segment = this.active;
    const position = segment.dataEnd;
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    try {
      this.activeFile.writev(buffers, position);
    } catch (error) {
      this.rollback(position);
      throw walErrorFromStorage(error, `write to ${segment.name} failed and was rolled back`, { segment: segment.name, position });
    }
    this.io.writes++;
    this.io.bytesWritten += bytes;
    let p = position;
    for (let k = start; k < end; k++) {
      const pending = batch[k]!;
      segment.noteFrame(p, pending.frame.length, pending.firstOffset, pending.count, pending.timestamp, this.options.indexIntervalBytes);
      this.recent.add(pending.frame, segment, p);
      p += pending.frame.length;
      pending.end = p;
      const producer = pending.producer;
      if (producer !== undefined) {
        const lastOffset = pending.firstOffset + pending.count - 1;
        // Fields named one by one: an object spread here took V8's slow clone path (~5 us a frame,
        // the largest cost of a group commit of 64 single-record appends after the fdatasync).
        const { producerId, sequence } = producer;
        pending.producerUndo = this.producers.noteWritten({ producerId, sequence, firstOffset: pending.firstOffset, lastOffset, timestamp: pending.timestamp });
      }
    }
  }

  /** Cuts a partly written group back off the file, so nothing half-written stays in the log. */
  private rollback(position: number): void {
    try {
      this.activeFile.truncate(position);
      this.active.fileSize = position;
    } catch (error) {
      this.enterWriteState('read-only');
      this.events.warn('rolling back a failed write failed; the log is read-only', error);
    }
  }

  private datasync(): void {
    const observer = this.options.observer;
    const started = observer?.onSync === undefined ? 0 : performance.now();
    try {
      this.activeFile.datasync();
    } catch (error) {
      this.enterWriteState('read-only');
      // Cut what no one was told is in the log (the batches that waited on this sync), never what
      // was acknowledged: under `interval` and `none` that is already ahead of the durable end,
      // and readers (under `none`) or the caller may hold it. The rejected batches' frames may be
      // gone from the page cache already; cutting them keeps the file equal to what the log says.
      this.cutBackToAcknowledged();
      throw new WalError('WAL_IO_ERROR', `fdatasync of ${this.active.name} failed; the log is read-only until re-opened`, {
        segment: this.active.name,
        errno: (error as { code?: string }).code ?? 'EUNKNOWN',
      }, { cause: error });
    }
    this.io.fsyncs++;
    if (observer?.onSync !== undefined) observer.onSync(performance.now() - started);
    this.durableNext = this.writtenNext;
    this.durableEnd = this.active.dataEnd;
    this.events.synced(this.durableNext);
  }

  /**
   * Truncates the active segment back to the end of its last acknowledged batch and forgets the
   * frames after it (segment extent, sparse index, producer states). Best effort on the file: if
   * the truncate fails too, the log is read-only anyway and the next open decides.
   */
  private cutBackToAcknowledged(): void {
    const { end, next, timestamp } = this.acked;
    if (this.active.dataEnd > end) {
      this.rollback(end);
      this.active.cutBack(end, next, timestamp);
      // Beyond the high watermark, and the log takes no more appends: never served, but not kept.
      this.recent.cutFrom(next);
    }
  }

  /** Rejects what the failed flush did not settle and rewinds the offsets handed out. */
  private fail(batch: readonly PendingAppend[], settled: number, error: unknown): void {
    const walError = walErrorFromStorage(error, 'append failed');
    if (isNoSpace(error) || walError.code === 'WAL_NO_SPACE') this.enterDiskFull();
    const rejected = [...batch.slice(settled), ...this.queue];
    this.queue = [];
    // Frames written but cut off again: their producers' states go back, newest first.
    for (let k = rejected.length - 1; k >= 0; k--) {
      const p = rejected[k]!;
      if (p.producer !== undefined && p.producerUndo !== undefined) this.producers.revert(p.producer.producerId, p.producerUndo);
    }
    for (const p of rejected) {
      if (p.producer !== undefined) this.producers.end(p.producer.producerId, p.producer.sequence);
      p.reject(walError);
    }
    // Nothing past the last kept frame is in the log: hand its offsets out again.
    this.assignedNext = this.writtenNext;
    this.events.visibleAdvanced();
  }

  /**
   * Seals the synced active segment and starts the next: a new one of this log's, or `target`, a
   * segment of another log (its header written as it is). The caller synced the old segment first,
   * so a later segment never follows an incomplete one. An empty active segment with the target's
   * base offset is replaced by the target instead (the rename puts it in its place).
   */
  private rotate(target?: SegmentTarget): void {
    const old = this.active;
    const oldFile = this.activeFile;
    // The log's seed; a log begun by format version 1 (seed 0) gets one from its first new segment.
    const seed = target?.header.frameSeed ?? (old.frameSeed === 0 ? newFrameSeed() : old.frameSeed);
    const isReplaced = target !== undefined && old.nextOffset === old.baseOffset && target.header.baseOffset === old.baseOffset;
    let created: ReturnType<typeof createSegmentFile>;
    try {
      created = createSegmentFile(this.options, old.nextOffset, this.next.take(), this.io, seed, target);
    } catch (error) {
      if (!(error instanceof SegmentInPlaceError)) throw error;
      // The new segment is in the directory, perhaps for good: writing on into the old one (or,
      // for a replaced empty segment, into a file no longer in the directory) would leave a log
      // the next open cannot read. As after a failed fdatasync, the log takes no more writes;
      // reopened, it finds the new segment empty after the old one's last record, or not at all.
      this.enterWriteState('read-only');
      throw new WalError('WAL_IO_ERROR', `${error.message}; the log is read-only until re-opened`, error.details, { cause: error });
    }
    const { segment, file } = created;
    if (isReplaced) {
      this.segments.replaceActive(segment);
      this.activeFile = file;
      this.durableEnd = SEGMENT_HEADER_BYTES;
      this.acked = { end: SEGMENT_HEADER_BYTES, next: segment.baseOffset, timestamp: -1 };
      this.options.observer?.onSegmentRoll?.(old.name, segment.name, segment.baseOffset);
      void this.prepareNext();
      return;
    }
    this.segments.add(segment);
    this.activeFile = file;
    this.options.observer?.onSegmentRoll?.(old.name, segment.name, segment.baseOffset);
    this.durableEnd = SEGMENT_HEADER_BYTES;
    this.acked = { end: SEGMENT_HEADER_BYTES, next: segment.baseOffset, timestamp: -1 };
    try {
      if (old.fileSize > old.dataEnd) {
        oldFile.truncate(old.dataEnd);
        old.fileSize = old.dataEnd;
      }
      this.writeIndex(old);
    } catch (error) {
      // The index is derived data: the next open rebuilds it. The log itself is intact.
      this.events.warn(`sealing ${old.name} failed; its index will be rebuilt at the next open`, error);
    }
    void this.prepareNext();
  }

  /** Zero-fills the next segment in the background, so rotation does not wait for it. Never rejects. */
  prepareNext(): Promise<void> {
    return this.writeState === 'writable' ? this.next.prepare() : Promise.resolve();
  }

  /** Persists a segment's index (a sealed one, or the active one at a clean close). */
  writeIndex(segment: Segment, producers?: readonly ProducerState[]): void {
    this.files.writeIndex(segment, producers);
  }

  /**
   * Saves the producer table on its own (`PRODUCERS`), for when no sealed segment's index holds it
   * any more. Syncs the log first, so that the table names only appends that are durable.
   *
   * Throws `WAL_READ_ONLY`, or `WAL_IO_ERROR` / `StorageError` when a sync or the write fails.
   */
  persistProducers(): void {
    this.flush();
    if (this.writeState === 'read-only') this.checkWritable();
    if (this.writtenNext > this.durableNext) {
      this.datasync();
      this.events.visibleAdvanced();
    }
    this.files.writeProducers(this.active, this.durableNext, this.durableEnd, this.lastTimestamp);
  }

  /** `fdatasync` now (after writing anything queued); returns the offset after the durable end. */
  syncNow(): number {
    this.flush();
    if (this.writeState === 'read-only') this.checkWritable();
    if (this.writtenNext > this.durableNext || this.options.syncPolicy !== 'always') this.datasync();
    this.events.visibleAdvanced();
    return this.durableNext;
  }

  private syncTick(): void {
    if (this.writtenNext <= this.durableNext || this.writeState === 'read-only') return;
    try {
      this.datasync();
    } catch (error) {
      this.events.warn('interval fdatasync failed; the log is read-only', error);
    }
    this.events.visibleAdvanced();
  }

  private enterDiskFull(): void {
    if (this.state !== 'writable') return;
    this.enterWriteState('disk-full');
    this.probe.start();
  }

  private spaceReturned(): void {
    if (this.state === 'disk-full') this.enterWriteState('writable');
    void this.prepareNext();
  }

  /**
   * Writes what is queued, syncs, persists the active segment's index and the clean-shutdown marker
   * (so the next open need not re-read the active segment), and stops the timers.
   */
  async close(): Promise<void> {
    this.flush();
    clearInterval(this.syncTimer);
    this.probe.stop();
    await this.next.close();
    if (this.writeState === 'read-only') return;
    try {
      if (this.writtenNext > this.durableNext) this.datasync();
      this.files.writeIndex(this.active);
      this.files.writeCleanMarker(this.active);
    } catch (error) {
      this.events.warn('writing the clean-shutdown state failed; the next open will re-scan the active segment', error);
    }
  }
}

/** Settles a queued frame of a run that is not the run's last (the last settles the run). */
const IGNORE = (): void => {};

function readOnlyError(): WalError {
  return new WalError('WAL_READ_ONLY', 'the log is read-only after a failed fsync; re-open it to recover', { writeState: 'read-only' });
}
