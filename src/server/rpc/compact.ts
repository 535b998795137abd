import type { CompactRequest, CompactResponse } from '../../gen/wald/v1/compaction.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The Compact RPC: a compaction (or dry run) by the server's {@link Compactor}, its result in
 * proto terms; a compaction (not a dry run) is logged and counted (`ServerEvents.compactionRun`).
 * Rejects with the errors of `Compactor.compact`.
 */
export async function compact(request: CompactRequest, context: RpcContext): Promise<CompactResponse> {
  const result = await context.compactor.compact({ forceSnapshot: request.forceSnapshot, dryRun: request.dryRun });
  if (!result.isDryRun) context.events.compactionRun(result);
  return {
    snapshotsCreated: result.snapshotsCreated,
    segmentsDeleted: result.segmentsDeleted,
    bytesReclaimed: BigInt(result.bytesReclaimed),
    totalSnapshots: result.totalSnapshots,
    walSegments: result.walSegments,
    snapshotId: result.snapshotId ?? '',
    firstOffset: BigInt(result.firstOffset),
    redundancyRatio: result.redundancyRatio,
    dryRun: result.isDryRun,
    snapshotOffset: BigInt(result.snapshotOffset),
    checkpointOffset: result.checkpointOffset === undefined ? undefined : BigInt(result.checkpointOffset),
    snapshotsDeleted: result.snapshotsDeleted,
    durationMs: BigInt(result.durationMs),
  };
}
