/**
 * The value of a `checkpoint` record: the id of the snapshot a compaction took (or reused) there,
 * as ASCII.
 *
 * ```
 * +------------------------------------------------------------------+
 * | snapshot id: 45 ASCII bytes, <wal offset:20>-<created ms:15>-<nonce:8 hex> |
 * +------------------------------------------------------------------+
 * ```
 *
 * The record's key is absent and it has no headers. The id names the file `<id>.snap` of the
 * snapshot directory; its first 20 digits are the snapshot's wal offset, at or below the
 * checkpoint's own offset (records appended while the compaction ran come in between).
 */
import { formatSnapshotId, parseSnapshotId } from './snapshot-id.js';

/** The value of the checkpoint record naming snapshot `snapshotId`; throws `RangeError` for a malformed id. */
export function encodeCheckpointValue(snapshotId: string): Buffer {
  const parts = parseSnapshotId(snapshotId);
  if (parts === undefined || formatSnapshotId(parts) !== snapshotId) throw new RangeError(`not a snapshot id: ${snapshotId}`);
  return Buffer.from(snapshotId, 'latin1');
}

/** The snapshot a checkpoint record's value names, or undefined when the value is not a snapshot id. */
export function decodeCheckpointValue(value: Uint8Array): { readonly snapshotId: string; readonly walOffset: number } | undefined {
  const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1');
  const parts = parseSnapshotId(text);
  return parts === undefined ? undefined : { snapshotId: text, walOffset: parts.walOffset };
}
