/**
 * Which PREPARE records the key-value view no longer needs: what key compaction drops and what
 * the dry run's redundancy counts (docs/transactions.md, "Compaction").
 */
import { checkTxnWrites, forEachTxnWrite } from '../codec/txn-writes.js';
import type { WalRecord } from '../engine/types.js';
import type { TxnState } from './txn-table.js';

/** What the judge asks of the view. */
export interface TxnJudgeView {
  /** The applied table's entry for a transaction id: its state, its PREPARE's offset (-1: not seen), its end's offset (-1: in doubt); undefined when unknown. */
  appliedTxn(id: Uint8Array): { readonly state: Exclude<TxnState, 'unknown'>; readonly prepareOffset: number; readonly endOffset: number } | undefined;
  /** The offset of the record that set the key `bytes[start..end)` as the view holds it, or -1. */
  latestOffsetOfRange(bytes: Uint8Array, start: number, end: number): number;
}

/** The verdict on one PREPARE. */
export interface PrepareVerdict {
  /** True when no replay from anything retained needs it (see {@link judgePrepare}). */
  readonly isRedundant: boolean;
  /**
   * Keys of PUT writes of the PREPARE that a rebuild from the log alone may replay while it stays
   * in the log (kept, or in a segment not rewritten), so tombstones of these keys above it must
   * stay (key-compaction.ts): for a committed transaction's PREPARE, its writes a later record
   * superseded; for a PREPARE whose outcome the table does not know (a forgotten transaction, an
   * older one of a reused id), every PUT it holds, since a COMMIT of it may follow in the log.
   * Empty for the others (their writes are never applied, or are live).
   */
  readonly supersededPutKeys: readonly Uint8Array[];
}

const KEEP: PrepareVerdict = { isRedundant: false, supersededPutKeys: [] };
const DROP: PrepareVerdict = { isRedundant: true, supersededPutKeys: [] };

/**
 * Judges the PREPARE `record` against the view's transaction table:
 *
 * - of a transaction the table does not know (never seen, or ended and forgotten): kept, its
 *   outcome is not known (and its PUT keys listed, see {@link PrepareVerdict.supersededPutKeys});
 * - a PREPARE after the one the table took for its id (a duplicate, which every replay ignores, as
 *   the id was prepared or ended when it came): redundant; one before it (an older transaction of
 *   a forgotten id), or any when the table does not know where its own PREPARE was: kept, as
 *   above;
 * - the transaction's own PREPARE: kept while in doubt (whole); redundant once aborted (a replay
 *   that meets the ABORT without it ends the transaction the same way); once committed, redundant
 *   only when every write is a PUT that a later record superseded (the key's offset in the view is
 *   not the COMMIT's), as a superseded PUT is; kept when it holds a DELETE or a live PUT.
 */
export function judgePrepare(view: TxnJudgeView, record: WalRecord): PrepareVerdict {
  const key = record.key;
  if (key === undefined) return KEEP;
  const txn = view.appliedTxn(key);
  // Unknown outcome: a forgotten transaction, an older one of a reused id, or one whose own PREPARE
  // the table never saw (-1: compaction dropped it, and a rebuild met only its COMMIT), which
  // says nothing of the PREPAREs before it.
  if (txn === undefined || txn.prepareOffset > record.offset || txn.prepareOffset < 0) return keptWithUnknownOutcome(record);
  if (txn.prepareOffset < record.offset) return DROP;
  if (txn.state === 'in_doubt') return KEEP;
  if (txn.state === 'aborted') return DROP;
  if (checkTxnWrites(record.value) !== undefined) return DROP;
  let isNeeded = false;
  const superseded: Uint8Array[] = [];
  forEachTxnWrite(record.value, (op, bytes, keyStart, keyEnd) => {
    if (op === 'delete' || view.latestOffsetOfRange(bytes, keyStart, keyEnd) === txn.endOffset) isNeeded = true;
    else superseded.push(bytes.subarray(keyStart, keyEnd));
  });
  return { isRedundant: !isNeeded, supersededPutKeys: superseded };
}

/** Kept: a COMMIT of it may follow, so a rebuild may replay every PUT it holds. */
function keptWithUnknownOutcome(record: WalRecord): PrepareVerdict {
  if (checkTxnWrites(record.value) !== undefined) return KEEP;
  const puts: Uint8Array[] = [];
  forEachTxnWrite(record.value, (op, bytes, keyStart, keyEnd) => {
    if (op === 'put') puts.push(bytes.subarray(keyStart, keyEnd));
  });
  return { isRedundant: false, supersededPutKeys: puts };
}
