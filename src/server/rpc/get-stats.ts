import { memoryStorageBytesOf, storageKindOf, type StorageKindReport } from '../../engine/storage-options.js';
import type { WriteState as EngineWriteState } from '../../engine/types.js';
import { ReplicationRole, WriteState, type GetStatsRequest, type GetStatsResponse } from '../../gen/wald/v1/stats.js';
import { StorageKind } from '../../gen/wald/v1/storage.js';
import { optionalOffset } from '../record-message.js';
import type { RpcContext } from './rpc-context.js';

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
 * the bytes a compaction now would reclaim, and where the log lives (disk or memory, and the bytes
 * a memory storage holds).
 *
 * Rejects with `WAL_IO_ERROR` when the snapshot directory cannot be read.
 */
export async function getStats(_request: GetStatsRequest, context: RpcContext): Promise<GetStatsResponse> {
  const stats = context.wal.stats();
  const snapshots = context.state.snapshotSummary();
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
    role: ReplicationRole.REPLICATION_ROLE_LEADER,
    leaderAddress: '',
    epoch: 0n,
    epochHistory: [],
    followers: [],
    storage: WIRE_STORAGE_KINDS[storageKindOf(context.wal.storage)],
    storageMemoryBytes: BigInt(memoryStorageBytesOf(context.wal.storage)),
  };
}
