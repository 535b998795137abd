import type { KeyState, StateRecord } from './key-state.js';

/**
 * How records change the key-value state: the one place that says it, for the live view
 * ({@link StateKeeper}) and for every replay of the log into a state (a rebuild, a state as of a
 * point in time). A `PUT` or `DELETE` with a key changes that key (`KeyState.apply`), a
 * `flush_all` clears the state, every other record only moves the state's next offset.
 */
export class RecordApplier {
  constructor(
    /** The state the records change. */
    readonly state: KeyState,
    /** Hears each `flush_all` applied, with its offset and the keys it removed. */
    private readonly onFlush?: (offset: number, keysRemoved: number) => void,
  ) {}

  /** Applies `records`, which must come in offset order after those applied before. */
  applyAll(records: readonly StateRecord[]): void {
    for (const record of records) this.apply(record);
  }

  /** Applies the next record (see the class comment). Throws `RangeError` for an offset below the state's next offset. */
  apply(record: StateRecord): void {
    if (record.type !== 'flush_all') {
      this.state.apply(record);
      return;
    }
    const keysRemoved = this.state.clear(record.offset);
    this.onFlush?.(record.offset, keysRemoved);
  }
}
