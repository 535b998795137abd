/**
 * The public value types of the log engine: what goes in, what comes out.
 */
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
  /** Most bytes of keys + values to return; at least one record is returned if any is available. */
  readonly maxBytes?: number | undefined;
}

/** Bounds and cancellation of a tail. */
export interface TailOptions {
  /** Ends the tail (the iterator returns) when aborted. */
  readonly signal?: AbortSignal | undefined;
  /** Most records per batch yielded by `tailBatches` (default 1000). */
  readonly maxRecords?: number | undefined;
  /** Most payload bytes per batch yielded by `tailBatches` (default 1 MiB). */
  readonly maxBytes?: number | undefined;
}

/**
 * I/O counters since the log was opened. The engine counts into one such object, shared by its
 * writer and readers; `Wal.stats()` hands out a read-only copy.
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
