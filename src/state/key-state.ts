/**
 * The key-value view of the log: for each key, the value, offset and timestamp of its latest
 * `PUT`; a `DELETE` removes the key; records without a key are plain log data and change nothing.
 */
import type { WalRecord } from '../codec/record.js';
import type { SnapshotEntry } from '../codec/snapshot-file.js';
import { compareByteStrings, fromByteString, toByteString } from './byte-string.js';
import { loadByteStringTree, newByteStringTree, type ByteStringTree } from './byte-string-tree.js';
import { decodePageToken, encodePageToken } from './page-token.js';
import { StateView, type KeyEntry, type StoredEntry, type StoredTombstone } from './state-view.js';

export type { KeyEntry } from './state-view.js';

/**
 * Estimated bytes a key costs beyond its key and value bytes: the B+ tree slots (key and value
 * references, node arrays at their average fill), the entry object (value, offset, timestamp) and
 * the two string headers. Measured on Node 20 (x64) with 1M keys: heap growth per key minus key
 * and value bytes (docs/state.md, "Measurements"); the estimate errs high.
 */
export const ENTRY_OVERHEAD_BYTES = 144;

/**
 * Estimated bytes a remembered deletion costs beyond its key bytes: tree slots, the tombstone object
 * and the string header, sized from V8 object layouts (not measured, unlike {@link ENTRY_OVERHEAD_BYTES}).
 */
export const TOMBSTONE_OVERHEAD_BYTES = 112;

/** Default of {@link KeyStateOptions.maxStateBytes}: 1 GiB. */
export const DEFAULT_MAX_STATE_BYTES = 1024 * 1024 * 1024;

/** Configuration of a {@link KeyState}. */
export interface KeyStateOptions {
  /**
   * Cap on {@link KeyState.memoryBytes}: {@link KeyState.wouldExceed} says when a `PUT` of a new
   * key would pass it, so that the server refuses the append (`RESOURCE_EXHAUSTED`) instead of
   * running out of memory. Default {@link DEFAULT_MAX_STATE_BYTES}.
   */
  readonly maxStateBytes?: number | undefined;
}

/** What the state reads of a record. */
export type StateRecord = Pick<WalRecord, 'offset' | 'timestamp' | 'type' | 'key' | 'value'>;

/** One page of a key listing. */
export interface KeyPage {
  readonly entries: KeyEntry[];
  /** Continues the listing; empty when this is the last page (AIP-158). */
  readonly nextPageToken: string;
}

/** What to list. */
export interface ListKeysOptions {
  /** Only keys starting with these bytes (default: every key). */
  readonly prefix?: Uint8Array | undefined;
  /** Most entries to return; a positive integer. */
  readonly limit: number;
  /** The `nextPageToken` of the previous page, or empty/absent for the first page. */
  readonly pageToken?: string | undefined;
}

/**
 * The key-value state, kept in two copy-on-write B+ trees (`sorted-btree`): the live entries by
 * key, and the keys deleted since the last snapshot (for incremental snapshots). Keys and values
 * are held as byte strings (src/state/byte-string.ts), so keys sort by unsigned bytes.
 *
 * Records are applied in offset order ({@link apply}); {@link captureView} gives a consistent
 * point-in-time view in O(1) for snapshots. Loading a snapshot goes through {@link restorePut},
 * {@link restoreTombstone} and {@link finishRestore}.
 */
export class KeyState {
  /** The configured cap on {@link memoryBytes}. */
  readonly maxStateBytes: number;
  private puts: ByteStringTree<StoredEntry> = newByteStringTree();
  private tombstones: ByteStringTree<StoredTombstone> = newByteStringTree();
  private next = 0;
  private memory = 0;
  private tombstoneMemory = 0;
  private lastTombstoneOffset = -1;
  private changesKnownSince = 0;
  /** Sorted puts collected while restoring into an empty state, loaded in bulk. */
  private bulkKeys: string[] | undefined;
  private bulkEntries: StoredEntry[] = [];

  constructor(options: KeyStateOptions = {}) {
    const max = options.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES;
    if (!(max > 0)) throw new RangeError(`options.maxStateBytes must be positive, got ${max}`);
    this.maxStateBytes = max;
  }

  /** Every record below this offset has been applied (0 for a new state). */
  get nextOffset(): number {
    return this.next;
  }

  /** Number of keys. */
  get size(): number {
    this.flushBulk();
    return this.puts.size;
  }

  /**
   * Estimated bytes of memory the state holds: for each key its key and value bytes plus
   * {@link ENTRY_OVERHEAD_BYTES}, and for each remembered deletion its key bytes plus
   * {@link TOMBSTONE_OVERHEAD_BYTES}. Not counted: nodes copied while a snapshot view is alive.
   */
  get memoryBytes(): number {
    return this.memory + this.tombstoneMemory;
  }

  /**
   * Applies the next record: a `PUT` with a key sets the key, a `DELETE` with a key removes it,
   * everything else only moves {@link nextOffset}. The record's bytes are copied (a read buffer
   * may be reused). Throws `RangeError` for an offset below {@link nextOffset} (offsets only grow;
   * gaps are fine, as compaction leaves them).
   */
  apply(record: StateRecord): void {
    this.advance(record.offset, 'record.offset');
    if (record.key === undefined) return;
    if (record.type === 'put') this.put(toByteString(record.key), toByteString(record.value), record.offset, record.timestamp);
    else if (record.type === 'delete') this.remove(toByteString(record.key), record.offset, record.timestamp);
  }

  /** The state of `key`, or undefined when it has none. */
  get(key: Uint8Array): KeyEntry | undefined {
    this.flushBulk();
    const text = toByteString(key);
    const entry = this.puts.get(text);
    return entry === undefined ? undefined : toKeyEntry(text, entry);
  }

  /**
   * One page of the keys starting with `prefix`, in key order, after the key the page token ends
   * at. Throws `RangeError` for a limit that is not a positive integer, and `WalError`
   * `WAL_INVALID_ARGUMENT` (field `page_token`) for a token that is malformed or from a listing
   * with another prefix.
   */
  list(options: ListKeysOptions): KeyPage {
    if (!Number.isSafeInteger(options.limit) || options.limit < 1) throw new RangeError(`limit must be a positive integer, got ${options.limit}`);
    this.flushBulk();
    const prefix = options.prefix === undefined ? '' : toByteString(options.prefix);
    const after = options.pageToken === undefined || options.pageToken === '' ? undefined : decodePageToken(options.pageToken, prefix).lastKey;
    const entries: KeyEntry[] = [];
    let lastKey = '';
    for (const [key, entry] of this.puts.entries(after ?? prefix, [])) {
      if (key === after) continue;
      if (!key.startsWith(prefix)) break;
      if (entries.length === options.limit) return { entries, nextPageToken: encodePageToken({ prefix, lastKey }) };
      entries.push(toKeyEntry(key, entry));
      lastKey = key;
    }
    return { entries, nextPageToken: '' };
  }

  /**
   * True when a `PUT` of `key` with `value` would add a key and bring {@link memoryBytes} over
   * {@link maxStateBytes}. Puts of keys already present are never refused (so a client at the cap
   * can still overwrite and delete); their growth is bounded by the record size limit.
   */
  wouldExceed(key: Uint8Array, value: Uint8Array): boolean {
    const added = key.length + value.length + ENTRY_OVERHEAD_BYTES;
    if (this.memoryBytes + added <= this.maxStateBytes) return false;
    this.flushBulk();
    return !this.puts.has(toByteString(key));
  }

  /**
   * Removes every key (FlushAll), as the record at `offset` says; returns how many were removed.
   * Deletions are forgotten too, so no incremental snapshot can span the flush. Throws
   * `RangeError` for an offset below {@link nextOffset}.
   */
  clear(offset: number): number {
    this.advance(offset, 'offset');
    const removed = this.puts.size;
    this.puts = newByteStringTree();
    this.tombstones = newByteStringTree();
    this.memory = 0;
    this.tombstoneMemory = 0;
    this.lastTombstoneOffset = -1;
    this.changesKnownSince = offset + 1;
    return removed;
  }

  /**
   * A consistent view of the state as it is now, in O(1); later changes to the state do not show
   * in it (see {@link StateView}).
   */
  captureView(): StateView {
    this.flushBulk();
    return new StateView(this.puts.clone(), this.tombstones.clone(), {
      nextOffset: this.next,
      memoryBytes: this.memoryBytes,
      changesKnownSince: this.changesKnownSince,
    });
  }

  /**
   * Says that a snapshot with wal offset `offset` is durable: later incrementals build on it, so
   * the deletions before it are no longer needed and are dropped (O(1) when all are before it,
   * else one pass over the remembered deletions).
   */
  forgetChangesBefore(offset: number): void {
    if (offset <= this.changesKnownSince) return;
    this.changesKnownSince = Math.min(offset, this.next);
    if (this.lastTombstoneOffset < this.changesKnownSince) {
      this.tombstones = newByteStringTree();
      this.tombstoneMemory = 0;
      return;
    }
    const keys: string[] = [];
    const kept: StoredTombstone[] = [];
    let memory = 0;
    for (const [key, tombstone] of this.tombstones.entries(undefined, [])) {
      if (tombstone.offset < this.changesKnownSince) continue;
      keys.push(key);
      kept.push(tombstone);
      memory += key.length + TOMBSTONE_OVERHEAD_BYTES;
    }
    this.tombstones = loadByteStringTree(keys, kept);
    this.tombstoneMemory = memory;
  }

  /**
   * Snapshot loading: sets a key as a snapshot entry says. Entries of a full snapshot, in key
   * order into an empty state, are collected and loaded in bulk (O(n)).
   */
  restorePut(entry: SnapshotEntry): void {
    const text = entry.bytes.toString('latin1', entry.keyStart, entry.keyEnd);
    const stored: StoredEntry = { value: entry.bytes.toString('latin1', entry.keyEnd, entry.valueEnd), offset: entry.offset, timestamp: entry.timestamp };
    if (this.bulkKeys === undefined && this.puts.size === 0) this.bulkKeys = [];
    const bulk = this.bulkKeys;
    if (bulk !== undefined && (bulk.length === 0 || compareByteStrings(bulk[bulk.length - 1]!, text) < 0)) {
      bulk.push(text);
      this.bulkEntries.push(stored);
      this.memory += text.length + stored.value.length + ENTRY_OVERHEAD_BYTES;
      return;
    }
    this.flushBulk();
    this.setEntry(text, stored);
  }

  /** Snapshot loading: removes a key as an incremental snapshot's tombstone says. */
  restoreTombstone(entry: SnapshotEntry): void {
    this.flushBulk();
    const text = entry.bytes.toString('latin1', entry.keyStart, entry.keyEnd);
    const old = this.puts.get(text);
    if (old === undefined) return;
    this.puts.delete(text);
    this.memory -= text.length + old.value.length + ENTRY_OVERHEAD_BYTES;
  }

  /**
   * Snapshot loading is done: the state is the snapshot's as of `walOffset` (every record below
   * it), and changes are tracked from there. Throws `RangeError` for an offset below
   * {@link nextOffset}.
   */
  finishRestore(walOffset: number): void {
    this.flushBulk();
    this.advance(walOffset, 'walOffset');
    this.next = walOffset;
    this.tombstones = newByteStringTree();
    this.tombstoneMemory = 0;
    this.lastTombstoneOffset = -1;
    this.changesKnownSince = walOffset;
  }

  private flushBulk(): void {
    const keys = this.bulkKeys;
    if (keys === undefined) return;
    this.bulkKeys = undefined;
    if (keys.length > 0) this.puts = loadByteStringTree(keys, this.bulkEntries);
    this.bulkEntries = [];
  }

  private advance(offset: number, name: string): void {
    if (!Number.isSafeInteger(offset) || offset < this.next) {
      throw new RangeError(`${name} must be a safe integer at or above the next offset ${this.next}, got ${offset}`);
    }
    this.next = offset + 1;
  }

  private put(key: string, value: string, offset: number, timestamp: number): void {
    this.flushBulk();
    this.setEntry(key, { value, offset, timestamp });
    if (this.tombstones.size > 0 && this.tombstones.delete(key)) this.tombstoneMemory -= key.length + TOMBSTONE_OVERHEAD_BYTES;
  }

  private setEntry(key: string, entry: StoredEntry): void {
    const old = this.puts.get(key);
    this.puts.set(key, entry);
    this.memory += old === undefined ? key.length + entry.value.length + ENTRY_OVERHEAD_BYTES : entry.value.length - old.value.length;
  }

  private remove(key: string, offset: number, timestamp: number): void {
    this.flushBulk();
    const old = this.puts.get(key);
    if (old === undefined) return;
    this.puts.delete(key);
    this.memory -= key.length + old.value.length + ENTRY_OVERHEAD_BYTES;
    this.tombstones.set(key, { value: undefined, offset, timestamp });
    this.tombstoneMemory += key.length + TOMBSTONE_OVERHEAD_BYTES;
    this.lastTombstoneOffset = offset;
  }
}

function toKeyEntry(key: string, entry: StoredEntry): KeyEntry {
  return { key: fromByteString(key), value: fromByteString(entry.value), offset: entry.offset, timestamp: entry.timestamp };
}
