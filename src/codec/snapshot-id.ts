/**
 * Snapshot ids: `<wal offset: 20 digits>-<created ms: 15 digits>-<nonce: 8 hex digits>`, from three
 * fields of a snapshot's header (snapshot-file.ts), so that ids and file names (`<id>.snap`) sort
 * by offset, then by creation time, as segment names sort by offset.
 */

/** Name suffix of a snapshot file. */
export const SNAPSHOT_FILE_SUFFIX = '.snap';
/** Largest creation time an id can hold (15 digits of ms: the year 33658). */
export const MAX_CREATED_MS = 10 ** 15 - 1;

/** The three fields that make a snapshot id (see {@link formatSnapshotId}). */
export interface SnapshotIdParts {
  readonly walOffset: number;
  readonly createdMs: number;
  readonly nonce: number;
}

/**
 * The id of a snapshot: `<wal offset: 20 digits>-<created ms: 15 digits>-<nonce: 8 hex>`, so that
 * ids sort (as strings) by offset, then creation time.
 */
export function formatSnapshotId(parts: SnapshotIdParts): string {
  checkIdParts(parts);
  return `${String(parts.walOffset).padStart(20, '0')}-${String(parts.createdMs).padStart(15, '0')}-${parts.nonce.toString(16).padStart(8, '0')}`;
}

const ID_PATTERN = /^(\d{20})-(\d{15})-([0-9a-f]{8})$/;

/** The parts of a snapshot id, or undefined when `text` is not one. */
export function parseSnapshotId(text: string): SnapshotIdParts | undefined {
  const match = ID_PATTERN.exec(text);
  if (match === null) return undefined;
  const walOffset = Number(match[1]);
  if (!Number.isSafeInteger(walOffset)) return undefined;
  return { walOffset, createdMs: Number(match[2]), nonce: Number.parseInt(match[3]!, 16) };
}

/** The file name of a snapshot: `<id>.snap`. */
export function snapshotFileName(id: string): string {
  return `${id}${SNAPSHOT_FILE_SUFFIX}`;
}

/** Throws `RangeError` naming the field that is out of range. */
export function checkIdParts(parts: SnapshotIdParts): void {
  if (!Number.isSafeInteger(parts.walOffset) || parts.walOffset < 0) throw new RangeError(`walOffset must be a non-negative safe integer, got ${parts.walOffset}`);
  if (!Number.isSafeInteger(parts.createdMs) || parts.createdMs < 0 || parts.createdMs > MAX_CREATED_MS) {
    throw new RangeError(`createdMs must be an integer in 0..${MAX_CREATED_MS}, got ${parts.createdMs}`);
  }
  if (!Number.isInteger(parts.nonce) || parts.nonce < 0 || parts.nonce > 0xffff_ffff) throw new RangeError(`nonce must be a u32, got ${parts.nonce}`);
}
