import { join } from 'node:path';
import { decodeEpochHistory, encodeEpochHistory, type EpochHistoryFile, type EpochStart } from '../codec/epoch-history-file.js';
import { WalError } from '../errors.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { Storage } from '../storage/storage.js';
import { EPOCHS_FILE, TEMP_SUFFIX } from './segment-name.js';

/** Where an epoch ends in a log: `Wal.epochEnd`'s answer (GetEpochEnd, replication.proto). */
export interface EpochEnd {
  /** The greatest epoch of the history at or below the asked one (the asked one when none is). */
  readonly epoch: number;
  /** The offset after the last record of `epoch`: the next entry's start, or the log's next offset. */
  readonly endOffset: number;
}

/**
 * The log's epoch history in memory and on disk (`EPOCHS`, src/codec/epoch-history-file.ts): which
 * leader epoch wrote which stretch of the log. Every change is written durably (temp ->
 * fdatasync -> rename -> directory fsync) before it is adopted, and before any frame of a new
 * epoch is written: so after a crash the file never lacks an epoch that a frame carries, and an
 * entry may at most start past the end of the log (its frames were lost), which the open drops.
 */
export class EpochHistory {
  private constructor(
    private readonly storage: Storage,
    private readonly dir: string,
    private file: EpochHistoryFile,
  ) {}

  /**
   * The history as recovered (`file`, undefined when the log has none), reconciled with the log's
   * recovered end `nextOffset`: entries that start past it began after what survived a crash (no
   * frame of theirs is in the log), so they are dropped, and the file is rewritten without them.
   *
   * Throws `StorageError` when that rewrite fails.
   */
  static open(storage: Storage, dir: string, file: EpochHistoryFile | undefined, nextOffset: number): EpochHistory {
    const history = new EpochHistory(storage, dir, file ?? { entries: [], isReplicated: false });
    const entries = history.file.entries;
    const kept = entries.filter((entry) => entry.startOffset <= nextOffset);
    if (kept.length < entries.length) history.write({ ...history.file, entries: kept, floor: floorAfter(history.file, entries.slice(kept.length)) });
    return history;
  }

  /** The newest epoch (0 when the history is empty: a log never promoted). */
  get epoch(): number {
    return this.file.entries.at(-1)?.epoch ?? 0;
  }

  /**
   * The greatest epoch the history held and no longer holds (a cut of the log, or an open that
   * dropped an entry past a crashed log's end); 0 when none. A promotion goes above it.
   */
  get floor(): number {
    return this.file.floor ?? 0;
  }

  /** The entries, oldest first. */
  get entries(): readonly EpochStart[] {
    return this.file.entries;
  }

  /** True once the log holds frames another log stamped (see the file format's `replicated` flag). */
  get isReplicated(): boolean {
    return this.file.isReplicated;
  }

  /** Where `epoch` ends in a log whose next offset is `nextOffset` (see {@link EpochEnd}). */
  end(epoch: number, nextOffset: number): EpochEnd {
    const entries = this.file.entries;
    const i = entries.findLastIndex((entry) => entry.epoch <= epoch);
    if (i < 0) return { epoch, endOffset: Math.min(entries[0]?.startOffset ?? nextOffset, nextOffset) };
    return { epoch: entries[i]!.epoch, endOffset: entries[i + 1]?.startOffset ?? nextOffset };
  }

  /**
   * Adds `added` (epochs above the newest, start offsets not below the newest's) and, when
   * `replicated`, sets the `replicated` flag: written durably first, adopted after. Entries that
   * start past the first added one's start are dropped (their frames were cut: a failed write).
   * Does nothing when nothing changes. Throws `StorageError`.
   */
  add(added: readonly EpochStart[], replicated: boolean): void {
    const isReplicated = this.file.isReplicated || replicated;
    if (added.length === 0 && isReplicated === this.file.isReplicated) return;
    const start = added[0]?.startOffset ?? Number.POSITIVE_INFINITY;
    const kept = this.file.entries.filter((entry) => entry.startOffset <= start);
    const dropped = this.file.entries.filter((entry) => entry.startOffset > start);
    this.write({ entries: [...kept, ...added], isReplicated, floor: floorAfter(this.file, dropped) });
  }

  private write(file: EpochHistoryFile): void {
    const path = join(this.dir, EPOCHS_FILE);
    writeFileDurably(this.storage, path, path + TEMP_SUFFIX, encodeEpochHistory(file));
    this.file = file;
  }
}

/**
 * The epoch history of the closed log in `dir` as stored (`EPOCHS`), or undefined when it has none
 * (a log never promoted nor replicated).
 *
 * Throws `WalError` `WAL_CORRUPTION` (`file` EPOCHS) when the file does not check out;
 * `StorageError` when it cannot be read.
 */
export function readEpochHistoryFile(storage: Storage, dir: string): EpochHistoryFile | undefined {
  const path = join(dir, EPOCHS_FILE);
  if (!storage.exists(path)) return undefined;
  const decoded = decodeEpochHistory(storage.readFile(path));
  if (!decoded.ok) throw new WalError('WAL_CORRUPTION', `the epoch history ${EPOCHS_FILE} does not check out (${decoded.reason})`, { file: EPOCHS_FILE, position: 0, reason: decoded.reason });
  return decoded.file;
}

/**
 * The entries of `file` that a cut of the log at `offset` removes: every one starting at or after
 * it (its frames are gone; the next frame written at `offset` brings its own epoch). The one rule
 * of both cuts of a log, the follower's (`truncateLogFrom`) and `wald repair`'s.
 */
export function epochsCutAt(file: EpochHistoryFile | undefined, offset: number): readonly EpochStart[] {
  return file?.entries.filter((entry) => entry.startOffset >= offset) ?? [];
}

/**
 * Cuts the epoch history of the closed log in `dir` at `offset` ({@link epochsCutAt}), durably
 * (temp -> fsync -> rename -> directory fsync), raising the history's floor to the greatest
 * epoch removed, and returns the entries removed. Call it after the
 * frames from `offset` on are gone, never before: a history without the epoch of a frame still in
 * the log would misname that frame's leader. Does nothing (and writes nothing) when no entry starts
 * at or after `offset`.
 *
 * Throws `WalError` `WAL_CORRUPTION` for an `EPOCHS` file that does not check out; `StorageError`.
 */
export function cutEpochHistory(storage: Storage, dir: string, offset: number): readonly EpochStart[] {
  const file = readEpochHistoryFile(storage, dir);
  const removed = epochsCutAt(file, offset);
  if (file !== undefined && removed.length > 0) {
    const path = join(dir, EPOCHS_FILE);
    writeFileDurably(storage, path, path + TEMP_SUFFIX, encodeEpochHistory({ ...file, entries: file.entries.filter((entry) => entry.startOffset < offset), floor: floorAfter(file, removed) }));
  }
  return removed;
}

/** The floor of `file` once `removed` (entries of it) are gone: the greatest epoch it ever held beyond what stays. */
function floorAfter(file: EpochHistoryFile, removed: readonly EpochStart[]): number {
  return Math.max(file.floor ?? 0, ...removed.map((entry) => entry.epoch));
}
