import type { CompactRequest, CompactResponse, KeyCompactionReport } from '../../gen/wald/v1/compaction.js';
import type { KeyCompactionResult } from '../../state/key-compaction.js';
import { recordTypeCountsMessage } from '../record-type-counts-message.js';
import { invalidArgument } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';

/** The highest `threshold_percent`. */
const MAX_THRESHOLD_PERCENT = 100;

/**
 * The Compact RPC: a compaction (or dry run) by the server's {@link Compactor}, its result in
 * proto terms; a compaction (not a dry run) is logged and counted (`ServerEvents.compactionRun`).
 * With `aggressive`, the key compaction of the segments kept follows (`compactKeys`). Rejects with
 * `WAL_INVALID_ARGUMENT` (field `threshold_percent`) for a threshold above 100 or one given without
 * `aggressive`, and with the errors of `Compactor.compact`. Segments kept for followers' retention
 * leases are reported (`lease_held_*`).
 */
export async function compact(request: CompactRequest, context: RpcContext): Promise<CompactResponse> {
  const { thresholdPercent } = request;
  if (thresholdPercent !== undefined && !request.aggressive) {
    throw invalidArgument('threshold_percent', 'applies to a key compaction only: set aggressive too');
  }
  if (thresholdPercent !== undefined && thresholdPercent > MAX_THRESHOLD_PERCENT) {
    throw invalidArgument('threshold_percent', `must be at most ${MAX_THRESHOLD_PERCENT}, got ${thresholdPercent}`, { limit: MAX_THRESHOLD_PERCENT });
  }
  const result = await context.compactor.compact({
    forceSnapshot: request.forceSnapshot,
    dryRun: request.dryRun,
    aggressive: request.aggressive,
    thresholdPercent,
  });
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
    recordCounts: result.recordCounts === undefined ? undefined : recordTypeCountsMessage(result.recordCounts),
    dryRun: result.isDryRun,
    snapshotOffset: BigInt(result.snapshotOffset),
    checkpointOffset: result.checkpointOffset === undefined ? undefined : BigInt(result.checkpointOffset),
    snapshotsDeleted: result.snapshotsDeleted,
    durationMs: BigInt(result.durationMs),
    keyCompaction: result.keyCompaction === undefined ? undefined : keyCompactionReport(result.keyCompaction),
    leaseHeldSegments: result.leaseHeldSegments,
    leaseHeldBytes: BigInt(result.leaseHeldBytes),
    leaseHolders: [...result.leaseHolders],
  };
}

function keyCompactionReport(result: KeyCompactionResult): KeyCompactionReport {
  return {
    segmentsConsidered: result.segmentsConsidered,
    segmentsRewritten: result.segmentsRewritten,
    recordsConsidered: BigInt(result.recordsConsidered),
    recordsDropped: BigInt(result.recordsDropped),
    redundancyPercent: result.redundancyPercent,
    beforeSizeBytes: BigInt(result.beforeSizeBytes),
    afterSizeBytes: BigInt(result.afterSizeBytes),
    freedBytes: BigInt(result.freedBytes),
    reductionPercent: result.reductionPercent,
    durationMs: BigInt(Math.max(0, Math.round(result.durationMs))),
  };
}
