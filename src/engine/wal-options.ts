import type { Storage } from '../storage/storage.js';
import type { SyncPolicy } from './types.js';

/** Options of `Wal.open`. Only `dir` is required. */
export interface WalOptions {
  /** Data directory; created if missing. */
  readonly dir: string;
  readonly syncPolicy?: SyncPolicy | undefined;
  /** Period of the background `fdatasync` under the `interval` policy. */
  readonly syncIntervalMs?: number | undefined;
  /** Size at which the active segment is sealed and a new one started. */
  readonly segmentSizeBytes?: number | undefined;
  /** Fill new segments with zeros up to `segmentSizeBytes` so that syncs do not grow the file. */
  readonly preallocate?: boolean | undefined;
  /** Largest key + value + headers of one record. */
  readonly maxRecordBytes?: number | undefined;
  /** Largest encoded batch (one append call). */
  readonly maxBatchBytes?: number | undefined;
  /** Most records in one append call. */
  readonly maxBatchRecords?: number | undefined;
  /** Bytes of log between two entries of the sparse index. */
  readonly indexIntervalBytes?: number | undefined;
  /** How often a log in disk-full mode checks whether space has returned. */
  readonly diskFullProbeIntervalMs?: number | undefined;
  /** Most producer ids remembered for idempotent appends (least recently used are forgotten). */
  readonly maxProducers?: number | undefined;
  /** File-system port; defaults to the Node implementation. Tests inject faults here. */
  readonly storage?: Storage | undefined;
  /** Wall clock in ms; tests inject one. */
  readonly clock?: (() => number) | undefined;
}

/** `WalOptions` with every default filled in. */
export type ResolvedWalOptions = Required<Omit<WalOptions, 'storage' | 'clock'>> & {
  readonly storage: Storage;
  readonly clock: () => number;
};

/** Defaults of the engine; each is a named limit with its unit in the key. */
export const WAL_DEFAULTS = Object.freeze({
  /** Acknowledge only after `fdatasync`: the safe default. */
  syncPolicy: 'always' as SyncPolicy,
  /** 100 ms: the loss window of the `interval` policy. */
  syncIntervalMs: 100,
  /** 64 MiB, as etcd: big enough to amortise rotation, small enough to compact in steps. */
  segmentSizeBytes: 64 * 1024 * 1024,
  /** Overwriting written blocks syncs ~1.5x faster than growing a file on ext4 (measured here). */
  preallocate: true,
  /** 1 MiB per record. */
  maxRecordBytes: 1024 * 1024,
  /** 4 MiB per append, the default gRPC message size. */
  maxBatchBytes: 4 * 1024 * 1024,
  /** 10,000 records per append. */
  maxBatchRecords: 10_000,
  /** One index entry per 4 KiB of log, as Kafka's `index.interval.bytes`. */
  indexIntervalBytes: 4096,
  /** Check for free space once a second while the disk is full. */
  diskFullProbeIntervalMs: 1000,
  /** Remember 10,000 producers for idempotent retries. */
  maxProducers: 10_000,
});
