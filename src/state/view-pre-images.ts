import { copyBytes } from './byte-range.js';
import { DELETED, KEY_LENGTH, PAGE, SLOT_CELLS, START, type EntryStore } from './entry-store.js';

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
