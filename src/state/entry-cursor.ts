/**
 * Cursors over a view's keys: how snapshots read a view (`StateView.read`), a batch of entries at
 * a time, as byte ranges into the state's pages.
 */

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
