import { SnapshotType, type SnapshotInfo as SnapshotInfoMessage } from '../gen/wald/v1/snapshot.js';
import type { SnapshotType as StateSnapshotType } from '../codec/snapshot-file.js';
import type { SnapshotInfo } from '../state/snapshot-info.js';

/** The proto enum value of a snapshot type. */
export function snapshotTypeToWire(type: StateSnapshotType): SnapshotType {
  switch (type) {
    case 'full':
      return SnapshotType.SNAPSHOT_TYPE_FULL;
    case 'incremental':
      return SnapshotType.SNAPSHOT_TYPE_INCREMENTAL;
    case 'point':
      return SnapshotType.SNAPSHOT_TYPE_POINT;
  }
}

/** The `SnapshotInfo` message of a listing row, with `checksum` (the trailer's, or recomputed: the caller says which in the proto). */
export function snapshotInfoMessage(info: SnapshotInfo, checksum: string): SnapshotInfoMessage {
  return {
    snapshotId: info.id,
    type: snapshotTypeToWire(info.type),
    walOffset: BigInt(info.walOffset),
    entryCount: BigInt(info.entryCount),
    tombstoneCount: BigInt(info.tombstoneCount),
    sizeBytes: BigInt(info.sizeBytes),
    compressed: info.isCompressed,
    createdMs: BigInt(info.createdMs),
    path: info.path,
    baseSnapshotId: info.baseId ?? '',
    checksum,
  };
}
