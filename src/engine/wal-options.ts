/**
 * The options of `Wal.open`, declared once: name, default, unit, documentation and check of each.
 * `wald serve` composes these declarations into its configuration (src/config/serve-config.ts),
 * so each engine option is also a config key with the same name in snake_case
 * (`segmentSizeBytes` is `segment_size_bytes`, `--segment-size-bytes`, `WALD_SEGMENT_SIZE_BYTES`).
 */
import { booleanOption, choiceOption, integerOption, type OptionDeclarations } from '../options/option-spec.js';
import { OptionSet, type OptionInput, type OptionValues } from '../options/option-set.js';
import type { Storage } from '../storage/storage.js';
import { openStorage, type StorageKind } from './storage-options.js';
import type { SyncPolicy } from './types.js';
import type { WalObserver } from './wal-observer.js';

/** The sync policies of the log; see `SyncPolicy`. */
export const SYNC_POLICIES = ['always', 'interval', 'none'] as const satisfies readonly SyncPolicy[];

const KiB = 1024;
const MiB = 1024 * KiB;

/** Largest segment: index entries hold u32 byte positions. */
const MAX_SEGMENT_SIZE_BYTES = 2 ** 31;

/** Every option of the engine, in the order of `--help` and docs/configuration.md. */
export const WAL_OPTION_DECLARATIONS = {
  syncPolicy: choiceOption(SYNC_POLICIES, {
    default: 'always',
    unit: 'policy',
    doc: 'when the log calls fdatasync',
    why:
      '`always` acknowledges an append only after `fdatasync`, so an acknowledged record survives a crash. ' +
      '`interval` acknowledges after the write and syncs every `sync_interval_ms` (up to that much acknowledged ' +
      'data can be lost in a machine crash); `none` leaves syncing to the OS.',
  }),
  syncIntervalMs: integerOption({
    default: 100,
    unit: 'ms',
    doc: 'period of the background sync under sync_policy interval',
    why:
      'The loss window of `interval`: short enough to bound loss, long enough to batch many writes per sync. ' +
      'Ignored under the other policies.',
  }),
  segmentSizeBytes: integerOption(
    {
      default: 64 * MiB,
      unit: 'bytes',
      doc: 'size at which a segment is sealed and the next one started',
      why:
        'As etcd: big enough to amortise rotation, small enough to compact in steps. The upper bound because ' +
        'index entries hold 32-bit byte positions.',
    },
    { min: 4096, max: MAX_SEGMENT_SIZE_BYTES },
  ),
  preallocate: booleanOption({
    default: true,
    doc: 'fill new segments with zeros up front',
    why:
      'Overwriting written blocks syncs faster than growing a file (measured about 1.5x on ext4), at the cost of ' +
      'disk allocated ahead of time: up to two segments (the active one and the next).',
  }),
  maxRecordBytes: integerOption({
    default: 1 * MiB,
    unit: 'bytes',
    doc: 'largest record (key + value + headers)',
    why: 'Bounds the memory of one record everywhere.',
  }),
  maxBatchBytes: integerOption(
    {
      default: 4 * MiB,
      unit: 'bytes',
      doc: 'largest batch (one append)',
      why: 'The default gRPC message size; bounded like a segment.',
    },
    { max: MAX_SEGMENT_SIZE_BYTES },
  ),
  maxBatchRecords: integerOption({
    default: 10_000,
    unit: 'records',
    doc: 'most records in one append',
    why: 'Bounds the work of one append.',
  }),
  indexIntervalBytes: integerOption({
    default: 4 * KiB,
    unit: 'bytes',
    doc: 'bytes of log between two sparse index entries',
    why: "As Kafka's `index.interval.bytes`: a read scans at most that much to find its first offset.",
  }),
  diskFullProbeIntervalMs: integerOption({
    default: 1000,
    unit: 'ms',
    doc: 'how often free space is checked while the disk is full',
    why: 'While the disk is full appends fail (`RESOURCE_EXHAUSTED`) and resume by themselves once space returns; this is how soon.',
  }),
  recoveryPointIntervalMs: integerOption({
    default: 1000,
    unit: 'ms',
    doc: 'least time between two writes of the recovery point',
    why:
      'The recovery point (`RECOVERY`) records how far the log is known durable. After a power cut, damage in frames ' +
      'synced before the last written point is reported as corruption instead of being cut as a torn tail; a smaller ' +
      'value narrows that blind spot at the cost of more small syncs (one per interval at most, only while appends are synced).',
  }),
  maxProducers: integerOption({
    default: 10_000,
    unit: 'producers',
    doc: 'producer ids remembered for idempotent appends',
    why: 'The least recently used are forgotten first.',
  }),
  maxOpenSegmentFiles: integerOption({
    default: 256,
    unit: 'files',
    doc: 'sealed segments whose files stay open for reads',
    why:
      "The least recently read is closed first and reopened when read again (the active segment's file is not counted). " +
      '256 keeps 16 GiB of 64 MiB segments open, well below the usual limit of 1024 fds per process, so a log of many ' +
      'segments cannot die of `EMFILE`. A file is closed only once no read uses it, so concurrent reads may briefly hold a few more.',
  }),
  tailCacheBytes: integerOption(
    {
      default: 2 * MiB,
      unit: 'bytes',
      doc: 'bytes of the newest frames kept in memory for tails and reads',
      why:
        'A tail, the key-value view and a follower read what was just appended from memory instead of the file: no ' +
        'read through the thread pool and no checksum pass over bytes that never left memory. A reader further behind ' +
        "reads the file. 2 MiB holds two of a follower's runs (replication.max_batch_bytes) and many group commits; a " +
        'larger cache keeps more frames alive into V8\'s old generation, whose collections then cost more (measured: an ' +
        '8 MiB cache, full after about 2 s of 45k records/s, raised the worst append latency from 9-13 ms to 16-25 ms). 0 turns it off.',
    },
    { min: 0 },
  ),
} satisfies OptionDeclarations;

/** The engine's options and their checks. */
export const WAL_OPTIONS = new OptionSet(WAL_OPTION_DECLARATIONS);

/** The engine's declared options, every one present. */
export type WalOptionValues = OptionValues<typeof WAL_OPTION_DECLARATIONS>;

/** Defaults of the engine; each is a named limit with its unit in the key. */
export const WAL_DEFAULTS: WalOptionValues = WAL_OPTIONS.defaults;

/**
 * Options of `Wal.open`: the data directory, the declared options (see
 * {@link WAL_OPTION_DECLARATIONS}; each optional), and what tests inject.
 */
export interface WalOptions extends OptionInput<typeof WAL_OPTION_DECLARATIONS> {
  /** Data directory; created if missing. */
  readonly dir: string;
  /**
   * Where the log lives: `'disk'` (the default: files in `dir`), `'memory'` (a new `MemoryStorage`:
   * nothing written to disk, `dir` only a name, the log gone with the process), or a `Storage`
   * (a `MemoryStorage` shared by several opens, one with a cap; tests inject faults here).
   */
  readonly storage?: StorageKind | Storage | undefined;
  /** Wall clock in ms; tests inject one. */
  readonly clock?: (() => number) | undefined;
  /**
   * Hears about failures no caller is waiting for (a failed background preallocation or interval
   * sync, an index that could not be written). Default: `process.emitWarning` (code `WALD_WARNING`).
   */
  readonly onWarning?: ((message: string, error: unknown) => void) | undefined;
  /** Hears about group commits, syncs, segment rolls and write-state changes (metrics, logs); default: none. */
  readonly observer?: WalObserver | undefined;
}

/** `WalOptions` with every default filled in. */
export type ResolvedWalOptions = WalOptionValues & {
  readonly dir: string;
  readonly storage: Storage;
  readonly clock: () => number;
  readonly onWarning: (message: string, error: unknown) => void;
  readonly observer: WalObserver | undefined;
};

/**
 * Fills in defaults and checks every option, naming the key in the error (`options.syncIntervalMs
 * must be a positive integer, got 0`).
 *
 * Throws `TypeError` for a wrong type (`storage` neither a name nor a `Storage` too) and
 * `RangeError` for a value out of range.
 */
export function resolveWalOptions(options: WalOptions, defaultStorage: () => Storage): ResolvedWalOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('options.dir must be a non-empty string');
  return {
    ...WAL_OPTIONS.resolve(options, {}),
    dir: options.dir,
    storage: options.storage === undefined || options.storage === 'disk' ? defaultStorage() : openStorage(options.storage),
    clock: options.clock ?? Date.now,
    onWarning: options.onWarning ?? emitWarning,
    observer: options.observer,
  };
}

function emitWarning(message: string, error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  process.emitWarning(`wald: ${message} (${reason})`, { code: 'WALD_WARNING' });
}
