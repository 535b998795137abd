import { compareByteStrings, fromByteString, toByteString } from './byte-string.js';
import type { ByteStringTree } from './byte-string-tree.js';

/** A key's latest `PUT` as the state holds it: the value as a byte string (one char per byte). */
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
}

/**
 * A point-in-time view of the key-value state: what it held after the record at `nextOffset - 1`.
 * Taking one costs O(1) (the state's B+ trees are cloned copy-on-write: later writes to the state
 * copy the nodes they touch), and nothing done to the state afterwards changes the view, so a
 * snapshot can be streamed from it while appends go on. The view's trees are frozen: writing to
 * them throws.
 */
export class StateView {
  /** Every record below this offset is reflected in the view. */
  readonly nextOffset: number;
  /** The state's memory estimate when the view was taken (see `KeyState.memoryBytes`). */
  readonly memoryBytes: number;
  /** Deletions from this offset on are tracked; changes since an earlier point cannot be listed. */
  readonly changesKnownSince: number;

  constructor(
    private readonly puts: ByteStringTree<StoredEntry>,
    private readonly tombstones: ByteStringTree<StoredTombstone>,
    figures: StateViewFigures,
  ) {
    puts.freeze();
    tombstones.freeze();
    this.nextOffset = figures.nextOffset;
    this.memoryBytes = figures.memoryBytes;
    this.changesKnownSince = figures.changesKnownSince;
  }

  /** Number of keys. */
  get size(): number {
    return this.puts.size;
  }

  /** A key's state in the view, or undefined when it has none. */
  get(key: Uint8Array): KeyEntry | undefined {
    const text = toByteString(key);
    const entry = this.puts.get(text);
    return entry === undefined ? undefined : { key: fromByteString(text), value: fromByteString(entry.value), offset: entry.offset, timestamp: entry.timestamp };
  }

  /** The stored entry of a key given as a byte string, or undefined. */
  getStored(key: string): StoredEntry | undefined {
    return this.puts.get(key);
  }

  /**
   * Every key with its entry, in key order. The yielded pair is reused from one step to the next
   * (copy what you keep).
   */
  entries(): IterableIterator<readonly [string, StoredEntry]> {
    return this.puts.entries(undefined, []);
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
   * The yielded pair is reused from one step to the next.
   *
   * Finding them scans every key of the view; with `pauseEvery`, the generator also yields
   * `undefined` after each `pauseEvery` keys scanned, so that a caller can give the event loop a
   * turn during a long scan.
   */
  changesSince(offset: number): Generator<readonly [string, StoredChange]>;
  changesSince(offset: number, pauseEvery: number): Generator<readonly [string, StoredChange] | undefined>;
  *changesSince(offset: number, pauseEvery = Number.POSITIVE_INFINITY): Generator<readonly [string, StoredChange] | undefined> {
    if (!this.canListChangesSince(offset)) {
      throw new RangeError(`changes since offset ${offset} are not known (known from ${this.changesKnownSince} to ${this.nextOffset})`);
    }
    const pair: [string, StoredChange] = ['', { value: undefined, offset: 0, timestamp: 0 }];
    const puts = this.puts.entries(undefined, []);
    const tombstones = this.tombstones.entries(undefined, []);
    let put = puts.next();
    let tombstone = tombstones.next();
    let scanned = 0;
    while (put.done !== true || tombstone.done !== true) {
      if (++scanned >= pauseEvery) {
        scanned = 0;
        yield undefined;
      }
      // A key is never in both trees (a put removes its tombstone), so no tie needs breaking.
      const isPut = tombstone.done === true || (put.done !== true && compareByteStrings(put.value[0], tombstone.value[0]) < 0);
      const [key, change]: [string, StoredChange] = isPut ? put.value : tombstone.value;
      if (isPut) put = puts.next();
      else tombstone = tombstones.next();
      if (change.offset < offset) continue;
      pair[0] = key;
      pair[1] = change;
      yield pair;
    }
  }
}
