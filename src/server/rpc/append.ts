import { performance } from 'node:perf_hooks';
import { status as Status } from '@grpc/grpc-js';
import type { AppendRequest, AppendResponse } from '../../gen/wald/v1/append.js';
import { parseAppendRequest } from '../append-request.js';
import { toAppendResponse } from '../append-stream.js';
import { statusOf } from '../rpc-failure.js';
import type { RpcContext } from './rpc-context.js';
import type { UnaryCallInfo } from './rpc-descriptor.js';

/**
 * The Append RPC: one atomic batch, validated (`append-request.ts`), appended within the cap of
 * the key-value view (`StateKeeper.append`) and acknowledged with its offsets; counted in
 * `wald_appends_total` and timed in `wald_append_duration_seconds` when metrics are on.
 *
 * Rejects with the errors of `parseAppendRequest` and `StateKeeper.append`: `WAL_STATE_FULL` and
 * those of `Wal.append` (`WAL_INVALID_ARGUMENT`, `WAL_OFFSET_MISMATCH`, `WAL_SEQUENCE_STALE`,
 * `WAL_READ_ONLY`, `WAL_NO_SPACE`, ...). With `min_replicas`, the answer waits until that many
 * followers report the batch durable (`ReplicaAcks`): `WAL_INVALID_ARGUMENT` (field
 * `min_replicas`) above `max_min_replicas`, before anything is written; `WAL_REPLICAS_TIMEOUT`
 * when they do not before the call's deadline.
 */
export async function append(request: AppendRequest, context: RpcContext, call: UnaryCallInfo): Promise<AppendResponse> {
  const { metrics } = context;
  if (metrics === undefined) return appendBatch(request, context, call);
  const started = performance.now();
  try {
    const response = await appendBatch(request, context, call);
    metrics.appendAnswered('Append', request.records.length, Status.OK, performance.now() - started);
    return response;
  } catch (error) {
    metrics.appendAnswered('Append', request.records.length, statusOf(error), performance.now() - started);
    throw error;
  }
}

async function appendBatch(request: AppendRequest, context: RpcContext, call: UnaryCallInfo): Promise<AppendResponse> {
  const { records, options, minReplicas } = parseAppendRequest(request);
  if (minReplicas === 0) return toAppendResponse(await context.state.append(records, options));
  context.replicaAcks.check(minReplicas);
  const result = await context.state.append(records, options);
  await context.replicaAcks.await(result, minReplicas, call.deadline, call.signal);
  return toAppendResponse(result);
}
