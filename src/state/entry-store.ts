/**
 * Where a key-value state keeps its entries: per slot, columns of numbers, and the bytes of each
 * key with its value as one run in pages of memory. A key gets a slot when it enters the state and
 * keeps it until it leaves, so an overwrite changes a few column cells and copies the value in
 * place (when it fits), and the ordered index of keys (key-index.ts) changes only when a key
 * enters or leaves. No JavaScript object or string is made per entry or per write: loading,
 * applying and snapshotting copy bytes, and the garbage collector has nothing per key to trace.
 *
 * A page holds runs one after another, each `slot (u32) | capacity (u32) | key | value | slack`.
 * A run dies when its slot gets a new run (a value that outgrew it, or shrank far below it) or
 * its key leaves; a page less than half live is relocated (its live runs copied to the page being
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
/** `valueLengths` of a remembered deletion. */
export const DELETED = -1;
/** `pages` of a slot without a run (free). */
const NO_PAGE = -1;
/** Slots the columns start with; they double when full. */
const INITIAL_SLOTS = 1024;
/** Keys at or below this length are compared in JavaScript, longer ones by `Buffer#compare`. */
const SHORT_KEY_BYTES = 40;

/**
 * The entries of one state. Slots hold a live entry, a remembered deletion (`valueLengths` is
 * {@link DELETED}; the key stays), or nothing (free). Written only by its `KeyState`; views read
 * it (state-view.ts).
 */
export class EntryStore implements KeyedSlots {
  hashes = new Int32Array(INITIAL_SLOTS);
  /** Page of each slot's run, or -1. */
  pages = new Int32Array(INITIAL_SLOTS);
  /** Where each slot's key starts in its page (the value follows it). */
  starts = new Int32Array(INITIAL_SLOTS);
  /** Bytes of key and value the run has room for. */
  capacities = new Int32Array(INITIAL_SLOTS);
  keyLengths = new Int32Array(INITIAL_SLOTS);
  /** Bytes of each slot's value, or {@link DELETED}. */
  valueLengths = new Int32Array(INITIAL_SLOTS);
  /** Offset of the record that last changed each slot (every change raises it: views rely on that). */
  offsets = new Float64Array(INITIAL_SLOTS);
  /** Timestamp (ms since the epoch) of that record. */
  timestamps = new Float64Array(INITIAL_SLOTS);
  /** Slots handed out so far: slots at or above it have never been used. */
  slotCount = 0;
  /** The page buffers (undefined: a dropped page, whose number may be reused). */
  readonly buffers: (Buffer | undefined)[] = [];
  /** Key bytes -> slot. */
  readonly table: KeyTable = new KeyTable(this);
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

  /** The hash of a key, for {@link find} and {@link add}. */
  hash(bytes: Uint8Array, start: number, length: number): number {
    return hashKey(bytes, start, length, this.table.seed);
  }

  /** The slot of the key `bytes[start..start + length)` (hash `hash`), live or deleted, or -1. */
  find(bytes: Uint8Array, start: number, length: number, hash: number): number {
    return this.table.find(bytes, start, length, hash);
  }

  /**
   * Adds a key that is not in the store, with its value, offset and timestamp; returns its slot
   * (a free one if any: the state frees a slot only when no view can read it).
   */
  add(key: Uint8Array, keyStart: number, keyLength: number, hash: number, value: Uint8Array, valueStart: number, valueLength: number, offset: number, timestamp: number): number {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.newSlot();
    this.hashes[slot] = hash;
    this.keyLengths[slot] = keyLength;
    this.allocateRun(slot, keyLength + valueLength);
    const buffer = this.buffers[this.pages[slot]!]!;
    // A snapshot entry's key and value lie side by side, as in a run: one copy.
    if (value === key && valueStart === keyStart + keyLength) copyBytes(key, keyStart, keyLength + valueLength, buffer, this.starts[slot]!);
    else {
      copyBytes(key, keyStart, keyLength, buffer, this.starts[slot]!);
      copyBytes(value, valueStart, valueLength, buffer, this.starts[slot]! + keyLength);
    }
    this.valueLengths[slot] = valueLength;
    this.offsets[slot] = offset;
    this.timestamps[slot] = timestamp;
    this.table.add(slot, hash);
    this.reclaim();
    return slot;
  }

  /** Sets the value of `slot` (live or deleted), with the offset and timestamp of the record. */
  setValue(slot: number, value: Uint8Array, valueStart: number, valueLength: number, offset: number, timestamp: number): void {
    const keyLength = this.keyLengths[slot]!;
    const needed = keyLength + valueLength;
    const capacity = this.capacities[slot]!;
    if (needed > capacity || capacity > 2 * needed + 64) {
      // Outgrown, or far too large for it now: a new run, the key copied from the old one.
      const page = this.pages[slot]!;
      const start = this.starts[slot]!;
      this.allocateRun(slot, needed);
      copyBytes(this.buffers[page]!, start, keyLength, this.buffers[this.pages[slot]!]!, this.starts[slot]!);
      this.killRun(page, capacity);
    }
    copyBytes(value, valueStart, valueLength, this.buffers[this.pages[slot]!]!, this.starts[slot]! + keyLength);
    this.valueLengths[slot] = valueLength;
    this.offsets[slot] = offset;
    this.timestamps[slot] = timestamp;
    this.reclaim();
  }

  /** Marks `slot` deleted at `offset`: its key stays (incremental snapshots list it), its value goes. */
  setDeleted(slot: number, offset: number, timestamp: number): void {
    this.valueLengths[slot] = DELETED;
    this.offsets[slot] = offset;
    this.timestamps[slot] = timestamp;
  }

  /** Takes `slot`'s key out of the table: lookups no longer find it (its run stays for views). */
  unlink(slot: number): void {
    this.table.remove(slot);
  }

  /** Frees an unlinked slot that no view can read any more: its run dies and the slot may be handed out again. */
  free(slot: number): void {
    this.killRun(this.pages[slot]!, this.capacities[slot]!);
    this.pages[slot] = NO_PAGE;
    this.freeSlots.push(slot);
    this.reclaim();
  }

  /** True when slot `slot`'s key is `bytes[start..start + length)`. */
  keyEquals(slot: number, bytes: Uint8Array, start: number, length: number): boolean {
    if (this.keyLengths[slot] !== length) return false;
    const buffer = this.buffers[this.pages[slot]!]!;
    const at = this.starts[slot]!;
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
    const start = this.starts[slot]!;
    return Buffer.from(this.buffers[this.pages[slot]!]!.subarray(start, start + this.keyLengths[slot]!));
  }

  /** The value of live `slot`, in a new buffer. */
  valueOf(slot: number): Buffer {
    const start = this.starts[slot]! + this.keyLengths[slot]!;
    return Buffer.from(this.buffers[this.pages[slot]!]!.subarray(start, start + this.valueLengths[slot]!));
  }

  /** True when `slot`'s key starts with `prefix`. */
  keyStartsWith(slot: number, prefix: Uint8Array): boolean {
    if (this.keyLengths[slot]! < prefix.length) return false;
    const buffer = this.buffers[this.pages[slot]!]!;
    const at = this.starts[slot]!;
    for (let i = 0; i < prefix.length; i++) if (buffer[at + i] !== prefix[i]) return false;
    return true;
  }

  /** Compares slot `slot`'s key with `bytes[start..start + length)` by unsigned bytes. */
  compareKey(slot: number, bytes: Uint8Array, start: number, length: number): number {
    return compareRanges(this.buffers[this.pages[slot]!]!, this.starts[slot]!, this.keyLengths[slot]!, bytes, start, length);
  }

  private compareSlots(a: number, b: number): number {
    if (a === b) return 0;
    if (a === PROBE_SLOT) return -this.compareKey(b, this.probe, 0, this.probe.length);
    if (b === PROBE_SLOT) return this.compareKey(a, this.probe, 0, this.probe.length);
    return compareRanges(this.buffers[this.pages[a]!]!, this.starts[a]!, this.keyLengths[a]!, this.buffers[this.pages[b]!]!, this.starts[b]!, this.keyLengths[b]!);
  }

  private newSlot(): number {
    const slot = this.slotCount++;
    if (slot === this.offsets.length) this.growColumns();
    return slot;
  }

  private growColumns(): void {
    const slots = this.offsets.length * 2;
    this.hashes = grown(this.hashes, new Int32Array(slots));
    this.pages = grown(this.pages, new Int32Array(slots));
    this.starts = grown(this.starts, new Int32Array(slots));
    this.capacities = grown(this.capacities, new Int32Array(slots));
    this.keyLengths = grown(this.keyLengths, new Int32Array(slots));
    this.valueLengths = grown(this.valueLengths, new Int32Array(slots));
    this.offsets = grown(this.offsets, new Float64Array(slots));
    this.timestamps = grown(this.timestamps, new Float64Array(slots));
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
    this.pages[slot] = page;
    this.starts[slot] = at + RUN_HEADER_BYTES;
    this.capacities[slot] = capacity;
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
      if (slot >= this.slotCount || this.pages[slot] !== page || this.starts[slot] !== start) continue;
      const bytes = this.keyLengths[slot]! + Math.max(this.valueLengths[slot]!, 0);
      this.allocateRun(slot, bytes);
      buffer.copy(this.buffers[this.pages[slot]!]!, this.starts[slot]!, start, start + bytes);
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
