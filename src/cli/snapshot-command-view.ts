import { SnapshotType, type SnapshotInfo as SnapshotInfoMessage } from '../gen/wald/v1/snapshot.js';
import type { SnapshotInfo } from '../state/snapshot-info.js';
import { isoTime, jsonInteger } from './record-view.js';
import { formatTable } from './table.js';

/**
 * How the `wald snapshot` commands print snapshots: one row shape for what the server sends
 * (`SnapshotInfo` messages) and what the offline commands read from files, printed under the
 * proto's field names (snake_case) with `--json`.
 */

/** A snapshot as printed, under the proto's field names. */
export interface SnapshotRow {
  readonly snapshot_id: string;
  /** `full`, `incremental` or `point`. */
  readonly type: string;
  readonly wal_offset: number | string;
  readonly entry_count: number | string;
  readonly tombstone_count: number | string;
  readonly size_bytes: number | string;
  readonly compressed: boolean;
  readonly created_ms: number | string;
  readonly path: string;
  readonly base_snapshot_id: string;
  readonly checksum: string;
}

/** The lower-case name of a snapshot type of the proto (`full`, `incremental`, `point`). */
export function snapshotTypeName(type: SnapshotType): string {
  switch (type) {
    case SnapshotType.SNAPSHOT_TYPE_FULL:
      return 'full';
    case SnapshotType.SNAPSHOT_TYPE_INCREMENTAL:
      return 'incremental';
    case SnapshotType.SNAPSHOT_TYPE_POINT:
      return 'point';
    default:
      return `type-${String(type)}`;
  }
}

/** The row of a `SnapshotInfo` message. */
export function rowOfMessage(info: SnapshotInfoMessage): SnapshotRow {
  return {
    snapshot_id: info.snapshotId,
    type: snapshotTypeName(info.type),
    wal_offset: jsonInteger(info.walOffset),
    entry_count: jsonInteger(info.entryCount),
    tombstone_count: jsonInteger(info.tombstoneCount),
    size_bytes: jsonInteger(info.sizeBytes),
    compressed: info.compressed,
    created_ms: jsonInteger(info.createdMs),
    path: info.path,
    base_snapshot_id: info.baseSnapshotId,
    checksum: info.checksum,
  };
}

/** The row of a snapshot file read offline, with its checksum. */
export function rowOfFile(info: SnapshotInfo, checksum: string): SnapshotRow {
  return {
    snapshot_id: info.id,
    type: info.type,
    wal_offset: info.walOffset,
    entry_count: info.entryCount,
    tombstone_count: info.tombstoneCount,
    size_bytes: info.sizeBytes,
    compressed: info.isCompressed,
    created_ms: info.createdMs,
    path: info.path,
    base_snapshot_id: info.baseId ?? '',
    checksum,
  };
}

/** Snapshots as a text table, one per line, in the order given. */
export function formatSnapshotTable(rows: readonly SnapshotRow[]): string {
  if (rows.length === 0) return '';
  return formatTable(
    ['ID', 'TYPE', 'WAL_OFFSET', 'ENTRIES', 'TOMBSTONES', 'SIZE_BYTES', 'GZIP', 'CREATED', 'BASE'],
    rows.map((row) => [
      row.snapshot_id,
      row.type,
      String(row.wal_offset),
      String(row.entry_count),
      String(row.tombstone_count),
      String(row.size_bytes),
      row.compressed ? 'yes' : 'no',
      isoTime(BigInt(row.created_ms)),
      row.base_snapshot_id === '' ? '-' : row.base_snapshot_id,
    ]),
  );
}
