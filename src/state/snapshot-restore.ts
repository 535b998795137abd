import { createHash } from 'node:crypto';
import { basename, dirname, join, relative, resolve as resolvePath, isAbsolute } from 'node:path';
import { SNAPSHOT_TEMP_SUFFIX, SNAPSHOT_TRAILER_BYTES, decodeSnapshotTrailer } from '../codec/snapshot-file.js';
import { snapshotFileName } from '../codec/snapshot-id.js';
import { lockDataDir } from '../engine/data-dir-lock.js';
import { createEmptyLog, type EmptyLogOptions } from '../engine/empty-log.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import { WalError } from '../errors.js';
import { StorageError, type Storage, type StorageFile } from '../storage/storage.js';
import type { SnapshotInfo } from './snapshot-info.js';
import { resolveChain, verifySnapshot } from './snapshot-reader.js';
import { DEFAULT_SNAPSHOT_DIR } from './state-options.js';

/** Bytes copied at a time. */
const COPY_CHUNK_BYTES = 1024 * 1024;
/** The directory lock's file (storage/node-storage.ts): an empty data directory may hold it. */
const LOCK_FILE = 'LOCK';

/** What {@link restoreSnapshot} does, in the order it does it. */
export type RestorePhase = 'verify' | 'copy';

/** What {@link restoreSnapshot} takes. */
export interface RestoreOptions {
  readonly storage: Storage;
  /** The snapshot file to restore: a full or incremental one (its chain is found beside it). */
  readonly source: string;
  /** The new data directory. */
  readonly dataDir: string;
  /** Verify the whole chain (every entry) before anything is written. Default false: only each copy's SHA-256 is checked. */
  readonly verify?: boolean | undefined;
  /** Remove what `dataDir` holds first (a log, snapshots) instead of refusing a non-empty directory. Default false. */
  readonly overwrite?: boolean | undefined;
  /** With `overwrite`: entries of `dataDir` (by name) left as they are, such as a follower's `truncated/` side directory. */
  readonly keepEntries?: readonly string[] | undefined;
  /**
   * The snapshot directory the restored server will use (resolved: `snapshotDirOf(dataDir,
   * state.snapshot_dir)`); default `<dataDir>/snapshots`. Inside `dataDir` it must be a direct
   * child of it; outside it, its snapshot files are removed with `overwrite` as well.
   */
  readonly snapshotDir?: string | undefined;
  /**
   * What the new log adopts instead of its own: a follower installing its leader's snapshot takes
   * the leader's frame seed and epoch history, so that the leader's frames check out in it.
   */
  readonly log?: Pick<EmptyLogOptions, 'frameSeed' | 'epochHistory'> | undefined;
  /** Bytes done and in all of the phase under way (each phase reads the chain once). */
  readonly onProgress?: ((phase: RestorePhase, bytesDone: number, bytesTotal: number) => void) | undefined;
}

/** What {@link restoreSnapshot} made. */
export interface RestoreResult {
  /** The snapshot restored (the chain's last). */
  readonly snapshot: SnapshotInfo;
  /** The files copied into the new snapshot directory, base first (their paths there), with their checksums. */
  readonly chain: readonly (SnapshotInfo & { readonly checksum: string })[];
  readonly dataDir: string;
  /** `<dataDir>/snapshots`: where a server started on `dataDir` with the default `snapshot_dir` finds the chain. */
  readonly snapshotDir: string;
  /** The offset the new log starts at, and so the offset of its next append: the snapshot's wal offset. */
  readonly firstOffset: number;
  /** Whether the chain was verified entry by entry (`verify`). */
  readonly isVerified: boolean;
  /** Files removed from `dataDir` first (`overwrite`). */
  readonly filesRemoved: number;
  readonly bytesCopied: number;
}

/**
 * Builds a new data directory from a snapshot, offline (no server may use `dataDir` meanwhile):
 * an empty log whose first offset is the snapshot's wal offset (`createEmptyLog`), and the
 * snapshot's chain (its full base, then each incremental) copied into `<dataDir>/snapshots`. A
 * server started on it loads the chain as its state, answers `Get` as the state was at that
 * offset, and gives its next append that offset.
 *
 * Steps, each durable before the next: (with `verify`) the chain is verified; `dataDir` is checked
 * (emptied with `overwrite`); the empty log is created; each file is copied to a temp name,
 * checked against its trailer's SHA-256, synced, renamed, and the directory synced. A crash in
 * the middle leaves a log that refuses to open for want of its snapshot (`WAL_STATE_LOST`), never
 * a log that opens with a wrong state; run the restore again with `overwrite`.
 *
 * Throws `WalError`: `WAL_CORRUPTION` (details `file`, `reason`) when the chain does not resolve,
 * fails verification or a copy fails its checksum; `WAL_INVALID_ARGUMENT` (field `source`) for a
 * point snapshot or a source inside `dataDir`, (field `dataDir`) for a non-empty directory without
 * `overwrite` or one holding something it would not remove; `WAL_LOCKED` when a process holds
 * `dataDir`; `WAL_IO_ERROR` / `WAL_NO_SPACE` when the disk fails.
 */
export async function restoreSnapshot(options: RestoreOptions): Promise<RestoreResult> {
  const { storage, source, dataDir } = options;
  const resolved = resolveChain(storage, source);
  if (!resolved.ok) throw unusable(resolved.file, resolved.reason);
  const chain = resolved.chain;
  const head = chain[chain.length - 1]!;
  if (head.type === 'point') {
    throw new WalError('WAL_INVALID_ARGUMENT', `source: ${source} is a point snapshot (one key), not a state to restore`, { field: 'source', file: source });
  }
  const inside = relative(realPath(storage, dataDir), realPath(storage, dirname(source)));
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
    throw new WalError('WAL_INVALID_ARGUMENT', `source: ${source} is inside ${dataDir}; copy it out first`, { field: 'source', file: source, dataDir });
  }
  const bytesTotal = chain.reduce((sum, info) => sum + info.sizeBytes, 0);
  let isVerified = false;
  if (options.verify === true) {
    const done = new Map<string, number>();
    const verdict = await verifySnapshot(storage, source, {
      onProgress: (file, bytesRead) => {
        done.set(file, bytesRead);
        options.onProgress?.('verify', [...done.values()].reduce((a, b) => a + b, 0), bytesTotal);
      },
    });
    if (!verdict.ok) throw unusable(verdict.file, verdict.reason);
    isVerified = true;
  }
  // Every file's SHA-256 against its trailer before anything of dataDir is removed: a damaged
  // source must not cost the log it was to replace (--verify checks every entry besides).
  try {
    for (const info of chain) await copySnapshotFile(storage, info, undefined, () => undefined);
  } catch (error) {
    throw walErrorFromStorage(error, `reading ${source}`, { file: source });
  }
  const snapshotDir = options.snapshotDir ?? join(dataDir, DEFAULT_SNAPSHOT_DIR);
  // One lock over every step: no server may open the directory half restored.
  const lock = createDataDirLocked(storage, dataDir);
  try {
    const filesRemoved = prepareDataDir(storage, dataDir, snapshotDir, options.overwrite === true, new Set(options.keepEntries ?? []));
    createEmptyLog({ dir: dataDir, storage, baseOffset: head.walOffset, ...options.log, heldLock: true });
    const copied: (SnapshotInfo & { checksum: string })[] = [];
    let bytesCopied = 0;
    try {
      storage.mkdirp(snapshotDir);
      storage.syncDir(dataDir);
      for (const info of chain) {
        const to = join(snapshotDir, snapshotFileName(info.id));
        const checksum = await copySnapshotFile(storage, info, to, (n) => options.onProgress?.('copy', bytesCopied + n, bytesTotal));
        bytesCopied += info.sizeBytes;
        copied.push({ ...info, path: to, checksum });
      }
      storage.syncDir(snapshotDir);
    } catch (error) {
      throw walErrorFromStorage(error, `restoring into ${dataDir}`, { dataDir });
    }
    return { snapshot: copied[copied.length - 1]!, chain: copied, dataDir, snapshotDir, firstOffset: head.walOffset, isVerified, filesRemoved, bytesCopied };
  } finally {
    lock.release();
  }
}

function unusable(file: string, reason: string): WalError {
  return new WalError('WAL_CORRUPTION', `snapshot ${file} cannot be restored: ${reason}`, { file, reason });
}

/** Creates `dataDir` when missing (its entry made durable) and locks it. */
function createDataDirLocked(storage: Storage, dataDir: string): ReturnType<typeof lockDataDir> {
  try {
    const isNew = !storage.exists(dataDir);
    storage.mkdirp(dataDir);
    if (isNew) storage.syncDir(dirname(resolvePath(dataDir)));
  } catch (error) {
    throw walErrorFromStorage(error, `cannot create ${dataDir}`, { dataDir });
  }
  return lockDataDir(storage, dataDir, `cannot lock ${dataDir}`);
}

/**
 * Checks that `dataDir` holds nothing but its lock file, or with `overwrite` removes its files and
 * those of its snapshot directory. The caller holds the directory's lock. Returns the files removed.
 */
function prepareDataDir(storage: Storage, dataDir: string, snapshotDir: string, overwrite: boolean, keep: ReadonlySet<string>): number {
  let removed = 0;
  const isInside = dirname(resolvePath(snapshotDir)) === resolvePath(dataDir);
  // A snapshot directory elsewhere holds the snapshots of the log being replaced: they go too.
  const outside = isInside || !storage.exists(snapshotDir) ? [] : storage.list(snapshotDir).filter(isSnapshotFileName);
  const names = storage.list(dataDir).filter((name) => name !== LOCK_FILE && !keep.has(name));
  if (names.length === 0 && outside.length === 0) return 0;
  if (!overwrite) {
    throw new WalError('WAL_INVALID_ARGUMENT', `dataDir: ${dataDir} is not empty (${names.length} entries, e.g. ${names[0]}); pass overwrite to replace what it holds`, {
      field: 'dataDir',
      dataDir,
      entries: names.length,
    });
  }
  const snapshotDirName = isInside ? basename(snapshotDir) : undefined;
  // Checked before anything goes: a refusal half way would leave a directory without its log.
  for (const name of names) {
    const path = join(dataDir, name);
    if (name !== snapshotDirName && isDirectory(storage, path)) {
      throw new WalError('WAL_INVALID_ARGUMENT', `dataDir: ${path} is a directory, not a file of a wald data directory; nothing was removed: move it out first`, { field: 'dataDir', path });
    }
  }
  for (const name of outside) {
    removeFile(storage, join(snapshotDir, name));
    removed++;
  }
  if (outside.length > 0) storage.syncDir(snapshotDir);
  // Snapshots before the log: a crash in between leaves a log no snapshot covers (refused at the
  // open, WAL_STATE_LOST, when it was compacted), never snapshots beside a half-removed log.
  names.sort((a, b) => Number(b === snapshotDirName) - Number(a === snapshotDirName));
  for (const name of names) {
    const path = join(dataDir, name);
    if (name === snapshotDirName) {
      for (const file of storage.list(path)) {
        removeFile(storage, join(path, file));
        removed++;
      }
      storage.syncDir(path);
      continue;
    }
    removeFile(storage, path);
    removed++;
  }
  storage.syncDir(dataDir);
  return removed;
}

function isDirectory(storage: Storage, path: string): boolean {
  try {
    storage.list(path);
    return true;
  } catch {
    return false;
  }
}

/** `path` with symbolic links resolved where it exists (a link must not hide a source inside the data directory). */
function realPath(storage: Storage, path: string): string {
  try {
    return storage.realPath?.(path) ?? resolvePath(path);
  } catch {
    return resolvePath(path);
  }
}

/** A snapshot file of a snapshot directory (whole, being written, or set aside). */
function isSnapshotFileName(name: string): boolean {
  return name.endsWith('.snap') || name.endsWith('.snap.tmp') || name.endsWith('.snap.set-aside');
}

/** Errors of `unlink` on a directory (Linux, macOS). */
const IS_DIRECTORY_CODES: ReadonlySet<string> = new Set(['EISDIR', 'EPERM']);

function removeFile(storage: Storage, path: string): void {
  try {
    storage.unlink(path);
  } catch (error) {
    if (error instanceof StorageError && IS_DIRECTORY_CODES.has(error.code)) {
      throw new WalError(
        'WAL_INVALID_ARGUMENT',
        `dataDir: cannot remove ${path} (${error.code}): it is not a file of a wald data directory; remove it yourself`,
        { field: 'dataDir', path },
        { cause: error },
      );
    }
    throw walErrorFromStorage(error, `removing ${path}`, { dataDir: dirname(path) });
  }
}

/**
 * Copies the snapshot file of `info` to `to` (temp -> bytes -> fdatasync -> rename) and returns
 * its checksum, having checked the copied bytes against the SHA-256 its trailer holds. The caller
 * syncs the directory. Without `to`, only reads and checks the file.
 */
async function copySnapshotFile(storage: Storage, info: SnapshotInfo, to: string | undefined, onProgress: (bytesCopied: number) => void): Promise<string> {
  const temp = `${to}${SNAPSHOT_TEMP_SUFFIX}`;
  let from: StorageFile | undefined;
  let out: StorageFile | undefined;
  try {
    from = storage.open(info.path, 'read');
    if (to !== undefined) {
      if (storage.exists(temp)) storage.unlink(temp);
      out = storage.open(temp, 'create-new');
    }
    const size = from.size();
    const hashedBytes = size - SNAPSHOT_TRAILER_BYTES;
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
    let trailer = Buffer.alloc(0);
    for (let position = 0; position < size; ) {
      const n = await from.read(buf, Math.min(COPY_CHUNK_BYTES, size - position), position);
      if (n === 0) throw unusable(info.path, `ended at byte ${position} of ${size}`);
      const chunk = buf.subarray(0, n);
      hash.update(chunk.subarray(0, Math.max(0, Math.min(n, hashedBytes - position))));
      if (position + n > hashedBytes) trailer = Buffer.concat([trailer, chunk.subarray(Math.max(0, hashedBytes - position))]);
      out?.writev([chunk], position);
      position += n;
      onProgress(position);
    }
    const decoded = decodeSnapshotTrailer(trailer, size);
    if (!decoded.ok) throw unusable(info.path, decoded.reason);
    const checksum = hash.digest('hex');
    if (checksum !== decoded.value.checksum) throw unusable(info.path, 'checksum mismatch');
    if (out === undefined || to === undefined) return checksum;
    await out.datasyncAsync();
    out.close();
    out = undefined;
    storage.rename(temp, to);
    return checksum;
  } finally {
    closeQuietly(from);
    if (out !== undefined) {
      closeQuietly(out);
      try {
        storage.unlink(temp);
      } catch {
        // A temp file is never read; the server's open removes it.
      }
    }
  }
}

function closeQuietly(file: StorageFile | undefined): void {
  try {
    file?.close();
  } catch {
    // Nothing written through it is lost: data was synced, or the copy is abandoned.
  }
}
