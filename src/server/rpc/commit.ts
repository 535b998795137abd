import type { CommitRequest, CommitResponse } from '../../gen/wald/v1/transaction.js';
import type { RpcContext } from './rpc-context.js';
import { txnIdOf } from './txn-id.js';

/**
 * The Commit RPC: appends the COMMIT record of an in-doubt transaction (`StateKeeper.commit`); the
 * key-value view applies all its writes at that record's offset, at once.
 *
 * Rejects with `WAL_INVALID_ARGUMENT` for an empty `txn_id`, `WAL_TXN_STATE` when the transaction
 * is not in doubt (unknown, committed or aborted), and the errors of `StateKeeper.append`.
 */
export async function commit(request: CommitRequest, context: RpcContext): Promise<CommitResponse> {
  const result = await context.state.commit(txnIdOf(request.txnId), { sync: request.sync });
  return { offset: BigInt(result.firstOffset), timestamp: BigInt(result.timestamp) };
}
