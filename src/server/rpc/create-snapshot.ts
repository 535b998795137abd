import type { CreateSnapshotRequest, CreateSnapshotResponse } from '../../gen/wald/v1/snapshot.js';
import type { RpcContext } from './rpc-context.js';
import { snapshotTypeToWire } from '../snapshot-info-message.js';

/**
 * The CreateSnapshot RPC: a full or incremental snapshot of the key-value view, written while the
 * server goes on serving (`StateKeeper.createSnapshot`), durable when it answers.
 *
 * Rejects with `WAL_SNAPSHOT_NO_BASE` for an incremental without a base, the disk's errors
 * (`WAL_NO_SPACE`, `WAL_IO_ERROR`), and as Get when the view stopped.
 */
export async function createSnapshot(request: CreateSnapshotRequest, context: RpcContext): Promise<CreateSnapshotResponse> {
  const created = await context.state.createSnapshot({ compress: request.compress, incremental: request.incremental });
  return {
    snapshotId: created.id,
    type: snapshotTypeToWire(created.type),
    walOffset: BigInt(created.walOffset),
    entryCount: BigInt(created.entryCount),
    tombstoneCount: BigInt(created.tombstoneCount),
    sizeBytes: BigInt(created.sizeBytes),
    compressed: created.isCompressed,
    path: created.path,
    durationMs: BigInt(Math.max(0, Math.round(created.durationMs))),
    checksum: created.checksum,
    baseSnapshotId: created.baseId ?? '',
  };
}
