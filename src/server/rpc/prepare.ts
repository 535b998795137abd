import type { TxnWrite } from '../../codec/txn-writes.js';
import { TxnWriteOp, type PrepareRequest, type PrepareResponse, type TxnWrite as TxnWriteMessage } from '../../gen/wald/v1/transaction.js';
import { invalidArgument } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';
import { txnIdOf } from './txn-id.js';

/**
 * The Prepare RPC: appends the PREPARE record of a transaction with its writes
 * (`StateKeeper.prepare`), which the key-value view applies only at the transaction's COMMIT.
 *
 * Rejects with `WAL_INVALID_ARGUMENT` for an empty `txn_id`, an unknown op (`writes[i].op`) or a
 * delete with a value (`writes[i].value`); `WAL_TXN_STATE` when the transaction is already
 * prepared or ended; and the errors of `StateKeeper.append` (`WAL_STATE_FULL`,
 * `WAL_RECORD_TOO_LARGE`, ...).
 */
export async function prepare(request: PrepareRequest, context: RpcContext): Promise<PrepareResponse> {
  const txnId = txnIdOf(request.txnId);
  const writes = request.writes.map(toTxnWrite);
  const result = await context.state.prepare(txnId, writes, { sync: request.sync });
  return { offset: BigInt(result.firstOffset), timestamp: BigInt(result.timestamp) };
}

function toTxnWrite(message: TxnWriteMessage, index: number): TxnWrite {
  if (message.op === TxnWriteOp.TXN_WRITE_OP_DELETE) {
    if (message.value.length !== 0) throw invalidArgument(`writes[${index}].value`, 'a delete has no value');
    return { op: 'delete', key: message.key, value: message.value };
  }
  if (message.op !== TxnWriteOp.TXN_WRITE_OP_PUT && message.op !== TxnWriteOp.TXN_WRITE_OP_UNSPECIFIED) {
    throw invalidArgument(`writes[${index}].op`, `unknown op ${String(message.op)}`, { value: String(message.op) });
  }
  return { op: 'put', key: message.key, value: message.value };
}
