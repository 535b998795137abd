import { join } from 'node:path';
import type { EpochStart } from '../codec/epoch-history-file.js';
import { encodeFrame, MAX_EPOCH } from '../codec/frame.js';
import { invalidArgument, WalError } from '../errors.js';
import { NodeStorage } from '../storage/node-storage.js';
import type { Storage, StorageFile, StorageLock } from '../storage/storage.js';
import { validateAppendOptions, validateBatch } from './append-validation.js';
import { BatchIterator } from './batch-iterator.js';
import { createAndLockDataDir } from './data-dir-lock.js';
import { EpochHistory, type EpochEnd } from './epoch-history.js';
import { FrameReader, type FrameRun, type RangeHash } from './frame-reader.js';
import { checkFrameRun } from './frame-run-check.js';
import { HighWatermarkWaiters } from './high-watermark-waiters.js';
import { LogReader, type ReadBatch } from './log-reader.js';
import { LogTail, type TailSource } from './log-tail.js';
import { LogWriter } from './log-writer.js';
import { ProducerTable } from './producer-table.js';
import { RecentFrames } from './recent-frames.js';
import { recoverLog } from './recovery.js';
import { RecoveryPointWriter } from './recovery-point.js';
import type { Segment } from './segment.js';
import { createSegmentFile, prepareSegmentFile, newFrameSeed } from './segment-file.js';
import { SegmentList } from './segment-list.js';
import { rewriteSegments, type SegmentRewritePlan, type SegmentRewriteResult } from './segment-rewriter.js';
import { PRODUCERS_FILE } from './segment-name.js';
import type {
  AppendLimits,
  AppendOptions,
  AppendRecord,
  AppendResult,
  IoStats,
  ReadOptions,
  RecoveryReport,
  SegmentInfo,
  TailAdmission,
  TailLoopOptions,
  TailOptions,
  WalRecord,
  WalStats,
  WalStatus,
} from './types.js';
import { walErrorFromStorage } from './storage-errors.js';
import { resolveWalOptions, type ResolvedWalOptions, type WalOptions } from './wal-options.js';

const DEFAULT_READ_LIMIT = 100;
/** Records per read of `range`. */
const RANGE_READ_RECORDS = 1000;

/**
 * A durable, segmented write-ahead log in one data directory.
 *
 * ```ts
 * const { wal, report } = await Wal.open({ dir: './data' });
 * const { firstOffset } = await wal.append([{ value: Buffer.from('hello') }]);
 * for await (const record of wal.tail(firstOffset, { signal })) console.log(record.offset);
 * await wal.close();
 * ```
 *
 * Appends are atomic batches acknowledged per the sync policy; readers and tails see records up to
 * the high watermark only. One process at a time may open a directory (`WAL_LOCKED`).
 */
export class Wal {
  private statusValue: WalStatus = 'open';
  private closing: Promise<void> | undefined;
  /** The segment rewrite running or last run (key compaction): one at a time, awaited by `close`. */
  private rewriting: Promise<unknown> = Promise.resolve();
  private readonly reader: LogReader;
  private readonly frameReader: FrameReader;
  private readonly tailSource: TailSource;

  private constructor(
    private readonly options: ResolvedWalOptions,
    private readonly lock: StorageLock,
    private readonly segments: SegmentList,
    private readonly writer: LogWriter,
    private readonly producers: ProducerTable,
    private readonly waiters: HighWatermarkWaiters,
    private readonly recoveryPoint: RecoveryPointWriter | undefined,
    private readonly io: IoStats,
    private readonly epochs: EpochHistory,
    recent: RecentFrames,
  ) {
    this.reader = new LogReader(segments, io, recent);
    this.frameReader = new FrameReader(segments, io, recent);
    this.tailSource = {
      highWatermark: () => this.highWatermark,
      readBatch: (fromOffset, limit, maxBytes, skipKeylessPuts) => {
        this.checkOpen();
        return this.readRange(fromOffset, this.highWatermark + 1, limit, maxBytes, skipKeylessPuts);
      },
      waitForHighWatermark: (offset, signal) => this.waitForHighWatermark(offset, signal),
    };
  }

  /**
   * Opens (or creates) the log in `options.dir` and recovers it.
   *
   * Throws `WalError` `WAL_LOCKED` when another process holds the directory, `WAL_CORRUPTION` when
   * the log is damaged beyond a torn tail, `WAL_IO_ERROR` / `WAL_NO_SPACE` for disk failures, and
   * `TypeError` / `RangeError` for bad options.
   */
  static async open(options: WalOptions): Promise<{ wal: Wal; report: RecoveryReport }> {
    const resolved = resolveWalOptions(options, () => new NodeStorage());
    const { storage, dir } = resolved;
    const lock = createAndLockDataDir(storage, dir, `cannot open ${dir}`);
    const opened: Segment[] = [];
    let recoveryPoint: RecoveryPointWriter | undefined;
    try {
      const recovered = recoverLog(storage, dir, resolved.indexIntervalBytes, resolved.maxProducers, resolved.clock);
      opened.push(...recovered.segments);
      const io: IoStats = { bytesWritten: 0, bytesRead: 0, writes: 0, reads: 0, fsyncs: 0 };
      const producers = new ProducerTable(resolved.maxProducers);
      for (const state of recovered.producers) producers.noteWritten(state);
      const { segment: active, file } = await openActiveSegment(resolved, opened.at(-1), io);
      if (opened.at(-1) !== active) opened.push(active);
      // Before the writer, whose `interval` timer would keep the process alive should this throw
      // (it may rewrite EPOCHS: an entry past the recovered end).
      const epochs = EpochHistory.open(storage, dir, recovered.epochs, active.nextOffset);
      const segments = new SegmentList(opened, storage, resolved.maxOpenSegmentFiles);
      recoveryPoint = RecoveryPointWriter.open(resolved, recovered.recoveryPoint, io);
      // Everything recovered is durable now (the active segment was synced).
      recoveryPoint?.note(active.nextOffset);
      const points = recoveryPoint;
      const waiters = new HighWatermarkWaiters();
      const recent = new RecentFrames(resolved.tailCacheBytes);
      const writer: LogWriter = new LogWriter(resolved, segments, file, producers, {
        visibleAdvanced: () => waiters.advance(writer.visibleNext - 1),
        synced: (durableNext) => points?.note(durableNext),
        warn: resolved.onWarning,
      }, io, recovered.lastTimestamp, recent);
      writer.epoch = epochs.epoch;
      for (const { segment, producers: asOfItsEnd } of recovered.rebuilt) {
        try {
          writer.writeIndex(segment, asOfItsEnd);
        } catch {
          // Derived data: the next open rebuilds it again.
        }
      }
      void writer.prepareNext();
      return { wal: new Wal(resolved, lock, segments, writer, producers, waiters, recoveryPoint, io, epochs, recent), report: recovered.report };
    } catch (error) {
      for (const segment of opened) segment.closeFile();
      await recoveryPoint?.close();
      lock.release();
      throw storageFailure(error, `cannot open the log in ${dir}`);
    }
  }

  /** Lifecycle state. */
  get status(): WalStatus {
    return this.statusValue;
  }

  /** The data directory. */
  get dir(): string {
    return this.options.dir;
  }

  /** The storage the log lives on (disk, memory or the caller's); its snapshots and compaction use the same one. */
  get storage(): Storage {
    return this.options.storage;
  }

  /** The last offset readers may see: durable under `always`/`interval`, written under `none`. -1 when none. */
  get highWatermark(): number {
    return this.writer.visibleNext - 1;
  }

  /** The first retained offset (equal to `nextOffset` when the log holds no records). */
  get firstOffset(): number {
    return this.segments.first.baseOffset;
  }

  /** The size limits appends are checked against (from the options). */
  get limits(): AppendLimits {
    const { maxRecordBytes, maxBatchBytes, maxBatchRecords } = this.options;
    return { maxRecordBytes, maxBatchBytes, maxBatchRecords };
  }

  /** The offset the next appended record gets. */
  get nextOffset(): number {
    return this.writer.nextOffset;
  }

  /** The leader epoch new frames are stamped with: the newest of the epoch history (0 for a log never promoted). */
  get epoch(): number {
    return this.writer.epoch;
  }

  /**
   * The greatest epoch this log's history held and no longer holds (a cut of the log removed it,
   * or an open dropped it past a crashed log's end); 0 when none. A promotion goes above it, so
   * that no epoch number is given out twice in one log.
   */
  get epochFloor(): number {
    return this.epochs.floor;
  }

  /** The epoch history, oldest first: from each entry's start offset on, frames carry its epoch (before the first, epoch 0). */
  epochHistory(): readonly EpochStart[] {
    return this.epochs.entries;
  }

  /**
   * Where `epoch` ends in this log (GetEpochEnd, Kafka's OffsetForLeaderEpoch): the greatest epoch
   * of the history at or below it, and the offset after its last record (the next entry's start,
   * or the next offset for the newest). When every entry's epoch is greater, the asked epoch and
   * the first entry's start.
   *
   * Throws `RangeError` for an epoch that is not a non-negative safe integer, `WAL_CLOSED`.
   */
  epochEnd(epoch: number): EpochEnd {
    checkOffset(epoch, 'epoch');
    this.checkOpen();
    return this.epochs.end(epoch, this.writer.nextOffset);
  }

  /**
   * Makes `epoch` the log's epoch (a leader taking over, or promotion): syncs everything written
   * and queued so far (it keeps its older epoch), persists the history entry `epoch -> nextOffset`
   * durably, and only then stamps later appends with `epoch`. All of it happens before any other
   * append is queued, so a batch queued after the call carries `epoch` and one queued before the
   * older epoch, and an `expectedEpoch` check is ordered with it.
   *
   * Throws `WalError` `WAL_EPOCH_MISMATCH` (details `epoch`, `currentEpoch`) unless `epoch` is
   * greater than {@link epoch}, `WAL_INVALID_ARGUMENT` (field `epoch`) above 2^48 - 1,
   * `WAL_READ_ONLY` / `WAL_IO_ERROR` / `WAL_NO_SPACE` when the sync or the history write fails
   * (the epoch is unchanged then), `WAL_CLOSED`; `RangeError` for a non-integer.
   */
  async beginEpoch(epoch: number): Promise<EpochStart> {
    checkOffset(epoch, 'epoch');
    if (epoch > MAX_EPOCH) throw invalidArgument('epoch', `must be at most ${MAX_EPOCH}, got ${epoch}`, { value: epoch, limit: MAX_EPOCH });
    this.checkOpen();
    if (epoch <= this.writer.epoch) {
      throw new WalError('WAL_EPOCH_MISMATCH', `epoch ${epoch} is not above the log's epoch ${this.writer.epoch}`, { epoch, currentEpoch: this.writer.epoch });
    }
    this.writer.checkWritable();
    // Synchronous from here on: no append is queued in between, so every frame below the entry's
    // start carries an older epoch, and the start is durable before the entry exists.
    const startOffset = this.writer.syncNow();
    const entry = { epoch, startOffset };
    try {
      this.epochs.add([entry], false);
    } catch (error) {
      throw storageFailure(error, 'writing the epoch history failed');
    }
    this.writer.epoch = epoch;
    return entry;
  }

  /**
   * The checksum seed of the log's frames (of its active segment; every segment header names its
   * own). A follower bootstrapping from a snapshot adopts its leader's (`createEmptyLog`).
   */
  get frameSeed(): number {
    return this.segments.active.frameSeed;
  }

  /**
   * Whole frames as stored, from `fromOffset`, for a follower: consecutive frames of one segment
   * (frames of the next segment start the next run, so `segmentHeader` always belongs to
   * `frames[0]`), only durable ones (up to the high watermark), at most `maxBytes` of them (one
   * larger frame comes alone), at least one when any is durable at `fromOffset`. Nothing is decoded;
   * every checksum read from a file is verified, and frames just written come from memory, shared:
   * the bytes are never to be changed (see {@link FrameReader}). A segment
   * rewritten by key compaction is shipped as stored: its header says `compacted`, its frames skip
   * offsets, and a start in one of its gaps begins at the next frame (a follower refuses such a
   * segment, docs/engine.md).
   *
   * Throws `WalError` `WAL_INVALID_ARGUMENT` (field `fromOffset`) for an offset inside a frame,
   * `WAL_OFFSET_COMPACTED` below the first retained offset, `WAL_OFFSET_OUT_OF_RANGE` beyond
   * `highWatermark + 1`, `WAL_CORRUPTION`, `WAL_IO_ERROR`, `WAL_CLOSED`; `RangeError` for malformed
   * numbers.
   */
  async readFrames(fromOffset: number, maxBytes: number): Promise<FrameRun> {
    checkOffset(fromOffset, 'fromOffset');
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new RangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
    this.checkOpen();
    const end = this.highWatermark + 1;
    this.checkStart(fromOffset, end);
    if (fromOffset === end) return { frames: [], nextOffset: fromOffset };
    try {
      return await this.frameReader.readRun(fromOffset, end, maxBytes);
    } catch (error) {
      if (this.statusValue !== 'open') throw closedError();
      throw error;
    }
  }

  /**
   * The 64-byte header of the segment holding `offset`, as stored: what a frames-mode tail that
   * starts inside a segment sends first, so that a follower whose log starts there (after a
   * snapshot install) learns the frame seed.
   *
   * Throws `WalError` `WAL_OFFSET_COMPACTED` below the first retained offset, `WAL_IO_ERROR`,
   * `WAL_CLOSED`; `RangeError` for a malformed offset.
   */
  async segmentHeaderOf(offset: number): Promise<Buffer> {
    checkOffset(offset, 'offset');
    this.checkOpen();
    try {
      return await this.frameReader.segmentHeaderOf(offset);
    } catch (error) {
      if (this.statusValue !== 'open') throw closedError();
      throw error;
    }
  }

  /**
   * Appends frames another log stamped (a follower's copy of its leader's frames), byte for byte:
   * offsets, timestamps, epochs, sync lags and checksums stay the other log's. Every frame of the
   * call is checked before any is written (frame-run-check.ts): whole and 8-byte aligned, its
   * CRC-32C with the seed of the segment it lands in, the first at {@link nextOffset} and each
   * after the one before, epochs never below {@link epoch}. An epoch above it adds an epoch
   * history entry at that frame's base offset, persisted durably before the frame is queued (and
   * marks the log `replicated`, so that recovery no longer believes frame sync lags, which are the
   * other log's). `segmentHeader`: the other log started a segment at `frames[0]`; the active
   * segment is sealed and one with exactly this header is started (or, when the active segment is
   * empty at the same base offset, replaced by it), unless the active segment is that one already.
   * The other log's segments decide where this log's segments end (never `segmentSizeBytes`).
   *
   * The frames go through the group commit of appends: acknowledged per the sync policy, the
   * high watermark moving only after this log's own sync (under `always` and `interval`); a failed
   * sync makes the log read-only as for appends. On a rejection after the checks a prefix of the
   * frames may be in the log (as with separate appends): `nextOffset` says where to go on. The
   * buffers must never change once passed: the log keeps them for its readers of what was just
   * written (recent-frames.ts) and serves them as they are.
   *
   * Throws `WalError` `WAL_FRAME_REJECTED` (nothing written; details `reason`: `length`,
   * `checksum`, `gap`, `overlap`, `epoch`, `header`, `compacted`; `index`, `offset`), and what an
   * append throws: `WAL_NO_SPACE`, `WAL_READ_ONLY`, `WAL_IO_ERROR`, `WAL_CLOSED`; `TypeError` /
   * `RangeError` for malformed arguments.
   */
  async appendFrames(frames: readonly Buffer[], options: { readonly segmentHeader?: Buffer | undefined } = {}): Promise<{ firstOffset: number; lastOffset: number; nextOffset: number }> {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.checkOpen();
    this.writer.checkWritable();
    const run = checkFrameRun(frames, options.segmentHeader, { nextOffset: this.writer.nextOffset, epoch: this.writer.epoch, segment: this.writer.landingSegment() });
    try {
      this.epochs.add(run.epochs, true);
    } catch (error) {
      throw storageFailure(error, 'writing the epoch history failed');
    }
    const newest = run.epochs.at(-1);
    if (newest !== undefined) this.writer.epoch = newest.epoch;
    const first = run.frames[0]!.header;
    const last = run.frames.at(-1)!.header;
    await this.writer.enqueueFrames(run.frames, run.target);
    return { firstOffset: first.baseOffset, lastOffset: last.baseOffset + last.recordCount - 1, nextOffset: last.baseOffset + last.recordCount };
  }

  /**
   * SHA-256 over the stored bytes of the frames whose base offset is in `[fromOffset, toOffset)`
   * (default: up to the high watermark + 1; never past it), in offset order, with the range it
   * covered and its counts (HashRange, as etcd's HashKV): two logs holding the same frames give the
   * same hash, whatever their segment boundaries.
   *
   * Throws `WAL_OFFSET_COMPACTED` below the first retained offset, `WAL_OFFSET_OUT_OF_RANGE`
   * beyond `highWatermark + 1`, `WAL_INVALID_ARGUMENT` (field `toOffset`) below `fromOffset`,
   * `WAL_CORRUPTION`, `WAL_IO_ERROR`, `WAL_CLOSED`; `RangeError` for malformed numbers.
   */
  async hashRange(fromOffset: number, toOffset?: number): Promise<RangeHash> {
    checkOffset(fromOffset, 'fromOffset');
    if (toOffset !== undefined) checkOffset(toOffset, 'toOffset');
    this.checkOpen();
    const end = this.highWatermark + 1;
    this.checkStart(fromOffset, end);
    if (toOffset !== undefined && toOffset < fromOffset) throw invalidArgument('toOffset', `${toOffset} is below fromOffset ${fromOffset}`, { value: toOffset, fromOffset });
    try {
      return await this.frameReader.hash(fromOffset, Math.min(toOffset ?? end, end));
    } catch (error) {
      if (this.statusValue !== 'open') throw closedError();
      throw error;
    }
  }

  /**
   * True when an append by `producerId` with `sequence` would be answered as a retry of one already
   * taken (in flight or written), writing nothing: callers that check a batch against what the
   * log already holds (the transaction rules of the key-value view) let such a retry through.
   */
  isDuplicateAppend(producerId: string, sequence: number): boolean {
    return this.producers.isDuplicate(producerId, sequence);
  }

  /**
   * Appends one batch atomically and resolves once it is acknowledged per the sync policy.
   *
   * Throws `WalError` `WAL_INVALID_ARGUMENT` naming the field for bad data (append-validation.ts:
   * no records, an unknown type, a delete without a key, a bad header, producer or offset option),
   * `WAL_RECORD_TOO_LARGE`, `WAL_BATCH_TOO_LARGE`, `WAL_EPOCH_MISMATCH` (expectedEpoch, details
   * `expectedEpoch`, `epoch`), `WAL_OFFSET_MISMATCH` (expectedOffset),
   * `WAL_SEQUENCE_STALE` (a producer sequence below its last), `WAL_NO_SPACE` (disk-full mode),
   * `WAL_READ_ONLY` (after a failed fsync), `WAL_IO_ERROR` (write failed and rolled back), `WAL_CLOSED`;
   * `TypeError` only when `records` is not an array of objects or `options` not an object.
   */
  append(records: readonly AppendRecord[], options: AppendOptions = {}): Promise<AppendResult> {
    const payloadBytes = validateBatch(records, this.options);
    validateAppendOptions(options);
    this.checkOpen();
    const { producerId, sequence, expectedOffset, expectedEpoch } = options;
    // Before the producer check: a fenced-off leader's retry gets no acknowledgement either.
    if (expectedEpoch !== undefined && expectedEpoch !== this.writer.epoch) {
      throw new WalError('WAL_EPOCH_MISMATCH', `expected the log's epoch to be ${expectedEpoch}, but it is ${this.writer.epoch}`, {
        expectedEpoch,
        epoch: this.writer.epoch,
      });
    }
    if (producerId !== undefined && sequence !== undefined) {
      const known = this.producers.check(producerId, sequence);
      if (known.kind === 'duplicate') return known.result;
      if (known.kind === 'stale') {
        throw new WalError('WAL_SEQUENCE_STALE', `producer ${producerId} already wrote sequence ${known.lastSequence}; ${sequence} is stale`, {
          producerId,
          sequence,
          lastSequence: known.lastSequence,
        });
      }
    }
    this.writer.checkWritable();
    if (expectedOffset !== undefined && expectedOffset !== this.writer.nextOffset) {
      throw new WalError('WAL_OFFSET_MISMATCH', `expected the batch to start at offset ${expectedOffset}, but the next offset is ${this.writer.nextOffset}`, {
        expectedOffset,
        nextOffset: this.writer.nextOffset,
      });
    }
    const producer = producerId !== undefined && sequence !== undefined ? { producerId, sequence } : undefined;
    const frame = encodeFrame(records, payloadBytes, producer);
    return this.writer.enqueue(frame, records.length, options.sync === true, producer);
  }

  /**
   * Reads up to `limit` records (default 100) from `fromOffset`, never past the high watermark, and
   * at most `maxBytes` of them by `recordSizeBytes` (one larger record comes alone). Returns `[]`
   * when `fromOffset` is `highWatermark + 1`.
   *
   * Rejects with `WAL_OFFSET_COMPACTED` below the first retained offset, `WAL_OFFSET_OUT_OF_RANGE`
   * beyond `highWatermark + 1`, `WAL_CORRUPTION` on a bad checksum, `WAL_CLOSED`.
   */
  async read(fromOffset: number, options: ReadOptions = {}): Promise<WalRecord[]> {
    checkOffset(fromOffset, 'fromOffset');
    const limit = options.limit ?? DEFAULT_READ_LIMIT;
    const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`limit must be a positive integer, got ${String(limit)}`);
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new RangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
    this.checkOpen();
    const end = this.highWatermark + 1;
    this.checkStart(fromOffset, end);
    if (fromOffset === end) return [];
    return (await this.readRange(fromOffset, end, limit, maxBytes)).records;
  }

  /** Reads through the reader; a failure caused by a concurrent close is reported as `WAL_CLOSED`. */
  private async readRange(fromOffset: number, end: number, limit: number, maxBytes: number, skipKeylessPuts = false): Promise<ReadBatch> {
    try {
      return await this.reader.read(fromOffset, end, limit, maxBytes, skipKeylessPuts);
    } catch (error) {
      if (this.statusValue !== 'open') throw closedError();
      throw error;
    }
  }

  /**
   * Throws what a read or tail starting at `fromOffset` would: `WAL_OFFSET_COMPACTED` below the first
   * retained offset, `WAL_OFFSET_OUT_OF_RANGE` beyond `end` (default: the high watermark + 1).
   */
  private checkStart(fromOffset: number, end = this.highWatermark + 1): void {
    if (fromOffset < this.firstOffset) {
      throw new WalError('WAL_OFFSET_COMPACTED', `offset ${fromOffset} is below the first retained offset ${this.firstOffset}`, {
        fromOffset,
        firstOffset: this.firstOffset,
      });
    }
    if (fromOffset > end) {
      throw new WalError('WAL_OFFSET_OUT_OF_RANGE', `offset ${fromOffset} is beyond the end of the log (high watermark ${end - 1})`, {
        fromOffset,
        highWatermark: end - 1,
      });
    }
  }

  /** Every record from `fromOffset` up to `toOffset` (exclusive; default: the high watermark + 1). */
  range(fromOffset: number, toOffset?: number): AsyncIterableIterator<WalRecord> {
    return new BatchIterator(this.rangeBatches(fromOffset, toOffset));
  }

  /**
   * {@link range} in the batches it reads: every record from `fromOffset` up to `toOffset`
   * (exclusive; default and at most: the high watermark + 1 as of the call), never one at or past it.
   */
  async *rangeBatches(fromOffset: number, toOffset?: number): AsyncIterableIterator<WalRecord[]> {
    let next = fromOffset;
    const end = Math.min(toOffset ?? Number.MAX_SAFE_INTEGER, this.highWatermark + 1);
    while (next < end) {
      const read = await this.read(next, { limit: Math.min(RANGE_READ_RECORDS, end - next) });
      // The limit counts records, not offsets: over a key-compaction gap a read runs past `end`.
      const batch = read.length > 0 && read[read.length - 1]!.offset >= end ? read.filter((record) => record.offset < end) : read;
      if (batch.length > 0) yield batch;
      if (batch.length < read.length || read.length === 0) return;
      next = batch[batch.length - 1]!.offset + 1;
    }
  }

  /**
   * The log's tail from `fromOffset`: batches of records as it catches up and then as the high
   * watermark moves, and an idle signal once caught up and every `idleMs` without records (see
   * {@link LogTail}). Ends when `signal` aborts; throws `WAL_CLOSED` when the log closes and
   * `WAL_OFFSET_COMPACTED` if compaction removes what it still has to read.
   *
   * Throws `WAL_OFFSET_COMPACTED` below the first retained offset, `WAL_OFFSET_OUT_OF_RANGE` beyond
   * `highWatermark + 1`, `WAL_CLOSED`, and `RangeError` / `TypeError` for malformed arguments.
   */
  openTail<A extends TailAdmission = TailAdmission>(fromOffset: number, options: TailLoopOptions<A> = {}): LogTail<A> {
    checkOffset(fromOffset, 'fromOffset');
    const tail = new LogTail(this.tailSource, fromOffset, options);
    this.checkOpen();
    this.checkStart(fromOffset);
    return tail;
  }

  /**
   * The records of {@link openTail}, one at a time: catches up from disk, then follows new appends.
   * Ends when `signal` aborts; throws as `openTail` does.
   */
  tail(fromOffset: number, options: TailOptions = {}): AsyncIterableIterator<WalRecord> {
    const { signal, maxRecords, maxBytes } = options;
    return new BatchIterator(this.openTail(fromOffset, { signal, maxRecords, maxBytes }).batches());
  }

  /**
   * Resolves `true` once the high watermark is above `offset`, `false` if `signal` aborts first.
   * Rejects with `WAL_CLOSED` when the log closes.
   */
  waitForHighWatermark(offset: number, signal?: AbortSignal): Promise<boolean> {
    if (this.highWatermark > offset) return Promise.resolve(true);
    if (signal?.aborted === true) return Promise.resolve(false);
    if (this.statusValue !== 'open') return Promise.reject(closedError());
    return this.waiters.wait(offset, signal);
  }

  /**
   * The first offset whose timestamp is at or after `timestampMs`, or `highWatermark + 1` when none
   * is (nor anything visible). Rejects with `WAL_CORRUPTION` on a bad checksum, `WAL_CLOSED`.
   */
  async offsetForTimestamp(timestampMs: number): Promise<number> {
    this.checkOpen();
    try {
      return await this.reader.offsetForTimestamp(timestampMs, this.highWatermark + 1);
    } catch (error) {
      if (this.statusValue !== 'open') throw closedError();
      throw error;
    }
  }

  /** Forces an `fdatasync` of everything written; resolves with the high watermark. */
  async sync(): Promise<number> {
    this.checkOpen();
    this.writer.syncNow();
    return this.highWatermark;
  }

  /** Writes everything queued now rather than at the end of this event-loop turn. */
  async flush(): Promise<void> {
    this.checkOpen();
    this.writer.flush();
  }

  /** A point-in-time summary: counts, sizes, offsets and I/O counters. */
  stats(): WalStats {
    return {
      recordCount: this.segments.active.nextOffset - this.firstOffset,
      segmentCount: this.segments.count,
      bytesOnDisk: this.segments.bytesOnDisk(),
      firstOffset: this.firstOffset,
      lastOffset: this.writer.writtenNext - 1,
      highWatermark: this.highWatermark,
      nextOffset: this.writer.nextOffset,
      io: { ...this.io },
      status: this.statusValue,
      writeState: this.writer.writeState,
    };
  }

  /** The log's segments now, oldest first; the last is the active one. */
  listSegments(): SegmentInfo[] {
    const active = this.segments.active;
    return [...this.segments].map((segment) => ({
      baseOffset: segment.baseOffset,
      nextOffset: segment.nextOffset,
      sizeBytes: segment.fileSize,
      dataBytes: segment.dataEnd,
      lastTimestamp: segment.lastTimestamp,
      isActive: segment === active,
    }));
  }

  /**
   * Deletes every sealed segment whose records all lie below `offset` (never the active one), then
   * syncs the directory. Resolves with the number of segments deleted. Readers still inside a deleted
   * segment finish; later reads below the new first offset get `WAL_OFFSET_COMPACTED`.
   */
  async deleteSegmentsBefore(offset: number): Promise<number> {
    checkOffset(offset, 'offset');
    this.checkOpen();
    const { storage, dir } = this.options;
    let deleted = 0;
    try {
      while (this.segments.count > 1 && this.segments.first.nextOffset <= offset) {
        const segment = this.segments.first;
        // The producer table lives in sealed segments' index files: before the last of them goes,
        // it is saved on its own, or a crash would forget every producer and let retries in twice.
        // That index holds the table as of the active segment's start already: renaming it needs
        // no space (compaction must work on a full disk); without it, a new file is written.
        if (this.segments.count === 2) {
          if (storage.exists(segment.indexPath)) {
            storage.rename(segment.indexPath, join(dir, PRODUCERS_FILE));
            // Durable before the unlink: a crash must never keep the unlink and lose the table.
            storage.syncDir(dir);
          } else {
            this.writer.persistProducers();
          }
        }
        storage.unlink(segment.path);
        // Forgotten only once its file is gone: a failed unlink leaves it in the log, readable.
        this.segments.removeFirst();
        deleted++;
        if (storage.exists(segment.indexPath)) storage.unlink(segment.indexPath);
      }
      if (deleted > 0) storage.syncDir(dir);
    } catch (error) {
      throw storageFailure(error, 'deleting segments failed');
    }
    return deleted;
  }

  /**
   * Key compaction's engine half: rewrites sealed segments keeping only the records `plan.keep`
   * keeps, offsets unchanged, so that a rewritten segment has gaps that reads, tails and
   * `offsetForTimestamp` step over (see {@link SegmentRewritePlan}; docs/engine.md, "Key
   * compaction"). A segment is rewritten only when at least `plan.thresholdPercent` (default 20) of
   * its records are judged out; the active segment never is. Runs online: appends, reads and tails
   * go on; a read that started in a segment's old file finishes there. Crash-safe at every step:
   * the log reopens with the old segment or the new one. One rewrite runs at a time (a second
   * call waits for the first); `close` waits for the running one, which stops at its next chunk.
   *
   * Rejects with `WAL_CLOSED`, `WAL_CORRUPTION` (a frame that does not check out in a segment it
   * reads), `WAL_NO_SPACE` / `WAL_IO_ERROR` (the log goes on with the segment as it was), and
   * throws `TypeError` / `RangeError` for a malformed plan.
   */
  rewriteSegments(plan: SegmentRewritePlan): Promise<SegmentRewriteResult> {
    if (typeof plan !== 'object' || plan === null || typeof plan.keep !== 'function') throw new TypeError('plan.keep must be a function');
    if (plan.onSegmentJudged !== undefined && typeof plan.onSegmentJudged !== 'function') throw new TypeError('plan.onSegmentJudged must be a function');
    const threshold = plan.thresholdPercent;
    if (threshold !== undefined && !(typeof threshold === 'number' && threshold >= 0 && threshold <= 100)) {
      throw new RangeError(`plan.thresholdPercent must be a number in 0..100, got ${String(threshold)}`);
    }
    if (plan.belowOffset !== undefined) checkOffset(plan.belowOffset, 'plan.belowOffset');
    this.checkOpen();
    const context = {
      options: this.options,
      segments: this.segments,
      producers: this.producers,
      io: this.io,
      isOpen: () => this.statusValue === 'open',
      syncLog: () => {
        this.writer.syncNow();
      },
    };
    const run = this.rewriting.catch(() => undefined).then(() => rewriteSegments(context, plan));
    this.rewriting = run;
    return run;
  }

  /**
   * Writes and syncs what is queued, persists the active index, releases the directory. Idempotent:
   * every call resolves once the log is closed (so the directory can be opened again at once).
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.statusValue = 'closing';
    // A segment rewrite stops at its next step (it sees the status) and removes its file first.
    await this.rewriting.catch(() => undefined);
    try {
      await this.writer.close();
      await this.recoveryPoint?.close();
    } finally {
      this.waiters.closeAll(closedError());
      // Reads in flight finish first: a file closed under them could have its fd number reused.
      this.segments.closeAll();
      this.lock.release();
      this.statusValue = 'closed';
    }
  }

  private checkOpen(): void {
    if (this.statusValue !== 'open') throw closedError();
  }
}

/**
 * The active segment and its file, opened for writing: the last recovered segment, synced with its
 * directory entry (what a crashed process left in the page cache is part of the log now, and a
 * process may have died between a segment's rename and the directory fsync: appends acknowledged
 * into that file would vanish with the entry), or, for a new log, a first segment.
 */
async function openActiveSegment(options: ResolvedWalOptions, last: Segment | undefined, io: IoStats): Promise<{ segment: Segment; file: StorageFile }> {
  const { storage, dir } = options;
  if (last === undefined) {
    const prepared = options.preallocate ? await prepareSegmentFile(options).catch(() => undefined) : undefined;
    return createSegmentFile(options, 0, prepared, io, newFrameSeed());
  }
  const file = storage.open(last.path, 'read-write');
  try {
    file.datasync();
    storage.syncDir(dir);
  } catch (error) {
    file.close();
    throw error;
  }
  last.closeFile();
  last.attach(file);
  return { segment: last, file };
}

function checkOffset(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${String(value)}`);
}

function closedError(): WalError {
  return new WalError('WAL_CLOSED', 'the log is closed', {});
}

function storageFailure(error: unknown, what: string): unknown {
  return error instanceof TypeError || error instanceof RangeError ? error : walErrorFromStorage(error, what);
}
