import type { KeyState, StateRecord } from './key-state.js';
import { TxnTable } from './txn-table.js';

/**
 * How records change the key-value state: the one place that says it, for the live view
 * ({@link StateKeeper}) and for every replay of the log into a state (a rebuild, a state as of a
 * point in time). A `PUT` or `DELETE` with a key changes that key (`KeyState.apply`), a
 * `flush_all` clears the state, a `prepare` holds a transaction's writes in the transaction table
 * and changes no key, its `commit` applies them all at the commit's offset (`KeyState.applyTxnPayload`),
 * its `abort` drops them (txn-table.ts says what happens to records out of turn); every other
 * record only moves the state's next offset.
 */
export class RecordApplier {
  constructor(
    /** The state the records change. */
    readonly state: KeyState,
    /** Hears each `flush_all` applied, with its offset and the keys it removed. */
    private readonly onFlush?: (offset: number, keysRemoved: number) => void,
    /** The transactions as of the state's next offset (a snapshot's, when the state was loaded from one). */
    readonly txns: TxnTable = new TxnTable(),
  ) {}

  /** Applies `records`, which must come in offset order after those applied before. */
  applyAll(records: readonly StateRecord[]): void {
    for (const record of records) this.apply(record);
  }

  /** Applies the next record (see the class comment). Throws `RangeError` for an offset below the state's next offset. */
  apply(record: StateRecord): void {
    switch (record.type) {
      case 'flush_all': {
        const keysRemoved = this.state.clear(record.offset);
        this.onFlush?.(record.offset, keysRemoved);
        return;
      }
      case 'prepare':
      case 'commit':
      case 'abort':
        if (record.key !== undefined) {
          this.applyTxnRecord(record, record.key);
          return;
        }
        break;
      default:
        break;
    }
    this.state.apply(record);
  }

  private applyTxnRecord(record: StateRecord, key: Uint8Array): void {
    // Checked before the table changes, so that a record out of order changes nothing.
    if (record.offset < this.state.nextOffset) this.state.apply(record);
    const txnRecord = { offset: record.offset, timestamp: record.timestamp, key, value: record.value };
    const step = record.type === 'prepare' ? this.txns.prepare(txnRecord) : this.txns.end(txnRecord, record.type === 'commit' ? 'committed' : 'aborted');
    if (step.kind === 'committed') this.state.applyTxnPayload(record.offset, record.timestamp, step.txn.payload);
    else this.state.apply(record);
  }
}

