/**
 * The public value types of the log engine: what goes in, what comes out.
 */
import type { WalRecord } from '../codec/record.js';

export type { AppendRecord, RecordHeaders, RecordType, WalRecord } from '../codec/record.js';

/** When the writer calls `fdatasync`. */
export type SyncPolicy = 'always' | 'interval' | 'none';

/** The size limits an append is checked against (`WAL_RECORD_TOO_LARGE`, `WAL_BATCH_TOO_LARGE`). */
export interface AppendLimits {
  /** Largest record as the log stores it (`encodedRecordBytes`: key, value, headers and their lengths), bytes. */
  readonly maxRecordBytes: number;
  /** Largest encoded batch (one append: frame header and every record), bytes. */
  readonly maxBatchBytes: number;
  /** Most records in one append. */
  readonly maxBatchRecords: number;
}

/** Per-call options of `Wal.append`. */
export interface AppendOptions {
  /** Force an `fdatasync` before acknowledging, whatever the policy. */
  readonly sync?: boolean | undefined;
  /** Conditional append: fail with `WAL_OFFSET_MISMATCH` unless the batch would start here. */
  readonly expectedOffset?: number | undefined;
  /**
   * Fencing token: fail with `WAL_EPOCH_MISMATCH` (nothing written) unless the log's epoch
   * (`Wal.epoch`) is this one when the batch is queued. Checked in call order with the other
   * appends and with `beginEpoch`, so a batch accepted under an epoch is stamped with it.
   */
  readonly expectedEpoch?: number | undefined;
  /** Idempotent append: with `sequence`, a retry of the last sequence is acknowledged again, not rewritten. */
  readonly producerId?: string | undefined;
  /** Sequence number of this append for `producerId`; must grow from one append to the next. */
  readonly sequence?: number | undefined;
}

/** What an acknowledged append returns. */
export interface AppendResult {
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** The timestamp given to every record of the batch (ms since the epoch). */
  readonly timestamp: number;
  /** True when this was a retry of an already written producer sequence. */
  readonly duplicate: boolean;
}

/** Bounds of one read. */
export interface ReadOptions {
  /** Most records to return (default 100). */
  readonly limit?: number | undefined;
  /**
   * Most bytes of records to return, each counted by `recordSizeBytes` (key + value + header names
   * and values + 48 per record + 24 per header); at least one record is returned if any is available.
   */
  readonly maxBytes?: number | undefined;
}

/** Bounds and cancellation of a tail. */
export interface TailOptions {
  /** Ends the tail (the iterator returns) when aborted. */
  readonly signal?: AbortSignal | undefined;
  /** Most records per batch (default 1000). */
  readonly maxRecords?: number | undefined;
  /** Most bytes per batch, as `ReadOptions.maxBytes` counts them (default 1 MiB); one larger record comes alone. */
  readonly maxBytes?: number | undefined;
}

/**
 * What a consumer of a tail grants one read of the log (see `TailLoopOptions.admit`): held by the
 * tail until it hands it over with the batch read, or gives it back with `release` when the read
 * delivers nothing.
 */
export interface TailAdmission {
  /** Gives the grant back. Called by the tail at most once, and only for a grant it did not hand over. */
  release(): void;
}

/** Options of `Wal.openTail`: a tail's bounds, its idle signal, and an optional admission of each read. */
export interface TailLoopOptions<A extends TailAdmission = TailAdmission> extends TailOptions {
  /**
   * Period of the idle signal while no record arrives, ms (a positive integer). Unset: the tail
   * signals idle only once, when it first catches up.
   */
  readonly idleMs?: number | undefined;
  /**
   * Admits each read of the log, for consumers that bound the memory of many tails together (the
   * server's TailWal budget). Called once records are available at `nextOffset`, before they are
   * read, with the most bytes the read may return: `maxBytes`, or the size of the record at
   * `nextOffset` when it alone is larger (the read before found it, dropped it, and asks again for
   * its size, so that nothing is held while the consumer waits). Resolves with a grant, which the
   * tail hands over with the batch (`TailEvent.admission`) or releases when the read delivers
   * nothing; or with `undefined` to end the tail. A rejection ends the tail with that error.
   */
  readonly admit?: ((nextOffset: number, bytes: number) => Promise<A | undefined>) | undefined;
  /**
   * Leave `PUT` records without a key out of the batches (no object is made for them; they still
   * count against `maxRecords`), for a consumer to which they change nothing: the key-value view,
   * in a log of plain appended values. A batch then may hold no record while its `nextOffset`
   * moved: it is delivered all the same, so that the consumer learns how far the log is applied.
   */
  readonly skipKeylessPuts?: boolean | undefined;
}

/** A batch of a tail: consecutive records read up to the high watermark. */
export interface TailRecordsEvent<A extends TailAdmission = TailAdmission> {
  readonly kind: 'records';
  /**
   * At least one record; offsets consecutive from the tail's position. With `skipKeylessPuts`,
   * those records minus the keyless `PUT`s: possibly none.
   */
  readonly records: readonly WalRecord[];
  /** The offset after the last record: where the tail goes on. */
  readonly nextOffset: number;
  /** The sum of `recordSizeBytes` over `records`: at most `maxBytes`, or one larger record. */
  readonly sizeBytes: number;
  /** The grant `admit` gave for this read (undefined without `admit`): the consumer's now. */
  readonly admission: A | undefined;
}

/**
 * The idle signal of a tail: it has delivered everything up to the high watermark. Given once when
 * the tail first catches up, then every `idleMs` while no record arrives.
 */
export interface TailIdleEvent {
  readonly kind: 'idle';
  /** Where the tail goes on: the offset after the last record delivered. */
  readonly nextOffset: number;
}

/** One step of a tail: a batch of records, or the idle signal. */
export type TailEvent<A extends TailAdmission = TailAdmission> = TailRecordsEvent<A> | TailIdleEvent;

/**
 * I/O counters since the log was opened. The engine counts into one such object, shared by its
 * writer and readers; `Wal.stats()` hands out a read-only copy. `reads` and `bytesRead` count
 * reads of files: what a reader gets from the recent frames in memory (recent-frames.ts) is not
 * counted.
 */
export interface IoStats {
  bytesWritten: number;
  bytesRead: number;
  writes: number;
  reads: number;
  fsyncs: number;
}

/** A point-in-time summary of the log. */
export interface WalStats {
  /** Records between `firstOffset` and `lastOffset` (retained records). */
  readonly recordCount: number;
  readonly segmentCount: number;
  /** Bytes of segment files on disk (preallocated space of the active segment included). */
  readonly bytesOnDisk: number;
  /** The first retained offset (equals `nextOffset` when the log holds no records). */
  readonly firstOffset: number;
  /** The last written offset, or -1 when nothing was ever written. */
  readonly lastOffset: number;
  /** The last durable offset visible to readers, or -1. */
  readonly highWatermark: number;
  readonly nextOffset: number;
  readonly io: Readonly<IoStats>;
  readonly status: WalStatus;
  /** Why appends are refused, when they are (`disk-full`, `read-only`). */
  readonly writeState: WriteState;
}

/** One segment of the log as `Wal.listSegments()` lists it: what compaction and retention decide on. */
export interface SegmentInfo {
  /** The offset of the segment's first record (its file name). */
  readonly baseOffset: number;
  /** The offset after its last record (equal to `baseOffset` when it holds none). */
  readonly nextOffset: number;
  /** Bytes its file occupies (preallocated space included). */
  readonly sizeBytes: number;
  /** Bytes of its header and frames: where the next frame would go (at most `sizeBytes`). */
  readonly dataBytes: number;
  /** The timestamp of its newest record, ms; -1 when it holds none. */
  readonly lastTimestamp: number;
  /** True for the segment being written (never deleted). */
  readonly isActive: boolean;
}

/** Lifecycle of a `Wal`. */
export type WalStatus = 'opening' | 'open' | 'closing' | 'closed';

/** Whether the log accepts appends. */
export type WriteState = 'writable' | 'disk-full' | 'read-only';

/** One thing recovery found and what it did about it. */
export type RecoveryFault =
  | {
      readonly kind: 'torn-tail';
      readonly segment: string;
      readonly position: number;
      readonly bytesCut: number;
      /** Side file holding the cut bytes. */
      readonly savedTo: string;
    }
  | { readonly kind: 'index-rebuilt'; readonly segment: string; readonly reason: string }
  /**
   * The file ended inside the zero padding of its last frame (a power cut kept the frame's bytes
   * and not all of the padding written with them): the padding was written again, so that the
   * file reaches the end of its data.
   */
  | { readonly kind: 'padding-restored'; readonly segment: string; readonly position: number; readonly bytesAdded: number }
  | { readonly kind: 'temp-file-removed'; readonly file: string };

/** What `Wal.open` found and did. */
export interface RecoveryReport {
  readonly segments: number;
  /** Records in the log after recovery. */
  readonly records: number;
  readonly firstOffset: number;
  readonly nextOffset: number;
  /** Bytes scanned (re-read and checked) during the open. */
  readonly bytesScanned: number;
  /** Bytes cut from a torn tail (0 after a clean stop). */
  readonly bytesCut: number;
  readonly faults: readonly RecoveryFault[];
  readonly durationMs: number;
}
