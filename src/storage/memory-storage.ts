import { resolve as resolvePath, sep } from 'node:path';
import { MemoryBudget } from './memory-budget.js';
import { MemoryInode } from './memory-inode.js';
import { StorageError, type OpenMode, type Storage, type StorageFile, type StorageLock } from './storage.js';

/** A directory of {@link MemoryStorage}: its entries by name. */
interface MemoryDirectory {
  readonly kind: 'directory';
  readonly entries: Map<string, MemoryDirectory | MemoryFileEntry>;
}

/** A directory's entry for a file. */
interface MemoryFileEntry {
  readonly kind: 'file';
  readonly inode: MemoryInode;
}

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /**
   * Most bytes all files together may hold (bytes written; preallocated zeros take none); a write
   * past it fails with `ENOSPC` and `freeBytes` reports what is left. Default: no cap.
   */
  readonly maxBytes?: number | undefined;
}

/** What a {@link MemoryStorage} holds and has done, for stats and tests. */
export interface MemoryStorageStats {
  /** Bytes the files hold (see {@link MemoryStorageOptions.maxBytes}). */
  readonly usedBytes: number;
  /** The cap, or undefined without one. */
  readonly maxBytes: number | undefined;
  /** `datasync`, `sync` and `syncDir` calls so far: no-ops here, counted so that they can be seen. */
  readonly syncCalls: number;
  /** Files open now. */
  readonly openFiles: number;
}

/** What {@link MemoryStorage.lock} names as the holder of a refused lock. */
const LOCK_HOLDER = `this process (pid ${process.pid}, memory storage)`;

/**
 * The storage port in memory: files are growable byte buffers in a tree of directories, nothing is
 * written to disk, and everything is gone when the object is (at the process's exit at the latest).
 * For `Wal.open({ storage: 'memory' })` and `wald serve --storage memory`: tests of applications,
 * caches.
 *
 * It behaves as `NodeStorage` does where the engine can tell: renames are atomic and replace their
 * target, an unlinked file stays readable through the handles open on it, preallocation is sparse
 * (see {@link MemoryInode}), and failures are `StorageError`s with the codes `node:fs` gives
 * (`ENOENT`, `EEXIST`, `ENOTDIR`, `EISDIR`, `ENOTEMPTY`, `EINVAL`, `EBADF`, `ENOSPC` past
 * {@link MemoryStorageOptions.maxBytes}). Syncs do nothing (there is no later medium to reach),
 * and are counted. The asynchronous calls complete on a later turn of the event loop, as on disk. A directory lock is held in this object: a second lock of the same directory
 * fails with `ELOCKED` until the first is released; separate instances share nothing. Paths are
 * resolved against the working directory, so `./data` and its absolute form name one directory.
 */
export class MemoryStorage implements Storage {
  private readonly root: MemoryDirectory = { kind: 'directory', entries: new Map() };
  private readonly budget: MemoryBudget;
  private readonly locks = new Set<string>();
  private syncCalls = 0;
  private openFiles = 0;

  /** @throws RangeError when `options.maxBytes` is not a non-negative integer. */
  constructor(options: MemoryStorageOptions = {}) {
    const { maxBytes } = options;
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
      throw new RangeError(`options.maxBytes must be a non-negative integer, got ${String(maxBytes)}`);
    }
    this.budget = new MemoryBudget(maxBytes ?? Number.POSITIVE_INFINITY);
  }

  /** What the storage holds now and the syncs it was asked for. */
  stats(): MemoryStorageStats {
    const { maxBytes, usedBytes } = this.budget;
    return { usedBytes, maxBytes: Number.isFinite(maxBytes) ? maxBytes : undefined, syncCalls: this.syncCalls, openFiles: this.openFiles };
  }

  open(path: string, mode: OpenMode): StorageFile {
    const { parent, name } = this.parentOf(path, 'open');
    const entry = parent.entries.get(name);
    if (entry?.kind === 'directory') throw new StorageError('EISDIR', 'open', path);
    if (mode === 'create-new') {
      if (entry !== undefined) throw new StorageError('EEXIST', 'open', path);
      const inode = new MemoryInode(this.budget);
      parent.entries.set(name, { kind: 'file', inode });
      return this.handle(path, inode, true);
    }
    if (entry === undefined) throw new StorageError('ENOENT', 'open', path);
    return this.handle(path, entry.inode, mode === 'read-write');
  }

  list(dir: string): string[] {
    return [...this.directory(dir, 'readdir').entries.keys()];
  }

  exists(path: string): boolean {
    try {
      return this.lookup(path, 'stat') !== undefined;
    } catch {
      return false;
    }
  }

  size(path: string): number {
    const entry = this.lookup(path, 'stat');
    if (entry === undefined) throw new StorageError('ENOENT', 'stat', path);
    return entry.kind === 'file' ? entry.inode.length : 0;
  }

  mkdirp(dir: string): void {
    let current = this.root;
    for (const name of components(dir)) {
      const entry = current.entries.get(name);
      if (entry?.kind === 'file') throw new StorageError(name === components(dir).at(-1) ? 'EEXIST' : 'ENOTDIR', 'mkdir', dir);
      if (entry === undefined) {
        const created: MemoryDirectory = { kind: 'directory', entries: new Map() };
        current.entries.set(name, created);
        current = created;
      } else {
        current = entry;
      }
    }
  }

  rename(from: string, to: string): void {
    const source = this.parentOf(from, 'rename');
    const entry = source.parent.entries.get(source.name);
    if (entry === undefined) throw new StorageError('ENOENT', 'rename', from);
    const target = this.parentOf(to, 'rename');
    const replaced = target.parent.entries.get(target.name);
    if (replaced === entry) return;
    if (entry.kind === 'directory') {
      if (isInside(resolvePath(to), resolvePath(from))) throw new StorageError('EINVAL', 'rename', from);
      if (replaced?.kind === 'file') throw new StorageError('ENOTDIR', 'rename', from);
      if (replaced !== undefined && replaced.entries.size > 0) throw new StorageError('ENOTEMPTY', 'rename', from);
    } else if (replaced?.kind === 'directory') {
      throw new StorageError('EISDIR', 'rename', from);
    }
    source.parent.entries.delete(source.name);
    target.parent.entries.set(target.name, entry);
    if (replaced?.kind === 'file') this.unlinked(replaced.inode);
  }

  unlink(path: string): void {
    const { parent, name } = this.parentOf(path, 'unlink');
    const entry = parent.entries.get(name);
    if (entry === undefined) throw new StorageError('ENOENT', 'unlink', path);
    if (entry.kind === 'directory') throw new StorageError('EISDIR', 'unlink', path);
    parent.entries.delete(name);
    this.unlinked(entry.inode);
  }

  syncDir(dir: string): void {
    if (this.lookup(dir, 'open') === undefined) throw new StorageError('ENOENT', 'open', dir);
    this.syncCalls++;
  }

  readFile(path: string): Buffer {
    const entry = this.lookup(path, 'open');
    if (entry === undefined) throw new StorageError('ENOENT', 'open', path);
    if (entry.kind === 'directory') throw new StorageError('EISDIR', 'read', path);
    return entry.inode.contents();
  }

  /** Takes the lock of `dir` in this storage; `ELOCKED` while it is held, `ENOENT` when `dir` does not exist. */
  lock(dir: string): StorageLock {
    this.directory(dir, 'lock');
    const key = resolvePath(dir);
    if (this.locks.has(key)) throw new StorageError('ELOCKED', 'lock', dir, { holder: LOCK_HOLDER });
    this.locks.add(key);
    let isHeld = true;
    return {
      release: () => {
        if (!isHeld) return;
        isHeld = false;
        this.locks.delete(key);
      },
    };
  }

  /** What is left under the cap; undefined without one (as for a file system that cannot tell). */
  freeBytes(dir: string): number | undefined {
    void dir;
    return Number.isFinite(this.budget.maxBytes) ? this.budget.availableBytes : undefined;
  }

  private handle(path: string, inode: MemoryInode, isWritable: boolean): StorageFile {
    this.openFiles++;
    inode.openHandles++;
    return new MemoryFile(path, inode, isWritable, {
      synced: () => {
        this.syncCalls++;
      },
      closed: () => {
        this.openFiles--;
        inode.openHandles--;
        if (!inode.isLinked && inode.openHandles === 0) inode.release();
      },
    });
  }

  private unlinked(inode: MemoryInode): void {
    inode.isLinked = false;
    if (inode.openHandles === 0) inode.release();
  }

  /** The entry at `path`, undefined when there is none; `ENOTDIR` when a parent is a file. */
  private lookup(path: string, syscall: string): MemoryDirectory | MemoryFileEntry | undefined {
    let current: MemoryDirectory | MemoryFileEntry = this.root;
    for (const name of components(path)) {
      if (current.kind === 'file') throw new StorageError('ENOTDIR', syscall, path);
      const next: MemoryDirectory | MemoryFileEntry | undefined = current.entries.get(name);
      if (next === undefined) return undefined;
      current = next;
    }
    return current;
  }

  private directory(dir: string, syscall: string): MemoryDirectory {
    const entry = this.lookup(dir, syscall);
    if (entry === undefined) throw new StorageError('ENOENT', syscall, dir);
    if (entry.kind === 'file') throw new StorageError('ENOTDIR', syscall, dir);
    return entry;
  }

  /** The directory that holds (or would hold) `path`, and the name in it; `ENOENT` when it does not exist. */
  private parentOf(path: string, syscall: string): { parent: MemoryDirectory; name: string } {
    const names = components(path);
    const name = names.pop();
    if (name === undefined) throw new StorageError('EISDIR', syscall, path);
    let current = this.root;
    for (const part of names) {
      const next = current.entries.get(part);
      if (next === undefined) throw new StorageError('ENOENT', syscall, path);
      if (next.kind === 'file') throw new StorageError('ENOTDIR', syscall, path);
      current = next;
    }
    return { parent: current, name };
  }
}

/** The names along `path`, resolved against the working directory. */
function components(path: string): string[] {
  return resolvePath(path).split(sep).filter((name) => name !== '');
}

/**
 * Runs `work` on a later turn of the event loop, as `node:fs` runs an asynchronous call on its
 * thread pool: the caller goes on first, so code awaiting a read, a preallocation or an
 * asynchronous sync is scheduled as it is on disk (a file closed meanwhile fails the call).
 */
function later<T>(work: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(work());
      } catch (error) {
        reject(error);
      }
    });
  });
}

function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + sep);
}

/**
 * An open file of a {@link MemoryStorage}. Once closed, every call fails with `EBADF` (as a closed
 * fd would); a file opened for `read` refuses writes with `EBADF` too.
 */
class MemoryFile implements StorageFile {
  private isClosed = false;

  constructor(
    readonly path: string,
    private readonly inode: MemoryInode,
    private readonly isWritable: boolean,
    private readonly events: { readonly synced: () => void; readonly closed: () => void },
  ) {}

  writev(buffers: readonly Uint8Array[], position: number): number {
    this.checkWritable('writev');
    let written = 0;
    for (const buffer of buffers) {
      const n = this.inode.write(buffer, position + written);
      written += n;
      // Like a full disk: what fits is written, then the call fails.
      if (n < buffer.length) throw new StorageError('ENOSPC', 'writev', this.path);
    }
    return written;
  }

  readSync(buffer: Uint8Array, length: number, position: number): number {
    this.checkOpen('read');
    return this.inode.read(buffer, length, position);
  }

  read(buffer: Uint8Array, length: number, position: number): Promise<number> {
    return later(() => this.readSync(buffer, length, position));
  }

  fillZeros(position: number, end: number): Promise<void> {
    return later(() => {
      this.checkWritable('write');
      this.inode.fillZeros(position, end);
    });
  }

  datasync(): void {
    this.checkOpen('fdatasync');
    this.events.synced();
  }

  datasyncAsync(): Promise<void> {
    return later(() => this.datasync());
  }

  sync(): void {
    this.checkOpen('fsync');
    this.events.synced();
  }

  truncate(length: number): void {
    this.checkWritable('ftruncate');
    if (!(Number.isSafeInteger(length) && length >= 0)) throw new StorageError('EINVAL', 'ftruncate', this.path);
    this.inode.truncate(length);
  }

  size(): number {
    this.checkOpen('fstat');
    return this.inode.length;
  }

  close(): void {
    this.checkOpen('close');
    this.isClosed = true;
    this.events.closed();
  }

  private checkOpen(syscall: string): void {
    if (this.isClosed) throw new StorageError('EBADF', syscall, this.path);
  }

  private checkWritable(syscall: string): void {
    this.checkOpen(syscall);
    if (!this.isWritable) throw new StorageError('EBADF', syscall, this.path);
  }
}
