import { EntryCursor, type CursorFilter } from './entry-cursor.js';
import { DELETED, KEY_LENGTH, PAGE, PROBE_SLOT, SLOT_CELLS, START, VALUE_LENGTH, type EntryStore } from './entry-store.js';
import type { KeyIndex } from './key-index.js';
import type { ViewPreImages } from './view-pre-images.js';

/** A key's latest `PUT` as a view lists it: the value as a byte string (one char per byte). */
export interface StoredEntry {
  readonly value: string;
  /** Offset of the `PUT` record. */
  readonly offset: number;
  /** Timestamp of the `PUT` record (ms since the epoch). */
  readonly timestamp: number;
}

/** A key deleted since the state began tracking deletions: offset and timestamp of the `DELETE`. */
export interface StoredTombstone {
  readonly value: undefined;
  readonly offset: number;
  readonly timestamp: number;
}

/** A key's change since a point: its latest `PUT`, or the `DELETE` that removed it. */
export type StoredChange = StoredEntry | StoredTombstone;

/** A key's state as callers see it. */
export interface KeyEntry {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly offset: number;
  readonly timestamp: number;
}

/** Figures of a state at the moment a view was taken. */
export interface StateViewFigures {
  /** Every record below it is reflected; the wal offset of a snapshot of the view. */
  readonly nextOffset: number;
  readonly memoryBytes: number;
  /** Deletions at or after this offset are known (see {@link StateView.canListChangesSince}). */
  readonly changesKnownSince: number;
  /** Live keys. */
  readonly size: number;
}

/**
 * A point-in-time view of the key-value state: what it held after the record at `nextOffset - 1`.
 * Taking one costs O(1): the state's ordered index of keys is cloned copy-on-write (a key added
 * later copies the index nodes it touches, so it is not in the view), and the view reads entries
 * from the state's store, or from its pre-images for slots changed since (see
 * {@link ViewPreImages}). Nothing done to the state afterwards changes the view, so a snapshot can
 * be streamed from it while appends go on.
 *
 * An open view costs the state a comparison per write and a pre-image per changed key: release it
 * ({@link release}) when done (`writeSnapshot` does). A view dropped without release is released
 * when it is garbage-collected. Reading a released view throws.
 */
export class StateView {
  /** Every record below this offset is reflected in the view. */
  readonly nextOffset: number;
  /** The state's memory estimate when the view was taken (see `KeyState.memoryBytes`). */
  readonly memoryBytes: number;
  /** Deletions from this offset on are tracked; changes since an earlier point cannot be listed. */
  readonly changesKnownSince: number;
  /** Number of keys. */
  readonly size: number;
  private isReleased = false;

  constructor(
    private readonly index: KeyIndex,
    private readonly store: EntryStore,
    private readonly preImages: ViewPreImages,
    figures: StateViewFigures,
    private readonly onRelease: (preImages: ViewPreImages) => void,
  ) {
    index.freeze();
    this.nextOffset = figures.nextOffset;
    this.memoryBytes = figures.memoryBytes;
    this.changesKnownSince = figures.changesKnownSince;
    this.size = figures.size;
  }

  /** A key's state in the view, or undefined when it has none. */
  get(key: Uint8Array): KeyEntry | undefined {
    const slot = this.slotOf(key);
    if (slot < 0) return undefined;
    const value = this.valueAt(slot);
    if (value === undefined) return undefined;
    const { offset, timestamp } = this.changeAt(slot);
    return { key: Buffer.from(key), value, offset, timestamp };
  }

  /** A key's stored entry, its value as a byte string, or undefined. */
  getStored(key: Uint8Array): StoredEntry | undefined {
    const entry = this.get(key);
    return entry === undefined ? undefined : { value: entry.value.toString('latin1'), offset: entry.offset, timestamp: entry.timestamp };
  }

  /**
   * Reads the next keys of `cursor` into it: those passing its filter, among at most
   * `cursor.capacity` keys, and only as many as fit in `maxBytes` (key and value bytes plus
   * `cursor.entryOverheadBytes` each); at most `maxEntries`. A read may take no entry: the filter
   * skipped every key passed over, or the next entry does not fit (then `cursor.scanned` is 0 and
   * a read with more room takes it). Sets `cursor.isDone` after the last key.
   *
   * In two passes: the slots from the index, then the entries from the store in a tight loop
   * whose loads do not depend on one another, so that the processor overlaps their cache misses
   * (entries lie in memory in the order they were written, not in key order).
   */
  read(cursor: EntryCursor, maxBytes: number, maxEntries = cursor.capacity): void {
    this.checkOpen();
    cursor.count = 0;
    cursor.scanned = 0;
    if (cursor.isDone) return;
    const keys = (cursor.keys ??= this.index.keys());
    const slots = cursor.slots;
    let passed = cursor.pending;
    while (passed < cursor.capacity) {
      const step = keys.next();
      if (step.done === true) break;
      slots[passed++] = step.value;
    }
    const { cells, times, buffers } = this.store;
    const limit = this.nextOffset;
    const { since, withDeletions } = cursor.filter;
    const overhead = cursor.entryOverheadBytes;
    let bytes = 0;
    let count = 0;
    let scanned = 0;
    for (; scanned < passed && count < maxEntries; scanned++) {
      const slot = slots[scanned]!;
      const cell = slot * SLOT_CELLS;
      let offset = times[2 * slot]!;
      let timestamp = times[2 * slot + 1]!;
      const keyBuffer = buffers[cells[cell + PAGE]!]!;
      const keyStart = cells[cell + START]!;
      const keyLength = cells[cell + KEY_LENGTH]!;
      let valueBuffer: Uint8Array = keyBuffer;
      let valueStart = keyStart + keyLength;
      let valueLength = cells[cell + VALUE_LENGTH]!;
      if (offset >= limit) {
        const preImages = this.preImages;
        const image = preImages.numberOf(slot);
        offset = preImages.offsetAt(image);
        timestamp = preImages.timestampAt(image);
        valueLength = preImages.valueLengthAt(image);
        if (valueLength !== DELETED) {
          valueBuffer = preImages.valueBufferAt(image);
          valueStart = preImages.valueStartAt(image);
        }
      }
      if (offset < since || (valueLength === DELETED && !withDeletions)) continue;
      const entryBytes = keyLength + Math.max(valueLength, 0) + overhead;
      if (bytes + entryBytes > maxBytes) break;
      bytes += entryBytes;
      cursor.keyBuffers[count] = keyBuffer;
      cursor.keyStarts[count] = keyStart;
      cursor.keyLengths[count] = keyLength;
      cursor.valueBuffers[count] = valueBuffer;
      cursor.valueStarts[count] = valueStart;
      cursor.valueLengths[count] = valueLength;
      cursor.offsets[count] = offset;
      cursor.timestamps[count++] = timestamp;
    }
    cursor.count = count;
    cursor.scanned = scanned;
    slots.copyWithin(0, scanned, passed);
    cursor.pending = passed - scanned;
    if (cursor.pending === 0 && passed < cursor.capacity) cursor.isDone = true;
  }

  /**
   * Every key with its entry, in key order. The yielded pair is reused from one step to the next
   * (copy what you keep). For tests and small views: snapshots read with {@link read}.
   */
  *entries(): Generator<readonly [string, StoredEntry]> {
    for (const pair of this.changes({ since: 0, withDeletions: false })) yield pair as readonly [string, StoredEntry];
  }

  /**
   * True when the keys changed since `offset` can be listed: deletions from `offset` on are all
   * still tracked (the state forgets those below its last snapshot, and a flush forgets all).
   */
  canListChangesSince(offset: number): boolean {
    return offset >= this.changesKnownSince && offset <= this.nextOffset;
  }

  /**
   * The changes since `offset` in key order: every key whose latest `PUT` is at or after it, and
   * every key deleted at or after it (and not put again). Applied in order to the state as of
   * `offset`, they give this view. Throws `RangeError` unless {@link canListChangesSince}.
   * The yielded pair is reused from one step to the next. For tests and small views.
   */
  changesSince(offset: number): Generator<readonly [string, StoredChange]> {
    this.checkChangesSince(offset);
    return this.changes({ since: offset, withDeletions: true });
  }

  /** Throws `RangeError` unless {@link canListChangesSince}(`offset`). */
  checkChangesSince(offset: number): void {
    if (!this.canListChangesSince(offset)) {
      throw new RangeError(`changes since offset ${offset} are not known (known from ${this.changesKnownSince} to ${this.nextOffset})`);
    }
  }

  /**
   * Ends the view: the state stops keeping pre-images for it and drops those it kept. Idempotent.
   * Reading the view afterwards throws.
   */
  release(): void {
    if (this.isReleased) return;
    this.isReleased = true;
    this.onRelease(this.preImages);
  }

  /** The keys passing `filter` with their state, in key order, as byte strings. */
  private *changes(filter: CursorFilter): Generator<readonly [string, StoredChange]> {
    const pair: [string, StoredChange] = ['', { value: undefined, offset: 0, timestamp: 0 }];
    const cursor = new EntryCursor(256, filter);
    const batch: [string, StoredChange][] = [];
    while (!cursor.isDone) {
      // Copied out before yielding: the ranges are valid only until the state changes.
      this.read(cursor, Number.POSITIVE_INFINITY);
      batch.length = 0;
      for (let i = 0; i < cursor.count; i++) {
        const key = Buffer.from(cursor.keyBuffers[i]!.buffer, cursor.keyBuffers[i]!.byteOffset + cursor.keyStarts[i]!, cursor.keyLengths[i]!).toString('latin1');
        const length = cursor.valueLengths[i]!;
        const value = length === DELETED ? undefined : Buffer.from(cursor.valueBuffers[i]!.buffer, cursor.valueBuffers[i]!.byteOffset + cursor.valueStarts[i]!, length).toString('latin1');
        batch.push([key, { value, offset: cursor.offsets[i]!, timestamp: cursor.timestamps[i]! } as StoredChange]);
      }
      for (const [key, change] of batch) {
        pair[0] = key;
        pair[1] = change;
        yield pair;
      }
    }
  }

  /** The slot of `key` in the view's index, or -1. */
  private slotOf(key: Uint8Array): number {
    this.checkOpen();
    this.store.setProbe(key);
    const pair = this.index.getPairOrNextHigher(PROBE_SLOT);
    return pair !== undefined && this.store.compare(pair[0], PROBE_SLOT) === 0 ? pair[0] : -1;
  }

  /** The value `slot` held when the view was taken (a copy), or undefined for a deletion. */
  private valueAt(slot: number): Buffer | undefined {
    const store = this.store;
    if (store.offsetOf(slot) < this.nextOffset) return store.valueLengthOf(slot) === DELETED ? undefined : store.valueOf(slot);
    const image = this.preImages.numberOf(slot);
    const length = this.preImages.valueLengthAt(image);
    if (length === DELETED) return undefined;
    const start = this.preImages.valueStartAt(image);
    return Buffer.from(this.preImages.valueBufferAt(image).subarray(start, start + length));
  }

  private changeAt(slot: number): { offset: number; timestamp: number } {
    const store = this.store;
    if (store.offsetOf(slot) < this.nextOffset) return { offset: store.offsetOf(slot), timestamp: store.timestampOf(slot) };
    const image = this.preImages.numberOf(slot);
    return { offset: this.preImages.offsetAt(image), timestamp: this.preImages.timestampAt(image) };
  }

  private checkOpen(): void {
    if (this.isReleased) throw new Error('StateView: read after release()');
  }
}
