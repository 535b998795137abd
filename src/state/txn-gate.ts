/**
 * The rules of transaction records, checked when an append is submitted (StateKeeper.append), in
 * the order appends get offsets: what the records already submitted make of each transaction,
 * over what the view has applied (txn-table.ts).
 */
import type { AppendRecord } from '../codec/record.js';
import { checkTxnWrites } from '../codec/txn-writes.js';
import { invalidArgument as invalid, WalError } from '../errors.js';
import type { TxnState, TxnTable } from './txn-table.js';

/** What one admitted append changed in the gate: undone when the append fails, released once the view has applied it. */
export interface TxnTicket {
  /** Per transaction the append changed: its id and the gate's entry before. */
  readonly changes: { readonly name: string; readonly previous: GateEntry | undefined }[];
  /** The append's last offset once known; the entries go once the view has applied it. */
  lastOffset: number;
  isReleased: boolean;
}

interface GateEntry {
  readonly state: TxnState;
  readonly ticket: TxnTicket;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Admits or refuses the transaction records of appends. A `prepare` needs a transaction that is
 * `unknown` (never prepared, or forgotten), a `commit` or `abort` one that is `in_doubt`. The
 * state of a transaction is that of the last admitted append that changed it while the view has not
 * applied that append yet, else the view's (the applied table). Appends are admitted one at a time
 * in the caller's synchronous section just before `Wal.append` takes them, so the order of
 * admission is the order of offsets: of two COMMITs of one transaction, the second sees the first.
 */
export class TxnGate {
  private readonly entries = new Map<string, GateEntry>();
  /** Tickets whose append resolved, by last offset: released as the view applies them. */
  private settled: TxnTicket[] = [];

  constructor(private readonly table: TxnTable) {}

  /** Where transaction `id` stands for the next append. */
  stateOf(id: Uint8Array): TxnState {
    return this.entries.get(idName(id))?.state ?? this.table.stateOf(id);
  }

  /**
   * Checks the transaction records of `records` in order (each sees those before it in the batch)
   * and, when all pass, records their effect; returns undefined for a batch without any.
   *
   * @throws WalError `WAL_TXN_STATE` (details `txnIdBase64`, `state`, `recordType`, `field`) for a
   *   record its transaction's state forbids, `WAL_INVALID_ARGUMENT` for an empty transaction id
   *   (`records[i].key`), a PREPARE whose value is not a writes payload, a COMMIT with a value or an
   *   ABORT whose reason is not UTF-8 (`records[i].value`). Nothing is recorded then.
   */
  admit(records: readonly AppendRecord[]): TxnTicket | undefined {
    let batch: Map<string, TxnState> | undefined;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const type = record.type;
      if (type !== 'prepare' && type !== 'commit' && type !== 'abort') continue;
      // The engine refuses a transaction record without a key; let it say so.
      if (record.key === undefined) continue;
      if (record.key.length === 0) throw invalid(`records[${i}].key`, 'a transaction id must not be empty');
      checkValue(type, record.value, i);
      const name = idName(record.key);
      batch ??= new Map();
      const state = batch.get(name) ?? this.entries.get(name)?.state ?? this.table.stateOf(record.key);
      const isAllowed = type === 'prepare' ? state === 'unknown' : state === 'in_doubt';
      if (!isAllowed) throw refused(record.key, state, type, i);
      batch.set(name, type === 'prepare' ? 'in_doubt' : type === 'commit' ? 'committed' : 'aborted');
    }
    if (batch === undefined) return undefined;
    const ticket: TxnTicket = { changes: [], lastOffset: -1, isReleased: false };
    for (const [name, state] of batch) {
      ticket.changes.push({ name, previous: this.entries.get(name) });
      this.entries.set(name, { state, ticket });
    }
    return ticket;
  }

  /**
   * The append of `ticket` failed, or was a retry the log had already written: puts back what it
   * changed, where nothing admitted later changed it again.
   */
  undo(ticket: TxnTicket): void {
    for (const { name, previous } of ticket.changes) {
      if (this.entries.get(name)?.ticket !== ticket) continue;
      if (previous === undefined || previous.ticket.isReleased) this.entries.delete(name);
      else this.entries.set(name, previous);
    }
    ticket.isReleased = true;
  }

  /** The append of `ticket` was written up to `lastOffset`; the view has applied every record below `appliedOffset`. */
  settle(ticket: TxnTicket, lastOffset: number, appliedOffset: number): void {
    ticket.lastOffset = lastOffset;
    if (lastOffset < appliedOffset) this.release(ticket);
    else this.settled.push(ticket);
  }

  /** The view has applied every record below `appliedOffset`: the table now says what those appends did. */
  applied(appliedOffset: number): void {
    if (this.settled.length === 0) return;
    const waiting: TxnTicket[] = [];
    for (const ticket of this.settled) {
      if (ticket.lastOffset < appliedOffset) this.release(ticket);
      else waiting.push(ticket);
    }
    this.settled = waiting;
  }

  private release(ticket: TxnTicket): void {
    ticket.isReleased = true;
    for (const { name } of ticket.changes) {
      if (this.entries.get(name)?.ticket === ticket) this.entries.delete(name);
    }
  }
}

function checkValue(type: 'prepare' | 'commit' | 'abort', value: Uint8Array, index: number): void {
  if (type === 'prepare') {
    const problem = checkTxnWrites(value);
    if (problem !== undefined) throw invalid(`records[${index}].value`, `a prepare record's value must hold the transaction's writes (docs/format.md): ${problem}`);
  } else if (type === 'commit') {
    if (value.length !== 0) throw invalid(`records[${index}].value`, 'a commit record has an empty value');
  } else {
    try {
      UTF8.decode(value);
    } catch {
      throw invalid(`records[${index}].value`, "an abort record's value (its reason) must be UTF-8");
    }
  }
}

/** The `WAL_TXN_STATE` refusal of a `type` record of transaction `id` in `state`. */
export function refused(id: Uint8Array, state: TxnState, type: 'prepare' | 'commit' | 'abort', index: number): WalError {
  const txnIdBase64 = Buffer.from(id).toString('base64');
  const why =
    type === 'prepare'
      ? state === 'in_doubt'
        ? 'it is already prepared'
        : `it already ended (${state})`
      : state === 'unknown'
        ? 'it was never prepared (or ended so long ago that it is forgotten)'
        : `it already ended (${state})`;
  return new WalError('WAL_TXN_STATE', `records[${index}]: cannot ${type} transaction ${describeId(id)}: ${why}`, {
    txnIdBase64,
    state,
    recordType: type,
    field: `records[${index}]`,
  });
}

/** A transaction id for messages: as text when it is printable ASCII, else base64. */
export function describeId(id: Uint8Array): string {
  const isPrintable = id.length > 0 && id.every((byte) => byte >= 0x20 && byte < 0x7f);
  return isPrintable ? `'${Buffer.from(id).toString('latin1')}'` : `${Buffer.from(id).toString('base64')} (base64)`;
}

function idName(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
}
