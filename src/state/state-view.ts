import { copyBytes } from './byte-range.js';
import { DELETED, KEY_LENGTH, PAGE, PROBE_SLOT, SLOT_CELLS, START, VALUE_LENGTH, type EntryStore } from './entry-store.js';
import type { KeyIndex } from './key-index.js';

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

/** Which of a view's keys a cursor reads. */
export interface CursorFilter {
  /** Only keys changed (put or deleted) at or after this offset (0: every key). */
  readonly since: number;
  /** Whether remembered deletions are read (else live keys only). */
  readonly withDeletions: boolean;
}

/**
 * Reads a view's keys in order, a batch at a time ({@link StateView.read}), into arrays reused
 * from one batch to the next: `count` entries, each a key and a value as byte ranges of a buffer
 * (`valueLengths[i]` is -1 for a remembered deletion), an offset and a timestamp. The ranges are
 * valid until the state changes (the end of the current turn of the event loop): encode them at
 * once, then read on.
 */
export class EntryCursor {
  count = 0;
  /** Keys passed over by the last read, whether it took them or the filter skipped them. */
  scanned = 0;
  /** True once every key has been read. */
  isDone = false;

  readonly keyBuffers: Uint8Array[];
  readonly keyStarts: Int32Array;
  readonly keyLengths: Int32Array;
  readonly valueBuffers: Uint8Array[];
  readonly valueStarts: Int32Array;
  readonly valueLengths: Int32Array;
  readonly offsets: Float64Array;
  readonly timestamps: Float64Array;
  /**
   * The keys to come, from the view's index: the index of a view never changes (later writes to
   * the state copy the nodes they touch), so one iterator serves every read, with no search of
   * the index per read.
   */
  keys: Iterator<number> | undefined;
  /** Slots taken from `keys` and not read yet: `slots[0..pending)`. */
  readonly slots: Int32Array;
  pending = 0;

  /**
   * @param capacity most keys passed over by one read
   * @param filter which keys to take
   * @param entryOverheadBytes bytes counted per entry beyond its key and value, against a read's `maxBytes`
   */
  constructor(
    readonly capacity: number,
    readonly filter: CursorFilter,
    readonly entryOverheadBytes = 0,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    const empty = new Uint8Array(0);
    this.keyBuffers = new Array<Uint8Array>(capacity).fill(empty);
    this.valueBuffers = new Array<Uint8Array>(capacity).fill(empty);
    this.keyStarts = new Int32Array(capacity);
    this.keyLengths = new Int32Array(capacity);
    this.valueStarts = new Int32Array(capacity);
    this.valueLengths = new Int32Array(capacity);
    this.offsets = new Float64Array(capacity);
    this.timestamps = new Float64Array(capacity);
    this.slots = new Int32Array(capacity);
  }
}

/**
 * Estimated bytes a pre-image costs beyond its value bytes: its map entry (slot -> number) and its
 * cells (offset, timestamp, where its value is), at the arrays' doubling slack; sized from V8's
 * layouts (not measured).
 */
export const PRE_IMAGE_OVERHEAD_BYTES = 64;

/** Bytes of each page pre-image values are copied into (a larger value gets a page of its own). */
const PRE_IMAGE_PAGE_BYTES = 256 * 1024;

/**
 * The pre-images of one open view: for each slot changed since the view was taken, what it held
 * then, saved by the state just before the first change. A slot whose offset is below the view's
 * `nextOffset` has not changed since (every change raises a slot's offset to its record's, which
 * is at or above it), so the view reads the state's entries; for any other slot it reads the
 * pre-image. Saving therefore costs one comparison per write while a view is open, and a copy of
 * the value per key changed during the view's life.
 *
 * Kept flat, like the state's entries: a map from slot to a number, arrays of numbers, and the
 * values' bytes in pages, so that a snapshot taken under heavy writes does not leave the garbage
 * collector an object or a buffer per changed key to trace.
 */
export class ViewPreImages {
  private readonly numbers = new Map<number, number>();
  /** Per pre-image: offset and timestamp. */
  private times = new Float64Array(128);
  /** Per pre-image: page, start and length of its value (length {@link DELETED}: a deletion). */
  private cells = new Int32Array(192);
  private readonly pages: Buffer[] = [];
  private pageUsed = 0;
  /** Estimated bytes held: value bytes plus {@link PRE_IMAGE_OVERHEAD_BYTES} per pre-image. */
  bytes = 0;

  /**
   * @param nextOffset the state's next offset when the view was taken
   * @param slotLimit the state's slot count then: slots at or above it are not in the view
   */
  constructor(
    readonly nextOffset: number,
    readonly slotLimit: number,
  ) {}

  /** Number of pre-images held. */
  get size(): number {
    return this.numbers.size;
  }

  /** Called before a change to `slot`: saves what the view sees there, unless it is saved already. */
  preserve(store: EntryStore, slot: number): void {
    if (slot >= this.slotLimit || store.offsetOf(slot) >= this.nextOffset) return;
    const number = this.numbers.size;
    if (3 * number === this.cells.length) {
      this.cells = grown(this.cells, new Int32Array(this.cells.length * 2));
      this.times = grown(this.times, new Float64Array(this.times.length * 2));
    }
    this.numbers.set(slot, number);
    this.times[2 * number] = store.offsetOf(slot);
    this.times[2 * number + 1] = store.timestampOf(slot);
    const length = store.valueLengthOf(slot);
    this.cells[3 * number + 2] = length;
    this.bytes += PRE_IMAGE_OVERHEAD_BYTES;
    if (length === DELETED) return;
    const cell = slot * SLOT_CELLS;
    const page = this.room(length);
    this.cells[3 * number] = page;
    this.cells[3 * number + 1] = this.pageUsed;
    copyBytes(store.buffers[store.cells[cell + PAGE]!]!, store.cells[cell + START]! + store.cells[cell + KEY_LENGTH]!, length, this.pages[page]!, this.pageUsed);
    this.pageUsed += length;
    this.bytes += length;
  }

  /** The number of `slot`'s pre-image, or -1 when it has none. */
  numberOf(slot: number): number {
    return this.numbers.get(slot) ?? -1;
  }

  offsetAt(number: number): number {
    return this.times[2 * number]!;
  }

  timestampAt(number: number): number {
    return this.times[2 * number + 1]!;
  }

  /** The length of pre-image `number`'s value, or {@link DELETED}. */
  valueLengthAt(number: number): number {
    return this.cells[3 * number + 2]!;
  }

  /** The buffer holding pre-image `number`'s value. */
  valueBufferAt(number: number): Buffer {
    return this.pages[this.cells[3 * number]!]!;
  }

  /** Where pre-image `number`'s value starts in {@link valueBufferAt}. */
  valueStartAt(number: number): number {
    return this.cells[3 * number + 1]!;
  }

  /** Drops every pre-image (the view was released). */
  clear(): void {
    this.numbers.clear();
    this.pages.length = 0;
    this.pageUsed = 0;
    this.bytes = 0;
  }

  /** The page to copy `length` more bytes into at `pageUsed` (a new one when the last is full). */
  private room(length: number): number {
    const last = this.pages.length - 1;
    if (last >= 0 && this.pageUsed + length <= this.pages[last]!.length) return last;
    this.pages.push(Buffer.allocUnsafeSlow(Math.max(PRE_IMAGE_PAGE_BYTES, length)));
    this.pageUsed = 0;
    return last + 1;
  }
}

function grown<T extends Int32Array | Float64Array>(old: T, bigger: T): T {
  bigger.set(old);
  return bigger;
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
