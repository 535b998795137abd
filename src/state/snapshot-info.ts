import { type SnapshotHeader, type SnapshotType } from '../codec/snapshot-file.js';
import { formatSnapshotId } from '../codec/snapshot-id.js';

/** What a snapshot file's header says, with where the file is: one row of a snapshot listing. */
export interface SnapshotInfo {
  readonly id: string;
  readonly type: SnapshotType;
  /** The state includes every record below this offset. */
  readonly walOffset: number;
  /** Keys held (puts). */
  readonly entryCount: number;
  /** Deleted keys held (incremental snapshots only). */
  readonly tombstoneCount: number;
  /** Creation time, ms since the epoch. */
  readonly createdMs: number;
  readonly isCompressed: boolean;
  /** The snapshot an incremental applies on; undefined for other types. */
  readonly baseId: string | undefined;
  /** Bytes of the file. */
  readonly sizeBytes: number;
  readonly path: string;
}

/** The listing row of a snapshot file at `path` of `sizeBytes` bytes with this header. */
export function snapshotInfoOf(header: SnapshotHeader, path: string, sizeBytes: number): SnapshotInfo {
  return {
    id: formatSnapshotId(header),
    type: header.type,
    walOffset: header.walOffset,
    entryCount: header.putCount,
    tombstoneCount: header.tombstoneCount,
    createdMs: header.createdMs,
    isCompressed: header.isCompressed,
    baseId: header.base === undefined ? undefined : formatSnapshotId(header.base),
    sizeBytes,
    path,
  };
}
