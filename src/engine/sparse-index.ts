/**
 * A segment's sparse index: for some frames, their first offset, byte position and timestamp.
 * Lookups find the last indexed frame at or before a target, then the reader scans forward.
 *
 * Derived data: rebuilt by scanning the segment whenever the persisted copy is missing or stale.
 */
export class SparseIndex {
  private offsets: Float64Array;
  private positions: Float64Array;
  private timestamps: Float64Array;
  private count = 0;

  constructor(capacity = 64) {
    this.offsets = new Float64Array(capacity);
    this.positions = new Float64Array(capacity);
    this.timestamps = new Float64Array(capacity);
  }

  /** Builds an index from persisted parallel arrays. */
  static from(offsets: ArrayLike<number>, positions: ArrayLike<number>, timestamps: ArrayLike<number>, count: number): SparseIndex {
    const index = new SparseIndex(Math.max(count, 64));
    for (let i = 0; i < count; i++) index.add(offsets[i]!, positions[i]!, timestamps[i]!);
    return index;
  }

  get entryCount(): number {
    return this.count;
  }

  /** The last entry's byte position, or -1 when empty. */
  get lastPosition(): number {
    return this.count === 0 ? -1 : this.positions[this.count - 1]!;
  }

  /** Adds an entry; offsets, positions and timestamps must not decrease. */
  add(offset: number, position: number, timestamp: number): void {
    if (this.count === this.offsets.length) this.grow();
    this.offsets[this.count] = offset;
    this.positions[this.count] = position;
    this.timestamps[this.count] = timestamp;
    this.count++;
  }

  /** Drops the entries of frames at byte `position` or after (frames cut off the segment). */
  truncate(position: number): void {
    while (this.count > 0 && this.positions[this.count - 1]! >= position) this.count--;
  }

  /** Byte position of the last indexed frame starting at or before `offset`, or -1. */
  positionFor(offset: number): number {
    const i = lastAtOrBefore(this.offsets, this.count, offset);
    return i < 0 ? -1 : this.positions[i]!;
  }

  /**
   * Byte position from which to scan for the first record with timestamp >= `timestamp`: the last
   * entry whose timestamp is below it (frames share timestamps, so equal ones may start earlier).
   */
  positionForTimestamp(timestamp: number): number {
    const i = lastAtOrBefore(this.timestamps, this.count, timestamp - 1);
    return i < 0 ? (this.count === 0 ? -1 : this.positions[0]!) : this.positions[i]!;
  }

  /** Copies the entries out, for persisting. */
  toArrays(): { offsets: Float64Array; positions: Float64Array; timestamps: Float64Array; count: number } {
    return {
      offsets: this.offsets.subarray(0, this.count),
      positions: this.positions.subarray(0, this.count),
      timestamps: this.timestamps.subarray(0, this.count),
      count: this.count,
    };
  }

  private grow(): void {
    const capacity = this.offsets.length * 2;
    const grow = (a: Float64Array): Float64Array => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    this.offsets = grow(this.offsets);
    this.positions = grow(this.positions);
    this.timestamps = grow(this.timestamps);
  }
}

/** Index of the last element <= `target` in a sorted prefix of length `count`, or -1. */
function lastAtOrBefore(sorted: Float64Array, count: number, target: number): number {
  let lo = 0;
  let hi = count - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= target) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
