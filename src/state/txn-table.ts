/**
 * The transactions of the log as the key-value view has applied it: the in-doubt ones (prepared,
 * neither committed nor aborted), with their writes, and the ended ones it still remembers. A
 * function of the log alone (RecordApplier feeds it), so every replay of the same records builds
 * the same table, and a snapshot carries it (snapshot-file.ts, version 2).
 */
import { checkTxnWrites, txnWriteCount } from '../codec/txn-writes.js';

/** Where a transaction stands. `unknown`: never prepared, or ended and forgotten. */
export type TxnState = 'in_doubt' | 'committed' | 'aborted' | 'unknown';

/** How an ended transaction ended. */
export type TxnOutcome = 'committed' | 'aborted';

/** Default of `txn_max_ended`. */
export const DEFAULT_MAX_ENDED_TXNS = 100_000;

/**
 * Estimated bytes a transaction costs in the table beyond its id and writes: its map entry, its
 * object and the string of its id (V8 layouts, not measured).
 */
export const TXN_OVERHEAD_BYTES = 160;

/** A prepared transaction neither committed nor aborted. */
export interface InDoubtTxn {
  /** The transaction id (the records' key); owned by the table. */
  readonly id: Buffer;
  readonly prepareOffset: number;
  readonly prepareTimestamp: number;
  /** The PREPARE's value, copied and checked: the writes (src/codec/txn-writes.ts), decoded at the COMMIT. */
  readonly payload: Buffer;
  readonly writeCount: number;
}

/** A transaction the table remembers as ended. */
export interface EndedTxn {
  readonly id: Buffer;
  readonly outcome: TxnOutcome;
  /** Its PREPARE's offset; -1 when the table never saw it (key compaction dropped it, or it was never written). */
  readonly prepareOffset: number;
  /** The offset of the COMMIT or ABORT. */
  readonly endOffset: number;
  readonly endTimestamp: number;
}

/** A transaction table as of one offset: what a snapshot carries. */
export interface TxnCapture {
  /** Oldest PREPARE first. */
  readonly inDoubt: readonly InDoubtTxn[];
  /** Oldest end first. */
  readonly ended: readonly EndedTxn[];
}

/** What a record of a transaction did to the table. */
export type TxnStep =
  | { readonly kind: 'prepared' }
  /** A COMMIT of an in-doubt transaction: apply its writes (`txn.payload`) at the COMMIT's offset. */
  | { readonly kind: 'committed'; readonly txn: InDoubtTxn }
  | { readonly kind: 'aborted'; readonly txn: InDoubtTxn }
  /** Nothing to apply: a second PREPARE, an end of an ended transaction, or an end with no PREPARE seen (recorded as ended). */
  | { readonly kind: 'ignored' };

/** What the table reads of a transaction record. */
export interface TxnRecord {
  readonly offset: number;
  readonly timestamp: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * The applied transaction table. Deterministic rules for every sequence of records, checked or
 * not (a library caller of `Wal.append` is not checked, and key compaction drops PREPAREs of
 * aborted transactions):
 *
 * - PREPARE of a transaction neither in doubt nor remembered as ended: in doubt from here, with its
 *   writes. A PREPARE whose value is not a writes payload, or of a transaction in doubt or ended,
 *   changes nothing.
 * - COMMIT / ABORT of an in-doubt transaction: it ends so (the caller applies or drops its writes).
 *   Of an ended one: nothing. Of one the table never saw: remembered as ended so, nothing applied.
 * - At most `maxEnded` ended transactions are remembered, the oldest ended forgotten first; a
 *   forgotten id is `unknown` again (a new PREPARE of it starts a new transaction).
 */
export class TxnTable {
  private readonly inDoubtById = new Map<string, InDoubtTxn>();
  private readonly endedById = new Map<string, EndedTxn>();
  private bytes = 0;

  constructor(
    /** `txn_max_ended`: most ended transactions remembered. */
    readonly maxEnded = DEFAULT_MAX_ENDED_TXNS,
  ) {
    if (!Number.isSafeInteger(maxEnded) || maxEnded < 0) throw new RangeError(`maxEnded must be a non-negative integer, got ${maxEnded}`);
  }

  /** Where transaction `id` stands. */
  stateOf(id: Uint8Array): TxnState {
    const name = idName(id);
    if (this.inDoubtById.has(name)) return 'in_doubt';
    return this.endedById.get(name)?.outcome ?? 'unknown';
  }

  /** The in-doubt transaction `id`, or undefined. */
  inDoubt(id: Uint8Array): InDoubtTxn | undefined {
    return this.inDoubtById.get(idName(id));
  }

  /** The ended transaction `id` as remembered, or undefined. */
  ended(id: Uint8Array): EndedTxn | undefined {
    return this.endedById.get(idName(id));
  }

  /** In-doubt transactions now. */
  get inDoubtCount(): number {
    return this.inDoubtById.size;
  }

  /** Ended transactions remembered now. */
  get endedCount(): number {
    return this.endedById.size;
  }

  /** The in-doubt transactions, oldest PREPARE first. */
  inDoubtList(): InDoubtTxn[] {
    // Prepares come in offset order, and a map iterates in insertion order.
    return [...this.inDoubtById.values()];
  }

  /** The ended transactions remembered, oldest end first (the order they are forgotten in). */
  endedList(): EndedTxn[] {
    return [...this.endedById.values()];
  }

  /** The table as it is now, in O(transactions) (the entries never change): what a snapshot of the state at this offset holds. */
  capture(): TxnCapture {
    return { inDoubt: this.inDoubtList(), ended: this.endedList() };
  }

  /** Estimated bytes the table holds: ids, payloads and {@link TXN_OVERHEAD_BYTES} per transaction. */
  get memoryBytes(): number {
    return this.bytes;
  }

  /** Applies a PREPARE (see the class comment). */
  prepare(record: TxnRecord): TxnStep {
    const name = idName(record.key);
    if (this.inDoubtById.has(name) || this.endedById.has(name)) return { kind: 'ignored' };
    if (checkTxnWrites(record.value) !== undefined) return { kind: 'ignored' };
    const payload = Buffer.from(record.value);
    this.addInDoubt({ id: Buffer.from(record.key), prepareOffset: record.offset, prepareTimestamp: record.timestamp, payload, writeCount: txnWriteCount(payload) });
    return { kind: 'prepared' };
  }

  /** Applies a COMMIT or ABORT (see the class comment). */
  end(record: TxnRecord, outcome: TxnOutcome): TxnStep {
    const name = idName(record.key);
    if (this.endedById.has(name)) return { kind: 'ignored' };
    const txn = this.inDoubtById.get(name);
    if (txn !== undefined) {
      this.inDoubtById.delete(name);
      this.bytes -= txnBytes(txn.id, txn.payload.length);
    }
    this.addEnded({ id: txn?.id ?? Buffer.from(record.key), outcome, prepareOffset: txn?.prepareOffset ?? -1, endOffset: record.offset, endTimestamp: record.timestamp });
    if (txn === undefined) return { kind: 'ignored' };
    return outcome === 'committed' ? { kind: 'committed', txn } : { kind: 'aborted', txn };
  }

  /** Snapshot loading: an in-doubt transaction as the snapshot holds it (in prepare order). Returns false for a payload that does not decode. */
  restoreInDoubt(id: Uint8Array, prepareOffset: number, prepareTimestamp: number, payload: Uint8Array): boolean {
    if (checkTxnWrites(payload) !== undefined) return false;
    const copy = Buffer.from(payload);
    this.addInDoubt({ id: Buffer.from(id), prepareOffset, prepareTimestamp, payload: copy, writeCount: txnWriteCount(copy) });
    return true;
  }

  /** Snapshot loading: an ended transaction as the snapshot holds it (in end order). */
  restoreEnded(txn: EndedTxn): void {
    this.addEnded({ ...txn, id: Buffer.from(txn.id) });
  }

  private addInDoubt(txn: InDoubtTxn): void {
    this.inDoubtById.set(idName(txn.id), txn);
    this.bytes += txnBytes(txn.id, txn.payload.length);
  }

  private addEnded(txn: EndedTxn): void {
    this.endedById.set(idName(txn.id), txn);
    this.bytes += txnBytes(txn.id, 0);
    while (this.endedById.size > this.maxEnded) {
      const oldest = this.endedById.values().next().value!;
      this.endedById.delete(idName(oldest.id));
      this.bytes -= txnBytes(oldest.id, 0);
    }
  }
}

/** The map key of a transaction id: its bytes as a latin1 string (one char per byte, so distinct ids stay distinct). */
function idName(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
}

function txnBytes(id: Uint8Array, payloadBytes: number): number {
  return 2 * id.length + payloadBytes + TXN_OVERHEAD_BYTES;
}
