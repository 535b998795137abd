/**
 * Where the log lives: on disk (`NodeStorage`) or in memory (`MemoryStorage`), chosen by name in
 * `Wal.open({ storage: 'memory' })` and by the `storage` key of `wald serve`
 * (src/config/serve-config.ts composes these declarations), or given as a `Storage` of the
 * caller's own. The log, its snapshots and compaction all go through the one storage chosen.
 */
import { choiceOption, integerOption, type OptionDeclarations } from '../options/option-spec.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import { NodeStorage } from '../storage/node-storage.js';
import type { Storage } from '../storage/storage.js';

/** The storages that can be chosen by name: `disk` (the data directory's files) and `memory` (nothing written to disk). */
export const STORAGE_KINDS = ['disk', 'memory'] as const;

/** A storage chosen by name; see {@link STORAGE_KINDS}. */
export type StorageKind = (typeof STORAGE_KINDS)[number];

/** What a log's storage is, as stats report it: `other` for a `Storage` given by the caller (a test's, a wrapper). */
export type StorageKindReport = StorageKind | 'other';

/** The storage options of `wald serve`, in the order of `--help` and docs/configuration.md. */
export const STORAGE_OPTION_DECLARATIONS = {
  storage: choiceOption(STORAGE_KINDS, {
    default: 'disk',
    unit: 'storage',
    doc: 'where the log, its snapshots and its state live: disk (in data_dir) or memory',
    why:
      '`memory` runs the same engine on an in-memory storage: nothing is written to disk (`data_dir` is only a name, ' +
      'never created), and the log is gone when the server exits. Everything else is as on disk: reads, tails, ' +
      'the key-value view, snapshots (GetSnapshot streams them from memory) and compaction. For tests of ' +
      'applications and for caches. The offline commands (`wald verify`, `dump`, `repair`, `snapshot restore`) ' +
      'read data directories on disk and do not apply.',
  }),
  maxMemoryStorageBytes: integerOption(
    {
      default: 0,
      unit: 'bytes',
      doc: 'cap on the bytes the files hold under storage memory; 0: no cap',
      why:
        'Past it, writes fail as on a full disk: appends are refused with `RESOURCE_EXHAUSTED` (`WAL_NO_SPACE`) and ' +
        'resume by themselves once compaction frees space. Counts the bytes written into the log, index and snapshot ' +
        'files (preallocated space takes none). Without a cap the process grows until the machine refuses it. ' +
        'Ignored under storage disk.',
    },
    { min: 0 },
  ),
} satisfies OptionDeclarations;

/** How {@link openStorage} makes a memory storage. */
export interface StorageChoiceOptions {
  /** The cap of a memory storage (see `max_memory_storage_bytes`); 0 or undefined: none. */
  readonly maxMemoryStorageBytes?: number | undefined;
}

/**
 * The storage `choice` names: a new `NodeStorage` for `disk` (and when nothing is chosen), a new
 * `MemoryStorage` for `memory`, `choice` itself when it is a `Storage`.
 *
 * Throws `TypeError` naming `options.storage` for anything else.
 */
export function openStorage(choice: StorageKind | Storage | undefined, options: StorageChoiceOptions = {}): Storage {
  if (choice === undefined || choice === 'disk') return new NodeStorage();
  if (choice === 'memory') {
    const maxBytes = options.maxMemoryStorageBytes;
    return new MemoryStorage({ maxBytes: maxBytes === 0 ? undefined : maxBytes });
  }
  if (typeof choice === 'object' && choice !== null && typeof (choice as Partial<Storage>).open === 'function') return choice;
  throw new TypeError(`options.storage must be 'disk', 'memory' or a Storage, got ${typeof choice === 'string' ? `'${choice}'` : typeof choice}`);
}

/** What `storage` is, for stats: `disk`, `memory`, or `other` for any other implementation of the port. */
export function storageKindOf(storage: Storage): StorageKindReport {
  if (storage instanceof MemoryStorage) return 'memory';
  if (storage instanceof NodeStorage) return 'disk';
  return 'other';
}

/** The bytes a memory storage's files hold now (see `max_memory_storage_bytes`); 0 for any other storage. */
export function memoryStorageBytesOf(storage: Storage): number {
  return storage instanceof MemoryStorage ? storage.stats().usedBytes : 0;
}
