/**
 * Where a key-value state keeps its entries: per slot, columns of numbers, and the bytes of each
 * key with its value as one run in pages of memory. A key gets a slot when it enters the state and
 * keeps it until it leaves, so an overwrite changes a few column cells and copies the value in
 * place (when it fits), and the ordered index of keys (key-index.ts) changes only when a key
 * enters or leaves. No JavaScript object or string is made per entry or per write: loading,
 * applying and snapshotting copy bytes, and the garbage collector has nothing per key to trace.
 *
 * A page holds runs one after another, each `slot (u32) | capacity (u32) | key | value | slack`.
 * A run dies when its slot gets a new run (a value that outgrew it, or shrank far below it: a run
 * holds at most twice what it needs plus 64 bytes) or its key leaves; a page less than half live is relocated (its live runs copied to the page being
 * filled, found by walking the page's headers) and dropped, so the pages hold at most about twice
 * the live bytes, and a relocation copies at most half a page.
 */
import { compareRanges, copyBytes } from './byte-range.js';
import { hashKey, KeyTable, type KeyedSlots } from './key-table.js';

/** Default of {@link EntryStore.pageBytes}: 4 MiB. */
export const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024;
/** Bytes of a run's header: slot and capacity. */
const RUN_HEADER_BYTES = 8;
/** The slot number the comparator reads as the probe key ({@link EntryStore.setProbe}). */
export const PROBE_SLOT = -1;
/** The value length of a remembered deletion. */
export const DELETED = -1;
/** Cells per slot in {@link EntryStore.cells}, and what each holds. */
export const SLOT_CELLS = 8;
export const PAGE = 0;
export const START = 1;
const CAPACITY = 2;
export const KEY_LENGTH = 3;
export const VALUE_LENGTH = 4;
const HASH = 5;
/** The page of a slot without a run (free). */
const NO_PAGE = -1;
/** Slots the columns start with; they double when full. */
const INITIAL_SLOTS = 1024;
/** Keys at or below this length are compared in JavaScript, longer ones by `Buffer#compare`. */
const SHORT_KEY_BYTES = 40;

/**
 * The entries of one state. Slots hold a live entry, a remembered deletion (its value length is
 * {@link DELETED}; the key stays), or nothing (free). Written only by its `KeyState`; views read
 * it (state-view.ts).
 */
export class EntryStore implements KeyedSlots {
  /**
   * Per slot, {@link SLOT_CELLS} cells side by side (one cache line holds two slots, so that a
   * lookup, a comparison or a read of an entry touches one line, not one per column): the page of
   * its run (-1: none), where its key starts in the page (the value follows), the run's capacity,
   * the key's and the value's lengths (the value's is {@link DELETED} for a remembered deletion),
   * and the key's hash.
   */
  cells = new Int32Array(INITIAL_SLOTS * SLOT_CELLS);
  /**
   * Per slot, the offset and timestamp (ms since the epoch) of the record that last changed it
   * (every change raises the offset: views rely on that).
   */
  times = new Float64Array(INITIAL_SLOTS * 2);
  /** Slots handed out so far: slots at or above it have never been used. */
  slotCount = 0;
  /** The page buffers (undefined: a dropped page, whose number may be reused). */
  readonly buffers: (Buffer | undefined)[] = [];
  /** Key bytes -> slot. */
  private readonly table: KeyTable = new KeyTable(this);
  /** Slots added with their table entry deferred ({@link add}), put in the table at the next lookup. */
  private tableBacklog: number[] = [];
  /** Compares the keys of two slots by unsigned bytes ({@link PROBE_SLOT} is the probe key). */
  readonly compare = (a: number, b: number): number => this.compareSlots(a, b);
  private readonly freeSlots: number[] = [];
  private readonly liveBytes: number[] = [];
  private readonly usedBytes: number[] = [];
  private readonly freePages: number[] = [];
  /** Pages to look at once the current change is done: dropped when dead, relocated when sparse. */
  private readonly toReclaim: number[] = [];
  private current = NO_PAGE;
  private probe: Uint8Array = new Uint8Array(0);

  /** @param pageBytes bytes of each page; a run larger than a page gets a page of its own. */
  constructor(readonly pageBytes = DEFAULT_PAGE_BYTES) {}

  /** Bytes of the pages held (live runs, dead runs not yet reclaimed, and the unfilled end of the current page). */
  get pageMemoryBytes(): number {
    let bytes = 0;
    for (const buffer of this.buffers) bytes += buffer?.length ?? 0;
    return bytes;
  }

  /** Makes room for `keys` keys in all (columns and hash table), sparing their growth step by step. */
  reserve(keys: number): void {
    let slots = this.times.length / 2;
    while (slots < keys) slots *= 2;
    if (slots > this.times.length / 2) this.growColumns(slots);
    this.table.reserve(keys);
  }

  /** The hash of `slot`'s key. */
  hashOf(slot: number): number {
    return this.cells[slot * SLOT_CELLS + HASH]!;
  }

  keyLengthOf(slot: number): number {
    return this.cells[slot * SLOT_CELLS + KEY_LENGTH]!;
  }

  /** The length of `slot`'s value, or {@link DELETED}. */
  valueLengthOf(slot: number): number {
    return this.cells[slot * SLOT_CELLS + VALUE_LENGTH]!;
  }

  offsetOf(slot: number): number {
    return this.times[2 * slot]!;
  }

  timestampOf(slot: number): number {
    return this.times[2 * slot + 1]!;
  }

  /** The hash of a key, for {@link find} and {@link add}. */
  hash(bytes: Uint8Array, start: number, length: number): number {
    return hashKey(bytes, start, length, this.table.seed);
  }

  /** Keys in the store, live or deleted. */
  get keyCount(): number {
    return this.table.size + this.tableBacklog.length;
  }

  /** The slot of the key `bytes[start..start + length)` (hash `hash`), live or deleted, or -1. */
  find(bytes: Uint8Array, start: number, length: number, hash: number): number {
    if (this.tableBacklog.length > 0) this.flushTable();
    return this.table.find(bytes, start, length, hash);
  }

  /**
   * Adds a key that is not in the store, with its value, offset and timestamp; returns its slot
   * (a free one if any: the state frees a slot only when no view can read it). With
   * `isTableDeferred` (keys loaded in bulk, known to be new) the hash table takes the key at the
   * next lookup, with the others deferred, in one cache-friendly pass (`KeyTable.addAll`).
   */
  add(key: Uint8Array, keyStart: number, keyLength: number, hash: number, value: Uint8Array, valueStart: number, valueLength: number, offset: number, timestamp: number, isTableDeferred = false): number {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.newSlot();
    const cell = slot * SLOT_CELLS;
    this.cells[cell + HASH] = hash;
    this.cells[cell + KEY_LENGTH] = keyLength;
    this.allocateRun(slot, keyLength + valueLength);
    const buffer = this.buffers[this.cells[cell + PAGE]!]!;
    const at = this.cells[cell + START]!;
    // A snapshot entry's key and value lie side by side, as in a run: one copy.
    if (value === key && valueStart === keyStart + keyLength) copyBytes(key, keyStart, keyLength + valueLength, buffer, at);
    else {
      copyBytes(key, keyStart, keyLength, buffer, at);
      copyBytes(value, valueStart, valueLength, buffer, at + keyLength);
    }
    this.cells[cell + VALUE_LENGTH] = valueLength;
    this.times[2 * slot] = offset;
    this.times[2 * slot + 1] = timestamp;
    if (isTableDeferred) this.tableBacklog.push(slot);
    else {
      if (this.tableBacklog.length > 0) this.flushTable();
      this.table.add(slot, hash);
    }
    this.reclaim();
    return slot;
  }

  /** Sets the value of `slot` (live or deleted), with the offset and timestamp of the record. */
  setValue(slot: number, value: Uint8Array, valueStart: number, valueLength: number, offset: number, timestamp: number): void {
    const cell = slot * SLOT_CELLS;
    const keyLength = this.cells[cell + KEY_LENGTH]!;
    const needed = keyLength + valueLength;
    const capacity = this.cells[cell + CAPACITY]!;
    if (needed > capacity || capacity > 2 * needed + 64) {
      // Outgrown, or far too large for it now: a new run, the key copied from the old one.
      const page = this.cells[cell + PAGE]!;
      const start = this.cells[cell + START]!;
      this.allocateRun(slot, needed);
      copyBytes(this.buffers[page]!, start, keyLength, this.buffers[this.cells[cell + PAGE]!]!, this.cells[cell + START]!);
      this.killRun(page, capacity);
    }
    copyBytes(value, valueStart, valueLength, this.buffers[this.cells[cell + PAGE]!]!, this.cells[cell + START]! + keyLength);
    this.cells[cell + VALUE_LENGTH] = valueLength;
    this.times[2 * slot] = offset;
    this.times[2 * slot + 1] = timestamp;
    this.reclaim();
  }

  /**
   * Marks `slot` deleted at `offset`: its key stays (incremental snapshots list it), its value
   * goes (a run far larger than the key alone is replaced by one that fits it).
   */
  setDeleted(slot: number, offset: number, timestamp: number): void {
    const cell = slot * SLOT_CELLS;
    const keyLength = this.cells[cell + KEY_LENGTH]!;
    const capacity = this.cells[cell + CAPACITY]!;
    if (capacity > 2 * keyLength + 64) {
      const page = this.cells[cell + PAGE]!;
      const start = this.cells[cell + START]!;
      this.allocateRun(slot, keyLength);
      copyBytes(this.buffers[page]!, start, keyLength, this.buffers[this.cells[cell + PAGE]!]!, this.cells[cell + START]!);
      this.killRun(page, capacity);
    }
    this.cells[cell + VALUE_LENGTH] = DELETED;
    this.times[2 * slot] = offset;
    this.times[2 * slot + 1] = timestamp;
    this.reclaim();
  }

  /** Takes `slot`'s key out of the table: lookups no longer find it (its run stays for views). */
  unlink(slot: number): void {
    if (this.tableBacklog.length > 0) this.flushTable();
    this.table.remove(slot);
  }

  /** Puts the deferred slots in the hash table. */
  private flushTable(): void {
    const backlog = this.tableBacklog;
    this.tableBacklog = [];
    this.table.addAll(backlog);
  }

  /** Frees an unlinked slot that no view can read any more: its run dies and the slot may be handed out again. */
  free(slot: number): void {
    const cell = slot * SLOT_CELLS;
    this.killRun(this.cells[cell + PAGE]!, this.cells[cell + CAPACITY]!);
    this.cells[cell + PAGE] = NO_PAGE;
    this.freeSlots.push(slot);
    this.reclaim();
  }

  /** True when slot `slot`'s key is `bytes[start..start + length)`. */
  keyEquals(slot: number, bytes: Uint8Array, start: number, length: number): boolean {
    const cell = slot * SLOT_CELLS;
    if (this.cells[cell + KEY_LENGTH] !== length) return false;
    const buffer = this.buffers[this.cells[cell + PAGE]!]!;
    const at = this.cells[cell + START]!;
    if (length > SHORT_KEY_BYTES) return buffer.compare(bytes, start, start + length, at, at + length) === 0;
    for (let i = 0; i < length; i++) if (buffer[at + i] !== bytes[start + i]) return false;
    return true;
  }

  /** Sets the key that {@link PROBE_SLOT} stands for in {@link compare} (a search key of the index). */
  setProbe(key: Uint8Array): void {
    this.probe = key;
  }

  /** The key of `slot`, in a new buffer. */
  keyOf(slot: number): Buffer {
    const cell = slot * SLOT_CELLS;
    const at = this.cells[cell + START]!;
    return Buffer.from(this.buffers[this.cells[cell + PAGE]!]!.subarray(at, at + this.cells[cell + KEY_LENGTH]!));
  }

  /** The value of live `slot`, in a new buffer. */
  valueOf(slot: number): Buffer {
    const cell = slot * SLOT_CELLS;
    const at = this.cells[cell + START]! + this.cells[cell + KEY_LENGTH]!;
    return Buffer.from(this.buffers[this.cells[cell + PAGE]!]!.subarray(at, at + this.cells[cell + VALUE_LENGTH]!));
  }

  /** True when `slot`'s key starts with `prefix`. */
  keyStartsWith(slot: number, prefix: Uint8Array): boolean {
    const cell = slot * SLOT_CELLS;
    if (this.cells[cell + KEY_LENGTH]! < prefix.length) return false;
    const buffer = this.buffers[this.cells[cell + PAGE]!]!;
    const at = this.cells[cell + START]!;
    for (let i = 0; i < prefix.length; i++) if (buffer[at + i] !== prefix[i]) return false;
    return true;
  }

  /** Compares slot `slot`'s key with `bytes[start..start + length)` by unsigned bytes. */
  compareKey(slot: number, bytes: Uint8Array, start: number, length: number): number {
    const cell = slot * SLOT_CELLS;
    return compareRanges(this.buffers[this.cells[cell + PAGE]!]!, this.cells[cell + START]!, this.cells[cell + KEY_LENGTH]!, bytes, start, length);
  }

  private compareSlots(a: number, b: number): number {
    if (a === b) return 0;
    if (a === PROBE_SLOT) return -this.compareKey(b, this.probe, 0, this.probe.length);
    if (b === PROBE_SLOT) return this.compareKey(a, this.probe, 0, this.probe.length);
    const cell = b * SLOT_CELLS;
    return this.compareKey(a, this.buffers[this.cells[cell + PAGE]!]!, this.cells[cell + START]!, this.cells[cell + KEY_LENGTH]!);
  }

  private newSlot(): number {
    const slot = this.slotCount++;
    if (2 * slot === this.times.length) this.growColumns(2 * slot);
    return slot;
  }

  private growColumns(slots: number): void {
    this.cells = grown(this.cells, new Int32Array(slots * SLOT_CELLS));
    this.times = grown(this.times, new Float64Array(slots * 2));
  }

  /** Gives `slot` a new run with room for `capacity` bytes (the caller fills it and kills the old one). */
  private allocateRun(slot: number, capacity: number): void {
    const runBytes = RUN_HEADER_BYTES + capacity;
    let page: number;
    if (runBytes > this.pageBytes) {
      page = this.newPage(runBytes);
    } else {
      if (this.current === NO_PAGE || this.usedBytes[this.current]! + runBytes > this.pageBytes) {
        if (this.current !== NO_PAGE) this.toReclaim.push(this.current);
        this.current = this.newPage(this.pageBytes);
      }
      page = this.current;
    }
    const buffer = this.buffers[page]!;
    const at = this.usedBytes[page]!;
    writeU32(buffer, at, slot);
    writeU32(buffer, at + 4, capacity);
    this.usedBytes[page] = at + runBytes;
    this.liveBytes[page]! += runBytes;
    const cell = slot * SLOT_CELLS;
    this.cells[cell + PAGE] = page;
    this.cells[cell + START] = at + RUN_HEADER_BYTES;
    this.cells[cell + CAPACITY] = capacity;
  }

  private newPage(bytes: number): number {
    const page = this.freePages.length > 0 ? this.freePages.pop()! : this.buffers.length;
    this.buffers[page] = Buffer.allocUnsafeSlow(bytes);
    this.liveBytes[page] = 0;
    this.usedBytes[page] = 0;
    return page;
  }

  private killRun(page: number, capacity: number): void {
    this.liveBytes[page]! -= RUN_HEADER_BYTES + capacity;
    if (page !== this.current) this.toReclaim.push(page);
  }

  /** Drops dead pages and relocates sparse ones (those less than half live), as queued by the change just made. */
  private reclaim(): void {
    while (this.toReclaim.length > 0) {
      const page = this.toReclaim.pop()!;
      if (page === this.current || this.buffers[page] === undefined) continue;
      const live = this.liveBytes[page]!;
      if (live > 0 && 2 * live >= this.usedBytes[page]!) continue;
      if (live > 0) this.relocate(page);
      this.buffers[page] = undefined;
      this.freePages.push(page);
    }
  }

  /** Copies the live runs of `page` to the current page (walking its run headers). */
  private relocate(page: number): void {
    const buffer = this.buffers[page]!;
    const used = this.usedBytes[page]!;
    for (let at = 0; at < used; ) {
      const slot = readU32(buffer, at);
      const capacity = readU32(buffer, at + 4);
      const start = at + RUN_HEADER_BYTES;
      at = start + capacity;
      const cell = slot * SLOT_CELLS;
      if (slot >= this.slotCount || this.cells[cell + PAGE] !== page || this.cells[cell + START] !== start) continue;
      const bytes = this.cells[cell + KEY_LENGTH]! + Math.max(this.cells[cell + VALUE_LENGTH]!, 0);
      this.allocateRun(slot, bytes);
      buffer.copy(this.buffers[this.cells[cell + PAGE]!]!, this.cells[cell + START]!, start, start + bytes);
    }
  }
}

function grown<T extends Int32Array | Float64Array>(old: T, bigger: T): T {
  bigger.set(old);
  return bigger;
}

function writeU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value;
  buf[at + 1] = value >>> 8;
  buf[at + 2] = value >>> 16;
  buf[at + 3] = value >>> 24;
}

function readU32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}
