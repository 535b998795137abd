import { join } from 'node:path';
import { HighWatermarkWaiters } from '../engine/high-watermark-waiters.js';
import type { AppendOptions, AppendRecord, AppendResult, TailEvent, WalRecord } from '../engine/types.js';
import type { Wal } from '../engine/wal.js';
import { WalError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { encodeTxnWrites, type TxnWrite } from '../codec/txn-writes.js';
import { toByteString } from './page-token.js';
import { keyInfoPage, type KeyInfoPage, type ListKeyInfoOptions } from './key-info-page.js';
import { ENTRY_OVERHEAD_BYTES, KeyState, type KeyEntry } from './key-state.js';
import { RecordApplier } from './record-applier.js';
import type { SnapshotInfo } from './snapshot-info.js';
import { listSnapshots, loadNewestSnapshot, type SnapshotProblem } from './snapshot-reader.js';
import { SET_ASIDE_SUFFIX, setAsideSnapshotsAbove } from './snapshots-set-aside.js';
import { writeSnapshot, type WrittenSnapshot } from './snapshot-writer.js';
import { resolveStateOptions, snapshotDirOf, type StateOptions } from './state-options.js';
import type { StateView } from './state-view.js';
import { TxnGate, type TxnTicket } from './txn-gate.js';
import { txnPage } from './txn-page.js';
import { TxnTable, TXN_OVERHEAD_BYTES, type InDoubtTxn, type TxnState } from './txn-table.js';

/** Flush results kept for {@link StateKeeper.flushAll} to claim: flushes written by others are never claimed. */
const MAX_UNCLAIMED_FLUSHES = 1024;

/** What {@link StateKeeper.open} needs. */
export interface StateKeeperInit {
  /** The open log to keep the view of; it stays the caller's to close (after {@link StateKeeper.close}). */
  readonly wal: Wal;
  /** The file-system port the log uses, for the snapshot files. */
  readonly storage: Storage;
  readonly options?: StateOptions | undefined;
  /** Hears that the view stopped following the log (a failed read); the view then refuses every call with that error. */
  readonly onFailure?: ((error: WalError) => void) | undefined;
  /** Clock in ms for the report's duration and transaction ages; tests inject one. */
  readonly clock?: (() => number) | undefined;
  /** Hears each transaction aborted because `txn_timeout_ms` passed (the server logs it). */
  readonly onTxnTimeout?: ((aborted: TimedOutTxn) => void) | undefined;
  /**
   * Hears each snapshot the keeper wrote once it is durable, whoever asked for it: CreateSnapshot,
   * SnapshotKey or a compaction (the server logs and counts it).
   */
  readonly onSnapshotWritten?: ((snapshot: CreatedSnapshot) => void) | undefined;
  /**
   * Whether `open` starts the `txn_timeout_ms` timer (default true). A follower's server passes
   * false: only its leader appends to its log, so the timer starts when it is promoted
   * ({@link StateKeeper.startTxnTimeout}).
   */
  readonly startsTxnTimeout?: boolean | undefined;
}

/** An in-doubt transaction as reported: at recovery, in stats and listings. */
export interface InDoubtSummary {
  /** The transaction id, base64. */
  readonly txnIdBase64: string;
  readonly prepareOffset: number;
  readonly prepareTimestamp: number;
  /** Ms from the PREPARE's timestamp to the keeper's clock when reported. */
  readonly ageMs: number;
  readonly writeCount: number;
}

/** A transaction `txn_timeout_ms` aborted. */
export interface TimedOutTxn extends InDoubtSummary {
  /** The offset of the ABORT record the keeper appended. */
  readonly abortOffset: number;
  /** The reason it carries. */
  readonly reason: string;
}

/** In-doubt transactions a recovery report names at most (the oldest); `inDoubtCount` counts them all. */
export const MAX_REPORTED_IN_DOUBT = 100;

/** The snapshot the view was rebuilt from. */
export interface UsedSnapshot {
  readonly id: string;
  readonly type: SnapshotInfo['type'];
  /** The state held every record below this offset; the replay started here. */
  readonly walOffset: number;
  /** Keys the snapshot (the whole chain, for an incremental) put in the state. */
  readonly keyCount: number;
  readonly path: string;
  /** Files of the chain loaded: 1 for a full snapshot, more for an incremental on its base. */
  readonly chainLength: number;
}

/** What {@link StateKeeper.open} found and did: the view's part of the recovery report. */
export interface StateRecoveryReport {
  readonly snapshotDir: string;
  /** The snapshot the view started from; undefined when it was rebuilt from the log alone. */
  readonly snapshot: UsedSnapshot | undefined;
  /** Newer snapshots that could not be used, newest first, each with its file and the reason. */
  readonly skippedSnapshots: readonly SnapshotProblem[];
  /** The offset the replay of the log started at (the snapshot's wal offset, else the log's first). */
  readonly replayedFrom: number;
  /**
   * Offsets of the log replayed on top of the snapshot to catch up to the high watermark: the
   * records applied, the keyless PUTs the tail left out, and any gap key compaction left.
   */
  readonly recordsReplayed: number;
  /** Keys in the view once caught up. */
  readonly keyCount: number;
  readonly memoryBytes: number;
  /** Transactions in doubt once caught up (prepared, neither committed nor aborted). */
  readonly inDoubtCount: number;
  /** The oldest of them, at most {@link MAX_REPORTED_IN_DOUBT}, oldest PREPARE first. */
  readonly inDoubtTransactions: readonly InDoubtSummary[];
  readonly durationMs: number;
}

/** What a FlushAll did. */
export interface FlushResult {
  readonly keysRemoved: number;
  /** The offset of the `flush_all` record. */
  readonly offset: number;
}

/** What {@link StateKeeper.createSnapshot} takes. */
export interface CreateSnapshotOptions {
  /** gzip-compress the entries. */
  readonly compress?: boolean | undefined;
  /** Only the keys put or deleted since the newest full or incremental snapshot, which becomes the base. */
  readonly incremental?: boolean | undefined;
  /** Bytes encoded between turns of the event loop (`writeSnapshot`'s `chunkBytes`); smaller lets appends through more often. */
  readonly chunkBytes?: number | undefined;
}

/** A snapshot the view just wrote: its listing row, its checksum, and the time the write took. */
export interface CreatedSnapshot extends WrittenSnapshot {
  readonly durationMs: number;
}

/** The snapshot directory at a glance, for stats. */
export interface SnapshotSummary {
  /** Snapshot files with a readable header (every type). */
  readonly count: number;
  /** The newest full or incremental snapshot by id, unverified; undefined when there is none. */
  readonly newest: SnapshotInfo | undefined;
  /**
   * The oldest full or incremental snapshot by id, unverified; undefined when there is none. A
   * rebuild of the view may start at any of them (an older one when newer ones fail), so key
   * compaction keeps every tombstone at or above its wal offset (key-compaction.ts).
   */
  readonly oldest: SnapshotInfo | undefined;
}

/**
 * Keeps the key-value view of an open log current: rebuilt on open from the newest snapshot that
 * verifies plus the log after it, then kept up by following the engine's tail at the high
 * watermark, so it never shows a record a crash could take back. `flush_all` records clear it.
 *
 * Reads wait for the view to apply everything that was durable when they were asked
 * (read-your-writes: a client that got its append acknowledged reads its write). A failed read of
 * the log stops the view: every call fails from then on with that error, until the log is
 * reopened.
 */
export class StateKeeper {
  private readonly applied = new HighWatermarkWaiters();
  private readonly stopper = new AbortController();
  private readonly flushes = new Map<number, number>();
  /** Bytes that appends checked by {@link checkCapacity} may add and the view has not applied yet. */
  private pendingBytes = 0;
  /** Acknowledged appends not yet applied, by last offset, with the bytes they hold in {@link pendingBytes}. */
  private pending: { readonly lastOffset: number; readonly bytes: number }[] = [];
  private failure: WalError | undefined;
  private following: Promise<void> = Promise.resolve();
  /** The snapshot being written, if any: snapshots are written one at a time, in the order asked. */
  private snapshotting: Promise<unknown> = Promise.resolve();
  private isClosed = false;
  private readonly applier: RecordApplier;
  private readonly txnGate: TxnGate;
  private txnTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly wal: Wal,
    /** The file-system port of the snapshot files (the log's). */
    readonly storage: Storage,
    private readonly state: KeyState,
    /** Where the snapshots are, resolved against the data directory. */
    readonly snapshotDir: string,
    private readonly onFailure: ((error: WalError) => void) | undefined,
    private readonly clock: () => number,
    /** `tombstone_retention_ms`: how long key compaction keeps a `DELETE` at least (key-compaction.ts). */
    readonly tombstoneRetentionMs: number,
    /** The transactions as the view has applied them. */
    private readonly txns: TxnTable,
    /** `txn_timeout_ms`: in-doubt transactions older than this are aborted; 0: never. */
    readonly txnTimeoutMs: number,
    private readonly onTxnTimeout: ((aborted: TimedOutTxn) => void) | undefined,
    private readonly onSnapshotWritten: ((snapshot: CreatedSnapshot) => void) | undefined,
  ) {
    this.applier = new RecordApplier(
      state,
      (offset, keysRemoved) => {
        this.flushes.set(offset, keysRemoved);
        if (this.flushes.size > MAX_UNCLAIMED_FLUSHES) this.flushes.delete(this.flushes.keys().next().value!);
      },
      txns,
    );
    this.txnGate = new TxnGate(txns);
  }

  /**
   * Rebuilds the view of `init.wal` and starts following it. The newest snapshot in the snapshot
   * directory that verifies (and whose offset the log still reaches) is loaded, newer ones that
   * fail are skipped and reported; the log is replayed from the snapshot's wal offset (else from
   * its first offset) up to the high watermark.
   *
   * Rejects with `WalError` `WAL_STATE_LOST` when the log starts above offset 0 (compacted) and no
   * usable snapshot reaches its first offset: the records before it are gone and so would be their
   * keys. Also with the errors of reading the log (`WAL_CORRUPTION`, `WAL_IO_ERROR`) and of the
   * snapshot directory (`WAL_IO_ERROR`), and `TypeError` / `RangeError` for bad options.
   */
  static async open(init: StateKeeperInit): Promise<{ keeper: StateKeeper; report: StateRecoveryReport }> {
    const clock = init.clock ?? Date.now;
    const started = clock();
    const { wal, storage } = init;
    const options = resolveStateOptions(init.options);
    const snapshotDir = snapshotDirOf(wal.dir, options.snapshotDir);
    const logEnd = wal.highWatermark + 1;
    // A snapshot beyond the log's end holds records the log lost (a power cut under `none` took
    // what it covered): set aside before the log reuses those offsets and grows past it.
    const setAside = setAsideSnapshotsAbove(storage, snapshotDir, logEnd);
    const newest = await loadNewestSnapshot(storage, snapshotDir, { maxStateBytes: options.maxStateBytes, maxWalOffset: logEnd, txnMaxEnded: options.txnMaxEnded });
    const loaded = newest.loaded;
    const replayedFrom = loaded?.state.nextOffset ?? wal.firstOffset;
    if (replayedFrom < wal.firstOffset || (loaded === undefined && wal.firstOffset > 0)) {
      throw stateLost(wal, snapshotDir, loaded?.state.nextOffset, newest.failures);
    }
    removeTempFiles(storage, snapshotDir, listSnapshots(storage, snapshotDir).tempFiles);
    const state = loaded?.state ?? new KeyState({ maxStateBytes: options.maxStateBytes });
    const snapshotKeyCount = state.size;
    const txns = loaded?.txns ?? new TxnTable(options.txnMaxEnded);
    const keeper = new StateKeeper(wal, storage, state, snapshotDir, init.onFailure, clock, options.tombstoneRetentionMs, txns, options.txnTimeoutMs, init.onTxnTimeout, init.onSnapshotWritten);
    const recordsReplayed = await keeper.catchUp(replayedFrom);
    if (init.startsTxnTimeout !== false) keeper.startTxnTimeout();
    const inDoubt = keeper.inDoubtTransactions();
    const head = loaded?.chain[loaded.chain.length - 1];
    return {
      keeper,
      report: {
        snapshotDir,
        snapshot:
          loaded === undefined || head === undefined
            ? undefined
            : { id: head.id, type: head.type, walOffset: head.walOffset, keyCount: snapshotKeyCount, path: head.path, chainLength: loaded.chain.length },
        skippedSnapshots: [
          ...setAside.map((path): SnapshotProblem => ({ ok: false, file: path, reason: `its wal offset is beyond the log's end (${logEnd}): set aside, renamed to ${SET_ASIDE_SUFFIX}` })),
          ...newest.failures,
        ],
        replayedFrom,
        recordsReplayed,
        keyCount: state.size,
        memoryBytes: state.memoryBytes,
        inDoubtCount: inDoubt.length,
        inDoubtTransactions: inDoubt.slice(0, MAX_REPORTED_IN_DOUBT),
        durationMs: clock() - started,
      },
    };
  }

  /** Keys in the view now. */
  get keyCount(): number {
    return this.state.size;
  }

  /** The view's memory estimate now (see `KeyState.memoryBytes`). */
  get memoryBytes(): number {
    return this.state.memoryBytes;
  }

  /** The configured cap on {@link memoryBytes} (`max_state_bytes`). */
  get maxStateBytes(): number {
    return this.state.maxStateBytes;
  }

  /** Every record below this offset is applied. */
  get appliedOffset(): number {
    return this.state.nextOffset;
  }

  /**
   * The state of `key` once the view has applied everything durable now, or undefined when the
   * view holds no such key. Rejects with the error that stopped the view, or `WAL_CLOSED`.
   */
  async get(key: Uint8Array): Promise<KeyEntry | undefined> {
    await this.caughtUpWithDurable();
    return this.state.get(key);
  }

  /**
   * The offset of the record that set `key` as the view has applied it now (no wait, no copy), or
   * -1 when the view holds no such key: what key compaction asks of every keyed `PUT`.
   */
  latestOffsetOf(key: Uint8Array): number {
    return this.state.offsetOf(key);
  }

  /** {@link latestOffsetOf} of the key `bytes[start..end)`, read where it lies (key compaction's judge of a PREPARE's writes). */
  latestOffsetOfRange(bytes: Uint8Array, start: number, end: number): number {
    return this.state.offsetOfRange(bytes, start, end);
  }

  /**
   * One page of keys in key order with their offsets, timestamps and value sizes (see
   * {@link keyInfoPage}), once the view has applied everything durable now. Rejects as {@link get}
   * does, `WAL_INVALID_ARGUMENT` (field `page_token`) for a bad token, and `RangeError` for a
   * limit that is not a positive integer.
   */
  async listKeys(options: ListKeyInfoOptions): Promise<KeyInfoPage> {
    if (!Number.isSafeInteger(options.limit) || options.limit < 1) throw new RangeError(`limit must be a positive integer, got ${options.limit}`);
    await this.caughtUpWithDurable();
    return keyInfoPage(this.state, options);
  }

  /**
   * Removes every key: appends one `flush_all` record (the log stays the truth, so a reopened log
   * is empty too) and resolves once the view has applied it, with the keys it removed. Rejects
   * with the errors of `Wal.append` (`WAL_READ_ONLY`, `WAL_NO_SPACE`, `WAL_IO_ERROR`, ...) and as
   * {@link get} does.
   */
  async flushAll(): Promise<FlushResult> {
    this.checkUsable();
    const { firstOffset } = await this.wal.append([{ type: 'flush_all', value: Buffer.alloc(0) }]);
    await this.appliedThrough(firstOffset);
    const keysRemoved = this.flushes.get(firstOffset) ?? 0;
    this.flushes.delete(firstOffset);
    return { keysRemoved, offset: firstOffset };
  }

  /**
   * Appends client records to the log within the view's cap: the one way the server appends
   * (Append, and each append of an AppendStream). {@link checkCapacity} first, then `Wal.append`
   * (called before this returns, so appends keep the order of the calls); the bytes the batch may
   * add stay counted as pending until the view has applied it, so that appends in flight, or
   * acknowledged and not yet applied, cannot together pass the cap. Transaction records are
   * admitted by the rules (`TxnGate.admit`) in the same synchronous section, so the order of
   * admission is the order of offsets (docs/transactions.md); a failed append gives back what it
   * took.
   *
   * Rejects with `WAL_STATE_FULL`, `WAL_TXN_STATE` (a transaction record its state forbids),
   * `WAL_INVALID_ARGUMENT` (an empty transaction id, a value that does not fit its transaction
   * record) and the errors of `Wal.append`. Once the view has stopped (a
   * failed read), appends are not checked: the view holds no more.
   */
  async append(records: readonly AppendRecord[], options: AppendOptions = {}): Promise<AppendResult> {
    if (this.failure !== undefined) return this.wal.append(records, options);
    // A retry of an append the log already took is answered with the original's outcome: its
    // transaction records were admitted then, and would be refused now; the bytes it adds are
    // counted already (its PREPARE in the transaction table, its keys in the view or pending), and
    // counted again near the cap they would refuse an append that adds nothing.
    const { producerId, sequence } = options;
    const isRetry = producerId !== undefined && sequence !== undefined && this.wal.isDuplicateAppend(producerId, sequence);
    const reserved = isRetry ? 0 : this.checkCapacity(records);
    // No await from here to Wal.append: admission order is offset order.
    const ticket: TxnTicket | undefined = isRetry ? undefined : this.txnGate.admit(records);
    this.pendingBytes += reserved;
    let result: AppendResult;
    try {
      result = await this.wal.append(records, options);
    } catch (error) {
      this.pendingBytes -= reserved;
      if (ticket !== undefined) this.txnGate.undo(ticket);
      throw error;
    }
    if (ticket !== undefined) {
      if (result.duplicate) this.txnGate.undo(ticket);
      else this.txnGate.settle(ticket, result.lastOffset, this.state.nextOffset);
    }
    if (result.duplicate || this.state.nextOffset > result.lastOffset) this.pendingBytes -= reserved;
    else if (reserved > 0) this.pending.push({ lastOffset: result.lastOffset, bytes: reserved });
    return result;
  }

  /**
   * Refuses a batch that would add keys beyond `max_state_bytes`: throws `WalError`
   * `WAL_STATE_FULL` (details `configKey`, `limit`, `stateBytes`, `field` naming the first record
   * that adds a key past the cap). Puts to keys the view holds, deletes and keyless records always
   * pass, so a client at the cap can still overwrite and delete. Counts the bytes of appends not
   * yet applied (see {@link append}); near the cap, keys of those appends count as new.
   *
   * A PREPARE counts as a whole (its id and writes stay in memory until the transaction ends) and is
   * refused near the cap like a new key; its COMMIT never is.
   *
   * Returns the bytes the batch may add: every keyed put and PREPARE when that is far from the cap
   * (no key is looked up), else the PREPAREs and only the keys the view does not hold yet, each once.
   */
  checkCapacity(records: readonly AppendRecord[]): number {
    const { state } = this;
    const held = state.memoryBytes + this.txns.memoryBytes + this.pendingBytes;
    let added = 0;
    let prepareBytes = 0;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (isKeyedPut(record)) added += record.key.length + record.value.length + ENTRY_OVERHEAD_BYTES;
      else if (record.type === 'prepare' && record.key !== undefined) {
        // An in-doubt transaction holds its writes in memory until it ends; near the cap, it is refused as a whole.
        prepareBytes += 2 * record.key.length + record.value.length + TXN_OVERHEAD_BYTES;
        if (held + prepareBytes > state.maxStateBytes) throw stateFull(i, state.maxStateBytes, held);
      }
    }
    if (added === 0 || held + prepareBytes + added <= state.maxStateBytes) return added + prepareBytes;
    // Near the cap: only keys the view does not hold yet count (each once per batch).
    const seen = new Set<string>();
    let newBytes = 0;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (!isKeyedPut(record)) continue;
      const key = toByteString(record.key);
      if (seen.has(key)) continue;
      seen.add(key);
      if (state.get(record.key) !== undefined) continue;
      newBytes += record.key.length + record.value.length + ENTRY_OVERHEAD_BYTES;
      if (held + prepareBytes + newBytes > state.maxStateBytes) throw stateFull(i, state.maxStateBytes, held);
    }
    return newBytes + prepareBytes;
  }

  /**
   * Resolves once the view has applied every record durable now (what {@link get} waits for).
   * Rejects with the error that stopped the view, or `WAL_CLOSED`.
   */
  caughtUp(): Promise<void> {
    return this.caughtUpWithDurable();
  }

  /**
   * A consistent view of the state as applied now, in O(1) (see `KeyState.captureView`): what a
   * snapshot of the view is written from.
   */
  captureView(): StateView {
    return this.state.captureView();
  }

  /**
   * Writes a snapshot of the view once it has applied everything durable now (so it holds every
   * acknowledged write), streamed while appends, reads and tails go on (`writeSnapshot`). A full
   * snapshot holds every key; an incremental one (`options.incremental`) the keys put or deleted
   * since the newest full or incremental snapshot, its base. Once the file is durable, the view
   * forgets the deletions below its offset (later incrementals build on it). Snapshots are written
   * one at a time, in the order asked.
   *
   * Rejects with `WalError` `WAL_SNAPSHOT_NO_BASE` for an incremental when the directory holds no
   * full or incremental snapshot, or the view cannot list the changes since the newest one (it was
   * taken before a flush, or of a state this view did not grow from); `WAL_NO_SPACE` /
   * `WAL_IO_ERROR` when the disk fails; and as {@link get} does.
   */
  createSnapshot(options: CreateSnapshotOptions = {}): Promise<CreatedSnapshot> {
    return this.oneSnapshotAtATime(async () => {
      await this.caughtUpWithDurable();
      const started = this.clock();
      // In the same turn: the table as of the view's offset.
      const view = this.state.captureView();
      const txns = this.txns.capture();
      let written: WrittenSnapshot;
      if (options.incremental === true) {
        let base: SnapshotInfo | undefined;
        try {
          base = this.snapshotSummary().newest;
        } catch (error) {
          view.release();
          throw error;
        }
        if (base === undefined || !view.canListChangesSince(base.walOffset)) {
          view.release();
          throw noBase(this.snapshotDir, base, view.changesKnownSince);
        }
        written = await writeSnapshot(this.storage, this.snapshotDir, view, { type: 'incremental', base }, { compress: options.compress, chunkBytes: options.chunkBytes, txns, signal: this.stopper.signal });
      } else {
        written = await writeSnapshot(this.storage, this.snapshotDir, view, { type: 'full' }, { compress: options.compress, chunkBytes: options.chunkBytes, txns, signal: this.stopper.signal });
      }
      this.state.forgetChangesBefore(written.walOffset);
      return this.written(written, started);
    });
  }

  /**
   * Writes a point snapshot of one key's current state (as {@link get} sees it). Resolves with
   * undefined when the view holds no such key; rejects as {@link createSnapshot} does.
   */
  snapshotKey(key: Uint8Array): Promise<CreatedSnapshot | undefined> {
    return this.oneSnapshotAtATime(async () => {
      await this.caughtUpWithDurable();
      if (this.state.get(key) === undefined) return undefined;
      const started = this.clock();
      // No await between the check and the capture: the key is in the view captured.
      const written = await writeSnapshot(this.storage, this.snapshotDir, this.state.captureView(), { type: 'point', key }, { signal: this.stopper.signal });
      return this.written(written, started);
    });
  }

  /** A snapshot just written, timed from `started`, and told to `onSnapshotWritten`. */
  private written(snapshot: WrittenSnapshot, started: number): CreatedSnapshot {
    const created = { ...snapshot, durationMs: this.clock() - started };
    this.onSnapshotWritten?.(created);
    return created;
  }

  private oneSnapshotAtATime<T>(write: () => Promise<T>): Promise<T> {
    const run = this.snapshotting.then(write, write);
    this.snapshotting = run.catch(() => undefined);
    return run;
  }

  /**
   * The snapshot directory at a glance: how many snapshot files it holds and the newest full or
   * incremental one, from their headers. Throws `WalError` `WAL_IO_ERROR` when it cannot be read.
   */
  snapshotSummary(): SnapshotSummary {
    const { snapshots } = listSnapshots(this.storage, this.snapshotDir);
    const replayable = snapshots.filter((info) => info.type !== 'point');
    return { count: snapshots.length, newest: replayable.at(-1), oldest: replayable[0] };
  }

  /**
   * Appends the PREPARE record of transaction `txnId` with `writes` (see {@link append}): nothing
   * changes in the view until its COMMIT. Rejects with `WAL_TXN_STATE` when the transaction is
   * already prepared or remembered as ended, `WAL_INVALID_ARGUMENT` for an empty id, and as
   * {@link append} does. Throws `RangeError` for a delete with a value.
   */
  prepare(txnId: Uint8Array, writes: readonly TxnWrite[], options: AppendOptions = {}): Promise<AppendResult> {
    return this.append([{ type: 'prepare', key: txnId, value: encodeTxnWrites(writes) }], options);
  }

  /** Appends the COMMIT record of in-doubt transaction `txnId`; a {@link get} after it resolves sees its writes. Rejects as {@link prepare} does (`WAL_TXN_STATE` when it is not in doubt). */
  commit(txnId: Uint8Array, options: AppendOptions = {}): Promise<AppendResult> {
    return this.append([{ type: 'commit', key: txnId, value: Buffer.alloc(0) }], options);
  }

  /** Appends the ABORT record of in-doubt transaction `txnId`, carrying `reason` (UTF-8). Rejects as {@link commit} does. */
  abort(txnId: Uint8Array, reason: string, options: AppendOptions = {}): Promise<AppendResult> {
    return this.append([{ type: 'abort', key: txnId, value: Buffer.from(reason, 'utf8') }], options);
  }

  /**
   * The transaction `txnId` as the view has applied the log now (no appends in flight counted):
   * its state, its PREPARE's offset (-1 when the view never saw it) and its end's (-1 while in
   * doubt); undefined when unknown. What key compaction asks of every PREPARE (txn-redundancy.ts).
   */
  appliedTxn(txnId: Uint8Array): { readonly state: 'in_doubt' | 'committed' | 'aborted'; readonly prepareOffset: number; readonly endOffset: number } | undefined {
    const inDoubt = this.txns.inDoubt(txnId);
    if (inDoubt !== undefined) return { state: 'in_doubt', prepareOffset: inDoubt.prepareOffset, endOffset: -1 };
    const ended = this.txns.ended(txnId);
    return ended === undefined ? undefined : { state: ended.outcome, prepareOffset: ended.prepareOffset, endOffset: ended.endOffset };
  }

  /** Where transaction `txnId` stands for the next append (appends admitted and not yet applied included). */
  txnState(txnId: Uint8Array): TxnState {
    return this.txnGate.stateOf(txnId);
  }

  /** The in-doubt transactions as the view has applied the log now, oldest PREPARE first, with their ages by the keeper's clock. */
  inDoubtTransactions(): InDoubtSummary[] {
    const now = this.clock();
    return this.txns.inDoubtList().map((txn) => summary(txn, now));
  }

  /**
   * One page of the in-doubt transactions, oldest PREPARE first (see {@link txnPage}), once the
   * view has applied everything durable now. Rejects with `WAL_INVALID_ARGUMENT` (field
   * `page_token`) for a bad token, and as {@link get} does.
   */
  async listInDoubt(options: { readonly limit: number; readonly pageToken?: string | undefined }): Promise<{ readonly transactions: InDoubtSummary[]; readonly nextPageToken: string; readonly inDoubtCount: number }> {
    await this.caughtUpWithDurable();
    const page = txnPage(this.txns.inDoubtList(), options);
    const now = this.clock();
    return { transactions: page.transactions.map((txn) => summary(txn, now)), nextPageToken: page.nextPageToken, inDoubtCount: this.txns.inDoubtCount };
  }

  /** In-doubt transactions as the view has applied the log now. */
  get inDoubtCount(): number {
    return this.txns.inDoubtCount;
  }

  /** Age in ms of the oldest in-doubt transaction by the keeper's clock; undefined when there is none. */
  oldestInDoubtAgeMs(): number | undefined {
    const oldest = this.txns.inDoubtList()[0];
    return oldest === undefined ? undefined : Math.max(0, this.clock() - oldest.prepareTimestamp);
  }

  /**
   * Aborts every in-doubt transaction whose PREPARE is at least `txn_timeout_ms` old by the
   * keeper's clock (nothing when it is 0): appends an ABORT per transaction, with the reason, and
   * tells `onTxnTimeout`. A transaction committed or aborted meanwhile is skipped (the rules refuse
   * the ABORT). Resolves with what it aborted; rejects with the errors of appending. The keeper
   * runs it on a timer; tests call it directly.
   */
  async abortTimedOut(): Promise<TimedOutTxn[]> {
    if (this.txnTimeoutMs === 0) return [];
    await this.caughtUpWithDurable();
    const now = this.clock();
    const aborted: TimedOutTxn[] = [];
    for (const txn of this.txns.inDoubtList()) {
      if (now - txn.prepareTimestamp < this.txnTimeoutMs) break;
      if (this.txnGate.stateOf(txn.id) !== 'in_doubt') continue;
      const reason = `txn_timeout_ms (${this.txnTimeoutMs} ms) passed since the PREPARE at offset ${txn.prepareOffset}`;
      let abortOffset: number;
      try {
        abortOffset = (await this.abort(txn.id, reason)).firstOffset;
      } catch (error) {
        if (error instanceof WalError && error.code === 'WAL_TXN_STATE') continue;
        throw error;
      }
      const timedOut = { ...summary(txn, now), abortOffset, reason };
      aborted.push(timedOut);
      this.onTxnTimeout?.(timedOut);
    }
    return aborted;
  }

  /**
   * Checks for timed-out transactions every `min(txn_timeout_ms, 1 s)` while the keeper is open
   * (when `txn_timeout_ms` is set): `open` calls it unless told not to, a promoted follower's
   * server calls it at promotion. Idempotent; does nothing once the keeper is closed.
   */
  startTxnTimeout(): void {
    if (this.txnTimeoutMs === 0 || this.txnTimer !== undefined || this.isClosed) return;
    let isRunning = false;
    this.txnTimer = setInterval(() => {
      if (isRunning || this.failure !== undefined) return;
      isRunning = true;
      this.abortTimedOut()
        .catch(() => undefined)
        .finally(() => {
          isRunning = false;
        });
    }, Math.max(10, Math.min(this.txnTimeoutMs, 1000)));
    this.txnTimer.unref();
  }

  /** Stops following the log; calls still waiting fail with `WAL_CLOSED`. Idempotent. */
  async close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      clearInterval(this.txnTimer);
      this.stopper.abort();
      this.applied.closeAll(new WalError('WAL_CLOSED', 'the key-value view is closed', {}));
    }
    await this.following;
    // A snapshot under way stops at its next chunk (WAL_CLOSED, its temp file removed): none goes
    // on writing into the directory of a log that is closing.
    await this.snapshotting;
  }

  /** Replays from `fromOffset` to the high watermark (the tail's first idle signal), then follows on in the background. */
  private async catchUp(fromOffset: number): Promise<number> {
    // Keyless PUTs (plain appended values) change no key: the engine leaves them out unread.
    const tail = this.wal.openTail(fromOffset, { signal: this.stopper.signal, skipKeylessPuts: true });
    let replayed = 0;
    try {
      for (;;) {
        const next = await tail.next();
        if (next.done === true) break;
        if (next.value.kind === 'idle') break;
        replayed += next.value.nextOffset - this.state.nextOffset;
        this.applyBatch(next.value.records, next.value.nextOffset);
      }
    } catch (error) {
      await tail.return();
      throw error;
    }
    this.following = this.follow(tail);
    return replayed;
  }

  private async follow(tail: AsyncIterator<TailEvent>): Promise<void> {
    try {
      for (;;) {
        const next = await tail.next();
        if (next.done === true) return;
        if (next.value.kind === 'records') {
          this.applyBatch(next.value.records, next.value.nextOffset);
          // Wakes the calls waiting for an offset below the next one, i.e. applied now.
          this.applied.advance(this.state.nextOffset);
        }
      }
    } catch (error) {
      if (this.isClosed) return;
      this.fail(error);
    }
  }

  /** Applies a batch of the tail; `nextOffset`, the batch's end, covers the keyless PUTs left out of it. */
  private applyBatch(records: readonly WalRecord[], nextOffset: number): void {
    this.applier.applyAll(records);
    this.state.passTo(nextOffset);
    this.txnGate.applied(this.state.nextOffset);
    let released = 0;
    while (released < this.pending.length && this.pending[released]!.lastOffset < this.state.nextOffset) {
      this.pendingBytes -= this.pending[released]!.bytes;
      released++;
    }
    if (released > 0) this.pending = this.pending.slice(released);
  }

  private fail(error: unknown): void {
    const failure =
      error instanceof WalError
        ? error
        : new WalError('WAL_INTERNAL', `the key-value view stopped: ${error instanceof Error ? error.message : String(error)}`, {}, { cause: error });
    this.failure = failure;
    this.applied.closeAll(failure);
    // The log closed under the view (its owner closed it first): an end, not a fault to report.
    if (failure.code !== 'WAL_CLOSED') this.onFailure?.(failure);
  }

  /**
   * Throws what a call would throw now: the failure that stopped the view, or `WAL_CLOSED`. For a
   * caller about to rely on the view (a promotion) before it changes anything.
   */
  checkUsable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.isClosed) throw new WalError('WAL_CLOSED', 'the key-value view is closed', {});
  }

  /** Resolves once the view has applied every record up to the high watermark as of now. */
  private caughtUpWithDurable(): Promise<void> {
    return this.appliedThrough(this.wal.highWatermark);
  }

  /** Resolves once the view has applied the record at `offset` (at once for -1). */
  private async appliedThrough(offset: number): Promise<void> {
    this.checkUsable();
    if (this.state.nextOffset > offset) return;
    await this.applied.wait(offset);
  }
}

function stateFull(index: number, limit: number, held: number): WalError {
  return new WalError(
    'WAL_STATE_FULL',
    `records[${index}]: the key-value view would pass max_state_bytes (${limit} bytes; it holds about ${held}): ` +
      'new keys and new transactions are refused, overwrites and deletes are accepted',
    { field: `records[${index}]`, configKey: 'max_state_bytes', limit, stateBytes: held },
  );
}

function summary(txn: InDoubtTxn, now: number): InDoubtSummary {
  return {
    txnIdBase64: txn.id.toString('base64'),
    prepareOffset: txn.prepareOffset,
    prepareTimestamp: txn.prepareTimestamp,
    ageMs: Math.max(0, now - txn.prepareTimestamp),
    writeCount: txn.writeCount,
  };
}

type KeyedPut = AppendRecord & { readonly key: Uint8Array };

function isKeyedPut(record: AppendRecord): record is KeyedPut {
  return record.key !== undefined && (record.type === undefined || record.type === 'put');
}

/** Removes the `.snap.tmp` files a crash left in the snapshot directory; one that cannot be removed stays (readers ignore them). */
function removeTempFiles(storage: Storage, dir: string, names: readonly string[]): void {
  for (const name of names) {
    try {
      storage.unlink(join(dir, name));
    } catch {
      // Left for the next open: a temp file is never read.
    }
  }
}

function noBase(snapshotDir: string, base: SnapshotInfo | undefined, changesKnownSince: number): WalError {
  const why =
    base === undefined
      ? `${snapshotDir} holds no full or incremental snapshot to build on`
      : `the view cannot list the changes since the newest snapshot ${base.id} (offset ${base.walOffset}; it knows the changes since offset ${changesKnownSince})`;
  return new WalError('WAL_SNAPSHOT_NO_BASE', `an incremental snapshot needs a base: ${why}; take a full snapshot first`, {
    snapshotDir,
    baseSnapshotId: base?.id,
    baseOffset: base?.walOffset,
    changesKnownSince,
  });
}

function stateLost(wal: Wal, snapshotDir: string, snapshotOffset: number | undefined, failures: readonly SnapshotProblem[]): WalError {
  const why =
    snapshotOffset === undefined
      ? `no snapshot in ${snapshotDir} that verifies`
      : `the newest usable snapshot in ${snapshotDir} is at offset ${snapshotOffset}, below it`;
  const skipped = failures.length === 0 ? '' : `; ${failures.length} newer snapshot(s) failed: ${failures.map((f) => `${f.file}: ${f.reason}`).join('; ')}`;
  return new WalError(
    'WAL_STATE_LOST',
    `the key-value view of ${wal.dir} cannot be rebuilt: the log starts at offset ${wal.firstOffset} (the records before it were compacted) ` +
      `and ${why}${skipped}. Restore a snapshot that covers offset ${wal.firstOffset} into ${snapshotDir}, or point snapshot_dir at one`,
    { dir: wal.dir, snapshotDir, firstOffset: wal.firstOffset, snapshotOffset, snapshotFailures: failures.length },
  );
}
