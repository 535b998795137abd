import { decodeSnapshotTrailer, SNAPSHOT_TRAILER_BYTES } from '../codec/snapshot-file.js';
import { parseSnapshotId } from '../codec/snapshot-id.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import { invalidArgument, WalError } from '../errors.js';
import type { Storage, StorageFile } from '../storage/storage.js';
import type { SnapshotInfo } from './snapshot-info.js';
import { listSnapshots, readSnapshotInfo, snapshotPath } from './snapshot-reader.js';

/**
 * The snapshots of one snapshot directory as the service shows them to clients: ids checked
 * before they name a file, pages of the listing (AIP-158), the checksum a file's trailer holds,
 * and a file's bytes read in chunks. What the snapshot RPCs delegate to, so that the server holds
 * no file logic.
 */

/** A listing row with the checksum the file's trailer holds (not recomputed). */
export interface ListedSnapshot extends SnapshotInfo {
  /** SHA-256 the trailer holds, lowercase hex. */
  readonly checksum: string;
}

/** One page of {@link listSnapshotPage}. */
export interface SnapshotPage {
  readonly snapshots: ListedSnapshot[];
  /** Token of the next page; empty when this one is the last. */
  readonly nextPageToken: string;
}

const TOKEN_VERSION = 's1.';

/**
 * Checks a snapshot id that a client sent, so that it can only ever name `<id>.snap` inside the
 * snapshot directory (an id has no separator, no dot, a fixed form).
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` naming `field` for anything that is not an id.
 */
export function checkSnapshotId(id: string, field = 'snapshot_id'): string {
  if (parseSnapshotId(id) === undefined) {
    throw invalidArgument(field, `not a snapshot id (<20 digits>-<15 digits>-<8 lower-case hex digits>): ${JSON.stringify(id.slice(0, 80))}`);
  }
  return id;
}

/**
 * The path of snapshot `id` in `dir` once `id` is checked ({@link checkSnapshotId}) and the file
 * exists.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` (field `snapshot_id`) for a malformed id,
 *   `WAL_SNAPSHOT_NOT_FOUND` (details `snapshotId`, `snapshotDir`) when there is no such file,
 *   `WAL_IO_ERROR` when the directory cannot be read.
 */
export function existingSnapshotPath(storage: Storage, dir: string, id: string): string {
  const path = snapshotPath(dir, checkSnapshotId(id));
  let exists: boolean;
  try {
    exists = storage.exists(path);
  } catch (error) {
    throw walErrorFromStorage(error, 'looking up a snapshot', { snapshotId: id, snapshotDir: dir });
  }
  if (!exists) throw new WalError('WAL_SNAPSHOT_NOT_FOUND', `no snapshot ${id} in ${dir}`, { snapshotId: id, snapshotDir: dir });
  return path;
}

/**
 * Snapshot `id` of `dir` with the checksum its trailer holds, by header and trailer alone.
 *
 * @throws WalError as {@link existingSnapshotPath} does, and `WAL_CORRUPTION` (details `file`,
 *   `reason`) when the header or trailer cannot be read or does not match the id.
 */
export function findSnapshot(storage: Storage, dir: string, id: string): ListedSnapshot {
  const path = existingSnapshotPath(storage, dir, id);
  const read = readSnapshotInfo(storage, path);
  const problem = read.ok ? (read.info.id === id ? undefined : `the file holds snapshot ${read.info.id}`) : read.reason;
  if (!read.ok || problem !== undefined) {
    throw new WalError('WAL_CORRUPTION', `snapshot ${path} cannot be read: ${problem}`, { file: path, reason: problem });
  }
  const checksum = storedChecksum(storage, read.info);
  if (!checksum.ok) throw new WalError('WAL_CORRUPTION', `snapshot ${path} cannot be read: ${checksum.reason}`, { file: path, reason: checksum.reason });
  return { ...read.info, checksum: checksum.value };
}

/**
 * A page of the snapshots of `dir` in id order, at most `limit`, after the one `pageToken` names
 * (empty: from the first). Files whose header or trailer cannot be read are left out.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` (field `page_token`) for a token not issued here,
 *   `WAL_IO_ERROR` when the directory cannot be read; `RangeError` for a limit below 1.
 */
export function listSnapshotPage(storage: Storage, dir: string, options: { readonly limit: number; readonly pageToken: string }): SnapshotPage {
  if (!Number.isSafeInteger(options.limit) || options.limit < 1) throw new RangeError(`limit must be a positive integer, got ${options.limit}`);
  const after = options.pageToken === '' ? undefined : decodeSnapshotPageToken(options.pageToken);
  const snapshots: ListedSnapshot[] = [];
  let hasMore = false;
  for (const info of listSnapshots(storage, dir).snapshots) {
    if (after !== undefined && info.id <= after) continue;
    const checksum = storedChecksum(storage, info);
    if (!checksum.ok) continue;
    if (snapshots.length === options.limit) {
      hasMore = true;
      break;
    }
    snapshots.push({ ...info, checksum: checksum.value });
  }
  return { snapshots, nextPageToken: hasMore ? encodeSnapshotPageToken(snapshots.at(-1)!.id) : '' };
}

function encodeSnapshotPageToken(lastId: string): string {
  return Buffer.from(TOKEN_VERSION + lastId, 'latin1').toString('base64url');
}

function decodeSnapshotPageToken(token: string): string {
  const text = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url').toString('latin1') : '';
  const id = text.startsWith(TOKEN_VERSION) ? text.slice(TOKEN_VERSION.length) : '';
  if (parseSnapshotId(id) === undefined || encodeSnapshotPageToken(id) !== token) {
    throw invalidArgument('page_token', 'not a token this server issued');
  }
  return id;
}

/** The checksum the trailer of the file of `info` holds, or why it cannot be read. */
export function storedChecksum(storage: Storage, info: SnapshotInfo): { readonly ok: true; readonly value: string } | { readonly ok: false; readonly reason: string } {
  let file: StorageFile | undefined;
  try {
    file = storage.open(info.path, 'read');
    const size = file.size();
    const buf = Buffer.alloc(SNAPSHOT_TRAILER_BYTES);
    const n = size >= SNAPSHOT_TRAILER_BYTES ? file.readSync(buf, SNAPSHOT_TRAILER_BYTES, size - SNAPSHOT_TRAILER_BYTES) : 0;
    const trailer = decodeSnapshotTrailer(buf.subarray(0, n), size);
    return trailer.ok ? { ok: true, value: trailer.value.checksum } : trailer;
  } catch (error) {
    return { ok: false, reason: `unreadable: ${(error as Error).message}` };
  } finally {
    try {
      file?.close();
    } catch {
      // Closing a file only read cannot lose anything.
    }
  }
}

/**
 * A snapshot file read from its start in chunks, for streaming it (GetSnapshot). The file is
 * opened once: removing it meanwhile (a compaction) does not cut the bytes short on POSIX
 * systems. It reads exactly `sizeBytes` (the size when it was listed).
 */
export class SnapshotByteReader {
  private position = 0;

  private constructor(
    private readonly file: StorageFile,
    /** Bytes the reader reads in all. */
    readonly sizeBytes: number,
  ) {}

  /**
   * Opens the file of `info`.
   *
   * @throws WalError `WAL_IO_ERROR` when it cannot be opened.
   */
  static open(storage: Storage, info: SnapshotInfo): SnapshotByteReader {
    try {
      return new SnapshotByteReader(storage.open(info.path, 'read'), info.sizeBytes);
    } catch (error) {
      throw walErrorFromStorage(error, `opening snapshot ${info.path}`, { file: info.path });
    }
  }

  /** Bytes read so far. */
  get bytesRead(): number {
    return this.position;
  }

  /**
   * The next bytes, at most `maxBytes`; undefined once `sizeBytes` were read.
   *
   * @throws WalError `WAL_IO_ERROR` when the read fails or the file ends early.
   */
  async next(maxBytes: number): Promise<Buffer | undefined> {
    if (this.position >= this.sizeBytes) return undefined;
    const length = Math.min(maxBytes, this.sizeBytes - this.position);
    const buf = Buffer.allocUnsafe(length);
    let filled = 0;
    try {
      while (filled < length) {
        const n = await this.file.read(buf.subarray(filled), length - filled, this.position + filled);
        if (n === 0) break;
        filled += n;
      }
    } catch (error) {
      throw walErrorFromStorage(error, `reading snapshot ${this.file.path}`, { file: this.file.path, position: this.position + filled });
    }
    if (filled < length) {
      throw new WalError('WAL_IO_ERROR', `snapshot ${this.file.path} ended at byte ${this.position + filled}, before its ${this.sizeBytes} bytes`, {
        file: this.file.path,
        position: this.position + filled,
      });
    }
    this.position += length;
    return buf;
  }

  /** Closes the file. Idempotent. */
  close(): void {
    try {
      this.file.close();
    } catch {
      // Closing a file only read cannot lose anything; a second close is a no-op for the port's files.
    }
  }
}
