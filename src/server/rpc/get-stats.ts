import { memoryStorageBytesOf, storageKindOf, type StorageKindReport } from '../../engine/storage-options.js';
import type { WriteState as EngineWriteState } from '../../engine/types.js';
import type { FollowerInfo } from '../../gen/wald/v1/replication.js';
import { ReplicationRole, WriteState, type GetStatsRequest, type GetStatsResponse } from '../../gen/wald/v1/stats.js';
import { StorageKind } from '../../gen/wald/v1/storage.js';
import { optionalOffset } from '../record-message.js';
import { recordTypeCountsMessage } from '../record-type-counts-message.js';
import type { RpcContext } from './rpc-context.js';

function optionalCount(value: number | undefined): bigint | undefined {
  return value === undefined ? undefined : BigInt(value);
}

const WIRE_WRITE_STATES: Readonly<Record<EngineWriteState, WriteState>> = {
  writable: WriteState.WRITE_STATE_WRITABLE,
  'disk-full': WriteState.WRITE_STATE_DISK_FULL,
  'read-only': WriteState.WRITE_STATE_READ_ONLY,
};

const WIRE_STORAGE_KINDS: Readonly<Record<StorageKindReport, StorageKind>> = {
  disk: StorageKind.STORAGE_KIND_DISK,
  memory: StorageKind.STORAGE_KIND_MEMORY,
  other: StorageKind.STORAGE_KIND_OTHER,
};

/**
 * The GetStats RPC: the log's counts, sizes, offsets, I/O counters and write state, the server's
 * tails, and the key-value view (keys, memory) with its snapshot directory (count, newest), and
 * the bytes a compaction now would reclaim; the replication role (leader, or follower of which
 * leader), the epoch and the epoch history; the followers it leads, with their lag and leases; the
 * in-doubt transactions; and the record counts by type and redundancy ratio of the last dry run's
 * scan (kept by the compactor, not recounted); where the log lives (disk or memory, and the bytes
 * a memory storage holds). The view's figures are read once it has applied what is durable when
 * the call arrives (so a transaction committed before is not counted in doubt); a view that has
 * stopped (a failed read, closed) answers with what it holds.
 *
 * Rejects with `WAL_IO_ERROR` when the snapshot directory cannot be read.
 */
export async function getStats(_request: GetStatsRequest, context: RpcContext): Promise<GetStatsResponse> {
  await context.state.caughtUp().catch(() => undefined);
  const stats = context.wal.stats();
  const snapshots = context.state.snapshotSummary();
  const scan = context.compactor.lastRedundancyScan;
  const followers = await followerInfos(context);
  const lag = context.replication.lagOf(context.wal.highWatermark, Date.now());
  return {
    entryCount: BigInt(stats.recordCount),
    segmentCount: BigInt(stats.segmentCount),
    totalSizeBytes: BigInt(stats.bytesOnDisk),
    firstOffset: BigInt(stats.firstOffset),
    latestOffset: optionalOffset(stats.lastOffset),
    highWatermark: optionalOffset(stats.highWatermark),
    nextOffset: BigInt(stats.nextOffset),
    ioStats: {
      bytesWritten: BigInt(stats.io.bytesWritten),
      bytesRead: BigInt(stats.io.bytesRead),
      writes: BigInt(stats.io.writes),
      reads: BigInt(stats.io.reads),
      fsyncs: BigInt(stats.io.fsyncs),
    },
    tailStreamCount: context.tails.size,
    tailQueueBytes: BigInt(context.tailQueueBudget.usedBytes),
    writeState: WIRE_WRITE_STATES[stats.writeState],
    keyCount: BigInt(context.state.keyCount),
    stateMemoryBytes: BigInt(context.state.memoryBytes),
    snapshotCount: snapshots.count,
    lastSnapshotId: snapshots.newest?.id ?? '',
    lastSnapshotOffset: snapshots.newest === undefined ? undefined : BigInt(snapshots.newest.walOffset),
    reclaimableBytes: BigInt(context.compactor.reclaimableBytes()),
    role: context.replication.role === 'leader' ? ReplicationRole.REPLICATION_ROLE_LEADER : ReplicationRole.REPLICATION_ROLE_FOLLOWER,
    leaderAddress: context.replication.leaderAddress ?? '',
    epoch: BigInt(context.wal.epoch),
    epochHistory: context.wal.epochHistory().map((entry) => ({ epoch: BigInt(entry.epoch), startOffset: BigInt(entry.startOffset) })),
    followers,
    inDoubtTransactionCount: BigInt(context.state.inDoubtCount),
    oldestInDoubtAgeMs: optionalCount(context.state.oldestInDoubtAgeMs()),
    // From the last dry run's scan: GetStats never reads the log.
    recordCounts: scan === undefined ? undefined : recordTypeCountsMessage(scan.countsByType),
    redundancyRatio: scan?.ratio,
    recordCountsScannedMs: BigInt(scan?.scannedMs ?? 0),
    storage: WIRE_STORAGE_KINDS[storageKindOf(context.wal.storage)],
    leaderHighWatermark: lag.leaderHighWatermark === undefined ? undefined : BigInt(lag.leaderHighWatermark),
    replicationLagRecords: BigInt(lag.lagRecords),
    replicationLagMs: BigInt(lag.lagMs),
    storageMemoryBytes: BigInt(memoryStorageBytesOf(context.wal.storage)),
  };
}

/** The followers of the registry, with how their retention leases stand in a compaction now. */
async function followerInfos(context: RpcContext): Promise<FollowerInfo[]> {
  const views = await context.followers.list();
  if (views.length === 0) return [];
  const standings = new Map(context.compactor.leaseStandings().map((standing) => [standing.holder, standing]));
  return views.map((view) => {
    const standing = standings.get(view.followerId);
    return {
      followerId: view.followerId,
      address: view.address,
      durableNextOffset: BigInt(view.durableNextOffset),
      lagRecords: BigInt(view.lagRecords),
      lagBytes: BigInt(view.lagBytes),
      lagMs: BigInt(view.lagMs),
      connectedSinceMs: BigInt(view.connectedSinceMs),
      connected: view.isConnected,
      leaseHeldBytes: BigInt(standing?.heldBytes ?? 0),
      leaseLapsed: standing?.lapse !== undefined,
    };
  });
}
