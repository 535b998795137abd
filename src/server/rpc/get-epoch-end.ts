import type { GetEpochEndRequest, GetEpochEndResponse } from '../../gen/wald/v1/replication.js';
import { epochField } from '../replication-state.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The GetEpochEnd RPC (Kafka's OffsetForLeaderEpoch): where the asked epoch ends in this log, so
 * that a follower joining this server truncates what it holds beyond that offset before it tails
 * (`Wal.epochEnd`). Followers serve it too, so that followers of followers can ask theirs.
 *
 * Rejects with `WAL_INVALID_ARGUMENT` (field `epoch`) above 2^48 - 1.
 */
export async function getEpochEnd(request: GetEpochEndRequest, context: RpcContext): Promise<GetEpochEndResponse> {
  const end = context.wal.epochEnd(epochField(request.epoch));
  return { epoch: BigInt(end.epoch), endOffset: BigInt(end.endOffset) };
}
