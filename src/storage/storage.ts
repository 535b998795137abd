/**
 * The file-system port: everything the engine asks of the disk.
 *
 * The engine never imports `node:fs`; it talks to a `Storage`. `NodeStorage` is the real one; tests
 * swap in an in-memory one that can crash (drop what was not synced) and fail on demand.
 *
 * Calls on the write path are synchronous on purpose: the writer loop issues one `writev` and one
 * `fdatasync` per group commit, and the synchronous calls cost ~0.2 ms where the promise API costs
 * ~0.3 ms (two thread-pool hops; see docs/benchmarks.md). Bulk reads and background preallocation
 * are asynchronous so that they do not stall the writer.
 *
 * Errors: every method throws `StorageError` (with the errno `code`, `syscall` and `path`) and
 * nothing else, so the engine can map `ENOSPC`, `EIO`, ... in one place.
 */
export interface Storage {
  /** Opens a file. `create-new` fails with `EEXIST` if the file exists. */
  open(path: string, mode: OpenMode): StorageFile;
  /** File names (not paths) in a directory. */
  list(dir: string): string[];
  /** True if a file or directory exists at `path`. */
  exists(path: string): boolean;
  /** Size in bytes of a file. */
  size(path: string): number;
  /** Creates a directory and its parents. */
  mkdirp(dir: string): void;
  /** Atomically replaces `to` with `from`. Durable only after `syncDir`. */
  rename(from: string, to: string): void;
  /** Removes a file. Durable only after `syncDir`. */
  unlink(path: string): void;
  /** Makes creates, renames and unlinks in `dir` durable. */
  syncDir(dir: string): void;
  /** Reads a whole (small) file. */
  readFile(path: string): Buffer;
  /**
   * Takes the exclusive lock of a data directory, or throws `StorageError` with code `ELOCKED`
   * (and `holder` set, when known) when another live owner holds it, in this process or another.
   * The lock dies with its process: nothing a dead process left behind can refuse it.
   */
  lock(dir: string): StorageLock;
  /** Bytes free for an unprivileged writer on the file system holding `dir`, if known. */
  freeBytes?(dir: string): number | undefined;
  /** `path` with its symbolic links resolved, for a storage that has links; throws `StorageError` when it does not exist. */
  realPath?(path: string): string;
}

/** How a file is opened. */
export type OpenMode = 'read' | 'read-write' | 'create-new';

/** An open file. Positions are absolute byte positions; no call moves a cursor. */
export interface StorageFile {
  readonly path: string;
  /** Writes all of `buffers` at `position`; returns bytes written (short on partial failure before a throw). */
  writev(buffers: readonly Uint8Array[], position: number): number;
  /** Reads into `buffer[0..length)` from `position`; returns bytes read (0 at end of file). */
  readSync(buffer: Uint8Array, length: number, position: number): number;
  /** Like `readSync`, on the thread pool. */
  read(buffer: Uint8Array, length: number, position: number): Promise<number>;
  /** Writes zeros from `position` up to `end` (for preallocation), on the thread pool. */
  fillZeros(position: number, end: number): Promise<void>;
  /** Flushes the file's data (`fdatasync`). */
  datasync(): void;
  /** `fdatasync` on the thread pool. */
  datasyncAsync(): Promise<void>;
  /** Flushes data and metadata (`fsync`). */
  sync(): void;
  truncate(length: number): void;
  size(): number;
  close(): void;
}

/** A held directory lock. */
export interface StorageLock {
  release(): void;
}

/** A failed file-system call, with the errno-style `code` (`ENOSPC`, `EIO`, `ENOENT`, ...). */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: string;
  readonly syscall: string;
  readonly path: string;
  /** For `ELOCKED`: who holds the lock. */
  readonly holder: string | undefined;

  constructor(code: string, syscall: string, path: string, options?: { cause?: unknown; holder?: string }) {
    super(`${syscall} ${path}: ${code}`, { cause: options?.cause });
    this.code = code;
    this.syscall = syscall;
    this.path = path;
    this.holder = options?.holder;
  }
}
