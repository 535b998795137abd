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
  /** Least time between two writes of the recovery point (how far the log is known durable). */
  readonly recoveryPointIntervalMs?: number | undefined;
  /** Most producer ids remembered for idempotent appends (least recently used are forgotten). */
  readonly maxProducers?: number | undefined;
  /**
   * Most sealed segments whose files stay open for reads (least recently read are closed first;
   * the active segment's file is not counted).
   */
  readonly maxOpenSegmentFiles?: number | undefined;
  /** File-system port; defaults to the Node implementation. Tests inject faults here. */
  readonly storage?: Storage | undefined;
  /** Wall clock in ms; tests inject one. */
  readonly clock?: (() => number) | undefined;
  /**
   * Hears about failures no caller is waiting for (a failed background preallocation or interval
   * sync, an index that could not be written). Default: `process.emitWarning` (code `WALD_WARNING`).
   */
  readonly onWarning?: ((message: string, error: unknown) => void) | undefined;
}

/** `WalOptions` with every default filled in. */
export type ResolvedWalOptions = Required<Omit<WalOptions, 'storage' | 'clock' | 'onWarning'>> & {
  readonly storage: Storage;
  readonly clock: () => number;
  readonly onWarning: (message: string, error: unknown) => void;
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
  /**
   * 1 s: after a power cut, damage in frames synced more than about a second before it is reported
   * as corruption rather than cut as a torn tail; costs one small write and sync a second at most.
   */
  recoveryPointIntervalMs: 1000,
  /** Remember 10,000 producers for idempotent retries. */
  maxProducers: 10_000,
  /**
   * 256 files: with 64 MiB segments, 16 GiB of log readable without reopening, well within the
   * usual 1024 fds a process may open; a log of more segments no longer dies of `EMFILE`.
   */
  maxOpenSegmentFiles: 256,
});

const POSITIVE_INTEGER_KEYS = [
  'syncIntervalMs',
  'segmentSizeBytes',
  'maxRecordBytes',
  'maxBatchBytes',
  'maxBatchRecords',
  'indexIntervalBytes',
  'diskFullProbeIntervalMs',
  'recoveryPointIntervalMs',
  'maxProducers',
  'maxOpenSegmentFiles',
] as const;

/** Largest segment: index entries hold u32 byte positions. */
const MAX_SEGMENT_SIZE_BYTES = 2 ** 31;

/**
 * Fills in defaults and checks every option, naming the key in the error.
 *
 * Throws `TypeError` for a wrong type and `RangeError` for a value out of range.
 */
export function resolveWalOptions(options: WalOptions, defaultStorage: () => Storage): ResolvedWalOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('options.dir must be a non-empty string');
  const resolved = {
    ...WAL_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  } as Omit<ResolvedWalOptions, 'storage' | 'clock' | 'onWarning'> & WalOptions;
  if (!['always', 'interval', 'none'].includes(resolved.syncPolicy)) {
    throw new RangeError(`options.syncPolicy must be 'always', 'interval' or 'none', got ${String(resolved.syncPolicy)}`);
  }
  if (typeof resolved.preallocate !== 'boolean') throw new TypeError('options.preallocate must be a boolean');
  for (const key of POSITIVE_INTEGER_KEYS) {
    const value = resolved[key];
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`options.${key} must be a positive integer, got ${String(value)}`);
  }
  if (resolved.segmentSizeBytes < 4096 || resolved.segmentSizeBytes > MAX_SEGMENT_SIZE_BYTES) {
    throw new RangeError(`options.segmentSizeBytes must be between 4096 and ${MAX_SEGMENT_SIZE_BYTES}, got ${resolved.segmentSizeBytes}`);
  }
  if (resolved.maxBatchBytes > MAX_SEGMENT_SIZE_BYTES) {
    throw new RangeError(`options.maxBatchBytes must be at most ${MAX_SEGMENT_SIZE_BYTES}, got ${resolved.maxBatchBytes}`);
  }
  return {
    ...resolved,
    storage: options.storage ?? defaultStorage(),
    clock: options.clock ?? Date.now,
    onWarning: options.onWarning ?? emitWarning,
  };
}

function emitWarning(message: string, error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  process.emitWarning(`wald: ${message} (${reason})`, { code: 'WALD_WARNING' });
}
