/**
 * The hash table of a state's keys: key bytes -> slot, by open addressing (linear probing) over an
 * `Int32Array` of slot numbers, with each slot's hash kept with its entry (entry-store.ts) so that
 * probing and growing compare numbers and touch key bytes only on a hash match.
 *
 * Keys are hashed in JavaScript from their bytes, so that a record's key is looked up where it
 * lies in the read buffer: no string or other object is made per lookup, which is what made a
 * `Map` keyed by byte strings the larger part of an apply's cost (docs/state.md). The hash is
 * seeded per table, at random, so that which keys collide is not known in advance.
 */
import { randomInt } from 'node:crypto';

/** Marks an empty cell. */
const EMPTY = -1;
/** Cells the table starts with; it doubles past half full. */
const INITIAL_CELLS = 1024;

/** What the table reads of the entries: each slot's hash, and key comparison. */
export interface KeyedSlots {
  /** The hash of `slot`'s key, as {@link hashKey} made it with the table's seed. */
  hashOf(slot: number): number;
  /** True when slot `slot`'s key is `bytes[start..start + length)`. */
  keyEquals(slot: number, bytes: Uint8Array, start: number, length: number): boolean;
}

/**
 * Hash of `bytes[start..start + length)` with `seed`: FNV-1a over the bytes, then MurmurHash3's
 * finalizer, so that the low bits the table masks with depend on every byte.
 */
export function hashKey(bytes: Uint8Array, start: number, length: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) | 0;
  const end = start + length;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Key bytes -> slot. Holds slot numbers only; the keys and hashes are the entries'. */
export class KeyTable {
  /** The seed of {@link hashKey} for this table's keys. */
  readonly seed = randomInt(0x1_0000_0000) | 0;
  private cells = new Int32Array(INITIAL_CELLS).fill(EMPTY);
  private mask = INITIAL_CELLS - 1;
  private count = 0;

  constructor(private readonly slots: KeyedSlots) {}

  /** Number of keys. */
  get size(): number {
    return this.count;
  }

  /** The slot of the key `bytes[start..start + length)` whose hash is `hash`, or -1. */
  find(bytes: Uint8Array, start: number, length: number, hash: number): number {
    const cells = this.cells;
    const mask = this.mask;
    const slots = this.slots;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = cells[i]!;
      if (slot === EMPTY) return -1;
      if (slots.hashOf(slot) === hash && slots.keyEquals(slot, bytes, start, length)) return slot;
    }
  }

  /** Grows the table now to hold `keys` keys in all, sparing the rehashes of growing step by step. */
  reserve(keys: number): void {
    let cells = this.cells.length;
    while (2 * keys > cells) cells *= 2;
    if (cells > this.cells.length) this.grow(cells);
  }

  /** Adds `slot`, whose key (with hash `hash`, in the slot's column) is not in the table. */
  add(slot: number, hash: number): void {
    if (2 * (this.count + 1) > this.cells.length) this.grow(2 * this.cells.length);
    this.place(slot, hash);
    this.count++;
  }

  /**
   * Adds `slots` (whose keys are not in the table, nor in one another) at once: sorted first by the
   * part of the table their hashes land in (a counting sort), so that the inserts of each part
   * touch memory already in cache, where adding them one by one misses the cache once per key.
   * This is how a snapshot's keys go in once they are all loaded.
   */
  addAll(slots: readonly number[]): void {
    this.reserve(this.count + slots.length);
    const mask = this.mask;
    // 256 parts of the table, or fewer for a small one.
    const shift = Math.max(0, Math.log2(this.cells.length) - 8);
    const starts = new Int32Array(257);
    for (const slot of slots) starts[((this.slots.hashOf(slot) & mask) >>> shift) + 1]!++;
    for (let part = 1; part <= 256; part++) starts[part]! += starts[part - 1]!;
    const sorted = new Int32Array(slots.length);
    for (const slot of slots) sorted[starts[(this.slots.hashOf(slot) & mask) >>> shift]!++] = slot;
    for (const slot of sorted) this.place(slot, this.slots.hashOf(slot));
    this.count += slots.length;
  }

  /** Removes `slot` (which is in the table), moving back the cells after it that probed past it. */
  remove(slot: number): void {
    const cells = this.cells;
    const mask = this.mask;
    const slots = this.slots;
    let hole = slots.hashOf(slot) & mask;
    while (cells[hole] !== slot) {
      // A slot that is not in the table is a defect of the caller: fail rather than loop.
      if (cells[hole] === EMPTY) throw new Error(`KeyTable.remove: slot ${slot} is not in the table`);
      hole = (hole + 1) & mask;
    }
    // Backward-shift deletion: a later cell of the run moves into the hole unless its home lies
    // after the hole (cyclically), where a lookup would then not find it.
    for (let i = (hole + 1) & mask; cells[i] !== EMPTY; i = (i + 1) & mask) {
      const home = slots.hashOf(cells[i]!) & mask;
      const isReachable = hole <= i ? home <= hole || home > i : home <= hole && home > i;
      if (!isReachable) continue;
      cells[hole] = cells[i]!;
      hole = i;
    }
    cells[hole] = EMPTY;
    this.count--;
  }

  private place(slot: number, hash: number): void {
    const cells = this.cells;
    const mask = this.mask;
    let i = hash & mask;
    while (cells[i] !== EMPTY) i = (i + 1) & mask;
    cells[i] = slot;
  }

  private grow(cells: number): void {
    const old = this.cells;
    this.cells = new Int32Array(cells).fill(EMPTY);
    this.mask = this.cells.length - 1;
    for (const slot of old) if (slot !== EMPTY) this.place(slot, this.slots.hashOf(slot));
  }
}
