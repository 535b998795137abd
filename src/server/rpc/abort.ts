import type { AbortRequest, AbortResponse } from '../../gen/wald/v1/transaction.js';
import type { RpcContext } from './rpc-context.js';
import { txnIdOf } from './txn-id.js';

/**
 * The Abort RPC: appends the ABORT record of an in-doubt transaction with its reason
 * (`StateKeeper.abort`); its writes are discarded.
 *
 * Rejects as Commit does.
 */
export async function abort(request: AbortRequest, context: RpcContext): Promise<AbortResponse> {
  const result = await context.state.abort(txnIdOf(request.txnId), request.reason, { sync: request.sync });
  return { offset: BigInt(result.firstOffset), timestamp: BigInt(result.timestamp) };
}
