import type { PromoteRequest, PromoteResponse } from '../../gen/wald/v1/replication.js';
import { epochField } from '../replication-state.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The Promote RPC: makes this server the leader of a new epoch (`ReplicationState.promote`): a
 * follower stops following first, then the epoch is made durable (`Wal.beginEpoch`) and appends
 * are taken from then on; on a leader it only starts the new epoch. Without an epoch in the
 * request, one more than the greatest this server has seen (its log's, or its leader's).
 *
 * Rejects with `WAL_EPOCH_MISMATCH` (details `epoch`, `currentEpoch`) for an epoch not greater
 * than that, `WAL_INVALID_ARGUMENT` (field `epoch`) above 2^48 - 1, the failure that stopped the
 * follower's key-value view (before anything changes: it goes on following), and the errors of
 * `Wal.beginEpoch` (`WAL_READ_ONLY`, `WAL_IO_ERROR`, ...).
 */
export async function promote(request: PromoteRequest, context: RpcContext): Promise<PromoteResponse> {
  const requested = request.epoch === undefined ? undefined : epochField(request.epoch);
  const started = await context.replication.promote(context.wal, requested, { check: () => context.state.checkUsable(), caughtUp: () => context.state.caughtUp() });
  context.logger.info({ epoch: started.epoch, startOffset: started.startOffset }, 'promoted: this server leads now');
  return { epoch: BigInt(started.epoch), startOffset: BigInt(started.startOffset) };
}
