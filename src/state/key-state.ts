/**
 * The key-value view of the log: for each key, the value, offset and timestamp of its latest
 * `PUT`; a `DELETE` removes the key; records without a key are plain log data and change nothing.
 */
import type { WalRecord } from '../codec/record.js';
import type { SnapshotEntry } from '../codec/snapshot-file.js';
import { forEachTxnWrite } from '../codec/txn-writes.js';
import { DeletionQueue } from './deletion-queue.js';
import { DEFAULT_PAGE_BYTES, DELETED, EntryStore, PROBE_SLOT } from './entry-store.js';
import { loadKeyIndex, newKeyIndex, type KeyIndex } from './key-index.js';
import { decodePageToken, encodePageToken, toByteString } from './page-token.js';
import { StateView, type KeyEntry } from './state-view.js';
import { ViewPreImages } from './view-pre-images.js';

export type { KeyEntry } from './state-view.js';

/**
 * Estimated bytes a key costs beyond its key and value bytes: its slot's cells (48 bytes, with the
 * columns' doubling slack), its hash table cells (at most half full, doubling), its place in the
 * ordered index at the index's average fill, its run's header and its share of the pages' slack.
 * Measured on Node 20 (x64): heap and array buffers grew by 88-107 bytes per key beyond key and
 * value bytes (1M keys, or 1M puts over 100k keys, of 100-byte values; docs/state.md); the
 * estimate errs high, leaving room for dead bytes in pages (at most about as many as the live
 * ones, entry-store.ts).
 */
export const ENTRY_OVERHEAD_BYTES = 128;

/**
 * Estimated bytes a remembered deletion costs beyond its key bytes: the same slot, table and index
 * cells and run header as a live key (it keeps them until forgotten; its run shrinks to the key)
 * and its place in the queue of deletions, from the same layouts as {@link ENTRY_OVERHEAD_BYTES}
 * (not measured apart).
 */
export const TOMBSTONE_OVERHEAD_BYTES = 112;

/** Default of {@link KeyStateOptions.maxStateBytes}: 1 GiB. */
export const DEFAULT_MAX_STATE_BYTES = 1024 * 1024 * 1024;

/** Deletions forgotten at once beyond which the ordered index is rebuilt rather than edited key by key. */
const REBUILD_INDEX_AFTER_DELETES = 4096;

/** Configuration of a {@link KeyState}. */
export interface KeyStateOptions {
  /**
   * Cap on {@link KeyState.memoryBytes}: {@link KeyState.wouldExceed} says when a `PUT` of a new
   * key would pass it, so that the server refuses the append (`RESOURCE_EXHAUSTED`) instead of
   * running out of memory. Default {@link DEFAULT_MAX_STATE_BYTES}.
   */
  readonly maxStateBytes?: number | undefined;
  /**
   * Bytes of each page the keys and values are kept in (entry-store.ts). Default 4 MiB; tests set
   * small pages to exercise relocation.
   */
  readonly pageBytes?: number | undefined;
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

const BREAK = { break: true } as const;
const NO_BYTES = new Uint8Array(0);

/**
 * The key-value state. Entries live in an {@link EntryStore}: a hash table from key bytes to a
 * slot, columns by slot, and the key and value bytes in pages, so an overwrite of a key (the
 * common record) is a hash of the key's bytes, a probe and a copy of the value, with no object
 * made. An ordered index of the slots by key (key-index.ts, a copy-on-write B+ tree) serves
 * listings in key order and views; it changes only when a key enters or leaves the state. A
 * deleted key stays, marked deleted, until a snapshot covers the deletion
 * ({@link forgetChangesBefore}): incremental snapshots list it. Keys sort by unsigned bytes.
 *
 * Records are applied in offset order ({@link apply}); {@link captureView} gives a consistent
 * point-in-time view in O(1) for snapshots (state-view.ts). Loading a snapshot goes through
 * {@link restorePut}, {@link restoreTombstone} and {@link finishRestore}.
 */
export class KeyState {
  /** The configured cap on {@link memoryBytes}. */
  readonly maxStateBytes: number;
  private readonly pageBytes: number;
  private store: EntryStore;
  private index: KeyIndex;
  private liveKeys = 0;
  private next = 0;
  private memory = 0;
  private changesKnownSince = 0;
  private deletions: DeletionQueue;
  private openViews: ViewPreImages[] = [];
  /** Slots whose keys left while a view was open (which may still read them): freed when the last closes. */
  private unlinkedSlots: number[] = [];
  /** Releases views dropped without {@link StateView.release}, so that they stop costing writes. */
  private readonly views = new FinalizationRegistry<ViewPreImages>((preImages) => this.closeView(preImages));
  /** Slots restored in key order into an empty state, indexed in bulk when restoring ends. */
  private bulkSlots: number[] | undefined;

  constructor(options: KeyStateOptions = {}) {
    const max = options.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES;
    if (!(max > 0)) throw new RangeError(`options.maxStateBytes must be positive, got ${max}`);
    const pageBytes = options.pageBytes ?? DEFAULT_PAGE_BYTES;
    if (!Number.isSafeInteger(pageBytes) || pageBytes < 64 || pageBytes > 2 ** 30) throw new RangeError(`options.pageBytes must be an integer in 64..2^30, got ${pageBytes}`);
    this.maxStateBytes = max;
    this.pageBytes = pageBytes;
    this.store = new EntryStore(pageBytes);
    this.index = newKeyIndex(this.store.compare);
    this.deletions = new DeletionQueue(this.store);
  }

  /** Every record below this offset has been applied (0 for a new state). */
  get nextOffset(): number {
    return this.next;
  }

  /** Number of keys. */
  get size(): number {
    return this.liveKeys;
  }

  /**
   * Estimated bytes of memory the state holds: for each key its key and value bytes plus
   * {@link ENTRY_OVERHEAD_BYTES}, and for each remembered deletion its key bytes plus
   * {@link TOMBSTONE_OVERHEAD_BYTES}. Views' pre-images are counted apart ({@link viewMemoryBytes}).
   */
  get memoryBytes(): number {
    return this.memory;
  }

  /** Views taken and not yet released (nor dropped and collected, nor cut off by a flush). */
  get openViewCount(): number {
    return this.openViews.length;
  }

  /**
   * Estimated bytes of the pre-images kept for open views: the entries changed since each was
   * taken. Bounded by the writes during the views' lives; zero once they are released.
   */
  get viewMemoryBytes(): number {
    let bytes = 0;
    for (const preImages of this.openViews) bytes += preImages.bytes;
    return bytes;
  }

  /** Bytes of the pages holding keys and values, live or dead (for figures; {@link memoryBytes} is the estimate the cap applies to). */
  get pageMemoryBytes(): number {
    return this.store.pageMemoryBytes;
  }

  /**
   * Applies the next record: a `PUT` with a key sets the key, a `DELETE` with a key removes it,
   * everything else only moves {@link nextOffset}. The record's bytes are copied (a read buffer
   * may be reused). Throws `RangeError` for an offset below {@link nextOffset} (offsets only grow;
   * gaps are fine, as compaction leaves them).
   */
  apply(record: StateRecord): void {
    this.advance(record.offset, 'record.offset');
    const key = record.key;
    if (key === undefined) return;
    if (record.type === 'put') this.put(key, 0, key.length, record.value, 0, record.value.length, record.offset, record.timestamp);
    else if (record.type === 'delete') this.remove(key, record.offset, record.timestamp);
  }

  /**
   * Applies the writes of a committed transaction, all at `offset` (its `commit` record's) and
   * `timestamp`: each key written ends with that offset, several keys at one offset. `payload` is
   * the transaction's checked writes (src/codec/txn-writes.ts), read where it lies (no object per
   * write); puts and deletes apply in order (a key written twice ends as the last write says).
   * Moves {@link nextOffset} past `offset` once. The bytes are copied. Throws `RangeError` for an
   * offset below {@link nextOffset}.
   */
  applyTxnPayload(offset: number, timestamp: number, payload: Uint8Array): void {
    this.advance(offset, 'offset');
    forEachTxnWrite(payload, (op, bytes, keyStart, keyEnd, valueEnd) => {
      if (op === 'put') this.put(bytes, keyStart, keyEnd - keyStart, bytes, keyEnd, valueEnd - keyEnd, offset, timestamp);
      else this.remove(bytes.subarray(keyStart, keyEnd), offset, timestamp);
    });
  }

  /** The offset of the `PUT` that set `bytes[start..end)` (a key where it lies), or -1. */
  offsetOfRange(bytes: Uint8Array, start: number, end: number): number {
    const store = this.store;
    const slot = store.find(bytes, start, end - start, store.hash(bytes, start, end - start));
    return slot < 0 || store.valueLengthOf(slot) === DELETED ? -1 : store.offsetOf(slot);
  }

  /** The offset of the `PUT` that set `key`, or -1 when it has none (no copy: for lookups by the million). */
  offsetOf(key: Uint8Array): number {
    const store = this.store;
    const slot = store.find(key, 0, key.length, store.hash(key, 0, key.length));
    return slot < 0 || store.valueLengthOf(slot) === DELETED ? -1 : store.offsetOf(slot);
  }

  /** The state of `key`, or undefined when it has none. */
  get(key: Uint8Array): KeyEntry | undefined {
    const store = this.store;
    const slot = store.find(key, 0, key.length, store.hash(key, 0, key.length));
    if (slot < 0 || store.valueLengthOf(slot) === DELETED) return undefined;
    return { key: Buffer.from(key), value: store.valueOf(slot), offset: store.offsetOf(slot), timestamp: store.timestampOf(slot) };
  }

  /**
   * One page of the keys starting with `prefix`, in key order, after the key the page token ends
   * at. Throws `RangeError` for a limit that is not a positive integer, and `WalError`
   * `WAL_INVALID_ARGUMENT` (field `page_token`) for a token that is malformed or from a listing
   * with another prefix.
   */
  list(options: ListKeysOptions): KeyPage {
    const limit = options.limit;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    const prefix = options.prefix ?? NO_BYTES;
    const prefixText = toByteString(prefix);
    const after = options.pageToken === undefined || options.pageToken === '' ? undefined : Buffer.from(decodePageToken(options.pageToken, prefixText).lastKey, 'latin1');
    this.flushBulk();
    const entries: KeyEntry[] = [];
    const high = this.index.maxKey();
    if (high === undefined) return { entries, nextPageToken: '' };
    const store = this.store;
    store.setProbe(after ?? prefix);
    let isCut = false;
    let lastKey: Uint8Array = NO_BYTES;
    this.index.forRange(PROBE_SLOT, high, true, (slot) => {
      if (after !== undefined && entries.length === 0 && store.compare(slot, PROBE_SLOT) === 0) return undefined;
      if (!store.keyStartsWith(slot, prefix)) return BREAK;
      if (store.valueLengthOf(slot) === DELETED) return undefined;
      if (entries.length === limit) {
        isCut = true;
        return BREAK;
      }
      const key = store.keyOf(slot);
      entries.push({ key, value: store.valueOf(slot), offset: store.offsetOf(slot), timestamp: store.timestampOf(slot) });
      lastKey = key;
      return undefined;
    });
    return { entries, nextPageToken: isCut ? encodePageToken({ prefix: prefixText, lastKey: toByteString(lastKey) }) : '' };
  }

  /**
   * True when a `PUT` of `key` with `value` would add a key and bring {@link memoryBytes} over
   * {@link maxStateBytes}. Puts of keys already present are never refused (so a client at the cap
   * can still overwrite and delete); their growth is bounded by the record size limit.
   */
  wouldExceed(key: Uint8Array, value: Uint8Array): boolean {
    const added = key.length + value.length + ENTRY_OVERHEAD_BYTES;
    if (this.memory + added <= this.maxStateBytes) return false;
    const store = this.store;
    const slot = store.find(key, 0, key.length, store.hash(key, 0, key.length));
    return slot < 0 || store.valueLengthOf(slot) === DELETED;
  }

  /**
   * Removes every key (FlushAll), as the record at `offset` says; returns how many were removed.
   * Deletions are forgotten too, so no incremental snapshot can span the flush. In O(1): open views
   * keep the old store, which nothing writes any more. Throws `RangeError` for an offset below
   * {@link nextOffset}.
   */
  clear(offset: number): number {
    this.advance(offset, 'offset');
    const removed = this.liveKeys;
    this.store = new EntryStore(this.pageBytes);
    this.index = newKeyIndex(this.store.compare);
    this.liveKeys = 0;
    this.memory = 0;
    this.deletions = new DeletionQueue(this.store);
    this.bulkSlots = undefined;
    this.openViews = [];
    this.unlinkedSlots = [];
    this.changesKnownSince = offset + 1;
    return removed;
  }

  /**
   * A consistent view of the state as it is now, in O(1); later changes to the state do not show
   * in it (see {@link StateView}). Release it when done with it.
   */
  captureView(): StateView {
    this.flushBulk();
    const preImages = new ViewPreImages(this.next, this.store.slotCount);
    const figures = { nextOffset: this.next, memoryBytes: this.memory, changesKnownSince: this.changesKnownSince, size: this.liveKeys };
    const view = new StateView(this.index.clone(), this.store, preImages, figures, (released) => this.closeView(released));
    this.openViews.push(preImages);
    this.views.register(view, preImages, preImages);
    return view;
  }

  /**
   * Says that a snapshot with wal offset `offset` is durable: later incrementals build on it, so
   * the deletions before it are no longer needed and their keys leave the state (one step per
   * deletion since the last call; the index is rebuilt in one pass when many leave at once).
   */
  forgetChangesBefore(offset: number): void {
    if (offset <= this.changesKnownSince) return;
    this.changesKnownSince = Math.min(offset, this.next);
    this.forgetDeletionsBefore(this.changesKnownSince);
  }

  /**
   * Snapshot loading: sets a key as a snapshot entry says. Entries of a full snapshot, in key
   * order into an empty state, are indexed in bulk (O(n)) when restoring ends. Throws `Error`
   * while a view is open (a restored entry may be older than the view).
   */
  restorePut(entry: SnapshotEntry): void {
    this.checkNoView('restorePut');
    const bytes = entry.bytes;
    const keyLength = entry.keyEnd - entry.keyStart;
    if (this.bulkSlots === undefined && this.store.keyCount === 0) this.bulkSlots = [];
    const bulk = this.bulkSlots;
    if (bulk === undefined || (bulk.length > 0 && this.store.compareKey(bulk[bulk.length - 1]!, bytes, entry.keyStart, keyLength) >= 0)) {
      this.flushBulk();
      this.put(bytes, entry.keyStart, keyLength, bytes, entry.keyEnd, entry.valueEnd - entry.keyEnd, entry.offset, entry.timestamp);
      return;
    }
    const store = this.store;
    const valueLength = entry.valueEnd - entry.keyEnd;
    bulk.push(store.add(bytes, entry.keyStart, keyLength, store.hash(bytes, entry.keyStart, keyLength), bytes, entry.keyEnd, valueLength, entry.offset, entry.timestamp, true));
    this.liveKeys++;
    this.memory += keyLength + valueLength + ENTRY_OVERHEAD_BYTES;
  }

  /**
   * Snapshot loading: makes room at once for `keyCount` more keys (the entry count of the snapshot
   * about to be restored), sparing the hash table and columns their growth step by step. Capped
   * at 2^24 keys ahead; the caller bounds the count by what the file can hold.
   */
  reserveForRestore(keyCount: number): void {
    if (!Number.isSafeInteger(keyCount) || keyCount < 0) throw new RangeError(`keyCount must be a non-negative integer, got ${keyCount}`);
    this.store.reserve(this.store.keyCount + Math.min(keyCount, 2 ** 24));
  }

  /** Snapshot loading: removes a key as an incremental snapshot's tombstone says. Throws `Error` while a view is open. */
  restoreTombstone(entry: SnapshotEntry): void {
    this.checkNoView('restoreTombstone');
    this.flushBulk();
    const store = this.store;
    const keyLength = entry.keyEnd - entry.keyStart;
    const slot = store.find(entry.bytes, entry.keyStart, keyLength, store.hash(entry.bytes, entry.keyStart, keyLength));
    if (slot < 0) return;
    const valueLength = store.valueLengthOf(slot);
    if (valueLength === DELETED) this.memory -= keyLength + TOMBSTONE_OVERHEAD_BYTES;
    else {
      this.memory -= keyLength + valueLength + ENTRY_OVERHEAD_BYTES;
      this.liveKeys--;
    }
    store.unlink(slot);
    this.index.delete(slot);
    store.free(slot);
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
    this.forgetDeletionsBefore(Number.POSITIVE_INFINITY);
    this.changesKnownSince = walOffset;
  }

  private flushBulk(): void {
    const slots = this.bulkSlots;
    if (slots === undefined) return;
    this.bulkSlots = undefined;
    if (slots.length > 0) this.index = loadKeyIndex(slots, this.store.compare);
  }

  /**
   * Moves {@link nextOffset} up to `nextOffset` (never down): the records below it that were not
   * applied changed no key (keyless `PUT`s, left out of the view's tail).
   */
  passTo(nextOffset: number): void {
    if (nextOffset > this.next) this.next = nextOffset;
  }

  private advance(offset: number, name: string): void {
    if (!Number.isSafeInteger(offset) || offset < this.next) {
      throw new RangeError(`${name} must be a safe integer at or above the next offset ${this.next}, got ${offset}`);
    }
    this.next = offset + 1;
  }

  private put(key: Uint8Array, keyStart: number, keyLength: number, value: Uint8Array, valueStart: number, valueLength: number, offset: number, timestamp: number): void {
    const store = this.store;
    const hash = store.hash(key, keyStart, keyLength);
    const slot = store.find(key, keyStart, keyLength, hash);
    if (slot < 0) {
      this.flushBulk();
      const added = store.add(key, keyStart, keyLength, hash, value, valueStart, valueLength, offset, timestamp);
      this.index.set(added, undefined);
      this.liveKeys++;
      this.memory += keyLength + valueLength + ENTRY_OVERHEAD_BYTES;
      return;
    }
    if (this.openViews.length > 0) this.preserve(slot);
    const old = store.valueLengthOf(slot);
    if (old === DELETED) {
      this.liveKeys++;
      this.memory += valueLength + ENTRY_OVERHEAD_BYTES - TOMBSTONE_OVERHEAD_BYTES;
    } else {
      this.memory += valueLength - old;
    }
    store.setValue(slot, value, valueStart, valueLength, offset, timestamp);
  }

  private remove(key: Uint8Array, offset: number, timestamp: number): void {
    const store = this.store;
    const slot = store.find(key, 0, key.length, store.hash(key, 0, key.length));
    if (slot < 0) return;
    const old = store.valueLengthOf(slot);
    if (old === DELETED) return;
    if (this.openViews.length > 0) this.preserve(slot);
    store.setDeleted(slot, offset, timestamp);
    this.liveKeys--;
    this.memory -= old + ENTRY_OVERHEAD_BYTES - TOMBSTONE_OVERHEAD_BYTES;
    this.deletions.push(slot, offset, store.keyCount - this.liveKeys);
  }

  /** Saves what each open view sees at `slot` before it changes. */
  private preserve(slot: number): void {
    for (const preImages of this.openViews) preImages.preserve(this.store, slot);
  }

  /** Removes the keys whose deletion, still their latest change, is below `offset`. */
  private forgetDeletionsBefore(offset: number): void {
    const forgotten = this.deletions.takeBefore(offset);
    if (forgotten.length === 0) return;
    this.flushBulk();
    const store = this.store;
    for (const slot of forgotten) {
      store.unlink(slot);
      this.memory -= store.keyLengthOf(slot) + TOMBSTONE_OVERHEAD_BYTES;
    }
    if (forgotten.length > REBUILD_INDEX_AFTER_DELETES && forgotten.length > this.index.size / 8) this.rebuildIndexWithout(forgotten);
    else for (const slot of forgotten) this.index.delete(slot);
    if (this.openViews.length === 0) for (const slot of forgotten) store.free(slot);
    else for (const slot of forgotten) this.unlinkedSlots.push(slot);
  }

  /** Builds the index anew without `slots`, in one ordered pass over the old one. */
  private rebuildIndexWithout(slots: readonly number[]): void {
    const isGone = new Uint8Array(this.store.slotCount);
    for (const slot of slots) isGone[slot] = 1;
    const kept: number[] = [];
    // The iterator walks the leaves without comparing keys (a range scan compares its bounds in every leaf).
    for (const slot of this.index.keys()) if (isGone[slot] === 0) kept.push(slot);
    this.index = loadKeyIndex(kept, this.store.compare);
  }

  private closeView(preImages: ViewPreImages): void {
    this.views.unregister(preImages);
    preImages.clear();
    const at = this.openViews.indexOf(preImages);
    if (at < 0) return;
    this.openViews.splice(at, 1);
    if (this.openViews.length > 0) return;
    for (const slot of this.unlinkedSlots) this.store.free(slot);
    this.unlinkedSlots = [];
  }

  private checkNoView(method: string): void {
    if (this.openViews.length > 0) throw new Error(`KeyState.${method}: a view is open (restore a state before taking views of it)`);
  }
}
