import { basename, dirname } from 'node:path';
import { StorageError, type OpenMode, type Storage, type StorageFile, type StorageLock } from '../../src/storage/storage.js';

/** A file's bytes: what the process sees, and what would survive a power cut. */
class Inode {
  data: Buffer = Buffer.alloc(0);
  durable: Buffer = Buffer.alloc(0);
}

interface Directory {
  entries: Map<string, Inode>;
  durable: Map<string, Inode>;
}

/** Which operation a fault or a crash point applies to. */
export type DiskOp = 'create' | 'writev' | 'fillZeros' | 'datasync' | 'sync' | 'truncate' | 'rename' | 'unlink' | 'syncDir' | 'read';

/** A fault to inject: the next matching operation fails with `code` (once, or `times` times). */
export interface DiskFault {
  readonly op: DiskOp;
  readonly code: string;
  readonly path?: RegExp | undefined;
  /** Let this many matching operations pass first. */
  readonly after?: number | undefined;
  readonly times?: number | undefined;
}

/**
 * What survives of the bytes a file was given since its last sync, at a crash:
 * - nothing (the default);
 * - `(size) => n`: the first `n` bytes of the process's view (writes reaching the disk in order);
 * - `{ randomPages }`: every 4 KiB page that differs from the synced bytes independently, and the
 *   file's length as the process saw it or as synced, each kept when `randomPages(path)` < 0.5
 *   (`path`: the file's name after the crash)
 *   (writeback in any order, as a real page cache does).
 */
export type UnsyncedSurvival = ((size: number) => number) | { readonly randomPages: (path: string) => number };

/** Page size of the out-of-order survival model. */
export const PAGE_BYTES = 4096;

/** Thrown by the operation at which a scheduled crash happens. */
export class CrashError extends Error {
  override readonly name = 'CrashError';
}

/**
 * An in-memory disk for fault tests: it remembers what was synced, so `crash()` can drop everything
 * else (file contents since their last `fdatasync`, directory entries since their last directory
 * fsync), and it can fail any operation on demand or crash at the N-th mutating operation.
 *
 * A process "mounts" the disk to get a `Storage`; after a crash, the old mount's handles and calls
 * fail with `EIO`, as a dead process would stop touching the disk.
 */
export class MemDisk {
  private readonly dirs = new Map<string, Directory>();
  private readonly locks = new Set<string>();
  private generation = 0;
  private faults: { fault: DiskFault; seen: number; fired: number }[] = [];
  private crashAtOp: number | undefined;
  private crashKeep: UnsyncedSurvival | undefined;
  private crashMatch: { op: DiskOp; path: RegExp; kill: boolean } | undefined;
  /** Power cuts so far: a workload checks it to stop where a crashed process would have stopped. */
  crashes = 0;
  /** Mutating operations so far, across mounts. */
  ops = 0;
  /** Total bytes all files may hold; writes beyond fail with ENOSPC. */
  capacityBytes = Number.POSITIVE_INFINITY;
  /** Files opened and not yet closed, across mounts (for assertions). */
  openFiles = 0;

  /** A `Storage` for one process lifetime. */
  mount(): Storage {
    return new MemStorage(this, this.generation);
  }

  private syncWaiters: { path: RegExp; resolve: () => void }[] = [];

  /** Resolves once a file whose path matches `path` is next synced (`fdatasync` or `fsync`). */
  whenSynced(path: RegExp): Promise<void> {
    return new Promise((resolve) => this.syncWaiters.push({ path, resolve }));
  }

  /** @internal A file was synced. */
  synced(path: string): void {
    const waiting = this.syncWaiters;
    this.syncWaiters = waiting.filter((w) => !w.path.test(path));
    for (const w of waiting) if (w.path.test(path)) w.resolve();
  }

  /** Schedules a fault. */
  inject(fault: DiskFault): void {
    this.faults.push({ fault, seen: 0, fired: 0 });
  }

  /** Removes every scheduled fault. */
  clearFaults(): void {
    this.faults = [];
  }

  /** Crash at the next `op` on a path matching `path`, keeping unsynced prefixes as `crashAt` does. */
  crashWhen(op: DiskOp, path: RegExp, keepUnsyncedPrefix?: UnsyncedSurvival): void {
    this.crashMatch = { op, path, kill: false };
    this.crashKeep = keepUnsyncedPrefix;
  }

  /** The process dies (as {@link kill}) when the next `op` on a path matching `path` begins. */
  killWhen(op: DiskOp, path: RegExp): void {
    this.crashMatch = { op, path, kill: true };
  }

  /**
   * Crash when the mutating operation number `op` (1-based, counting from now) begins, keeping a
   * prefix of unsynced bytes as `crash()` does when `keepUnsyncedPrefix` is given.
   */
  crashAt(op: number, keepUnsyncedPrefix?: UnsyncedSurvival): void {
    this.crashAtOp = this.ops + op;
    this.crashKeep = keepUnsyncedPrefix;
  }

  /**
   * Simulates a power cut: every file goes back to its synced bytes, every directory to its synced
   * entries, locks die with the process. `survival` says which unsynced bytes reach the disk anyway
   * (see {@link UnsyncedSurvival}).
   */
  crash(survival?: UnsyncedSurvival): void {
    this.kill();
    this.crashes++;
    const inodes = new Map<Inode, string>();
    for (const [path, dir] of this.dirs) {
      dir.entries = new Map(dir.durable);
      for (const [name, inode] of dir.entries) if (!inodes.has(inode)) inodes.set(inode, `${path}/${name}`);
    }
    for (const [inode, path] of inodes) {
      inode.data = survivingBytes(inode, path, survival);
      inode.durable = Buffer.from(inode.data);
    }
  }

  /**
   * The process dies but the machine does not (`kill -9`): its handles stop working and its locks
   * are released, while everything it wrote stays, synced or not, as in the page cache.
   */
  kill(): void {
    this.generation++;
    this.crashAtOp = undefined;
    this.crashKeep = undefined;
    this.crashMatch = undefined;
    this.locks.clear();
  }

  /** Bytes held by all files. */
  usedBytes(): number {
    let used = 0;
    const seen = new Set<Inode>();
    for (const dir of this.dirs.values()) {
      for (const inode of dir.entries.values()) {
        if (seen.has(inode)) continue;
        seen.add(inode);
        used += inode.data.length;
      }
    }
    return used;
  }

  /** The bytes a file holds now (for assertions). */
  fileBytes(path: string): Buffer | undefined {
    return this.dirs.get(dirname(path))?.entries.get(basename(path))?.data;
  }

  /** @internal Runs the fault and crash checks for a mutating operation. */
  before(generation: number, op: DiskOp, path: string): void {
    this.checkAlive(generation, op, path);
    this.ops++;
    const matched = this.crashMatch !== undefined && this.crashMatch.op === op && this.crashMatch.path.test(path);
    if (matched && this.crashMatch?.kill === true) {
      this.kill();
      throw new CrashError(`killed at operation ${op} ${path}`);
    }
    if (matched || (this.crashAtOp !== undefined && this.ops >= this.crashAtOp)) {
      this.crash(this.crashKeep);
      throw new CrashError(`crash at operation ${op} ${path}`);
    }
    for (const f of this.faults) {
      if (f.fault.op !== op || (f.fault.path !== undefined && !f.fault.path.test(path))) continue;
      f.seen++;
      if (f.seen <= (f.fault.after ?? 0) || f.fired >= (f.fault.times ?? 1)) continue;
      f.fired++;
      throw new StorageError(f.fault.code, op, path);
    }
  }

  /** @internal */
  checkAlive(generation: number, op: string, path: string): void {
    if (generation !== this.generation) throw new StorageError('EIO', op, path);
  }

  /** @internal Read faults: reads are not counted as operations (they change nothing). */
  beforeRead(generation: number, path: string): void {
    this.checkAlive(generation, 'read', path);
    for (const f of this.faults) {
      if (f.fault.op !== 'read' || (f.fault.path !== undefined && !f.fault.path.test(path))) continue;
      f.seen++;
      if (f.seen <= (f.fault.after ?? 0) || f.fired >= (f.fault.times ?? 1)) continue;
      f.fired++;
      throw new StorageError(f.fault.code, 'read', path);
    }
  }

  /** @internal */
  dir(path: string): Directory {
    let dir = this.dirs.get(path);
    if (dir === undefined) {
      dir = { entries: new Map(), durable: new Map() };
      this.dirs.set(path, dir);
    }
    return dir;
  }

  /** @internal */
  hasDir(path: string): boolean {
    return this.dirs.has(path);
  }

  /** @internal */
  lock(generation: number, dir: string): StorageLock {
    this.checkAlive(generation, 'lock', dir);
    if (this.locks.has(dir)) throw new StorageError('ELOCKED', 'lock', dir, { holder: 'another mount' });
    this.locks.add(dir);
    return { release: () => (generation === this.generation ? this.locks.delete(dir) : undefined) };
  }
}

function survivingBytes(inode: Inode, path: string, survival: UnsyncedSurvival | undefined): Buffer {
  if (survival === undefined) return Buffer.from(inode.durable);
  if (typeof survival === 'function') {
    const keep = Math.min(survival(inode.data.length), inode.data.length);
    const survived = Buffer.alloc(Math.max(keep, inode.durable.length));
    inode.durable.copy(survived);
    inode.data.copy(survived, 0, 0, keep);
    return survived;
  }
  const length = survival.randomPages(path) < 0.5 ? inode.data.length : inode.durable.length;
  const survived = Buffer.alloc(length);
  inode.durable.copy(survived, 0, 0, Math.min(length, inode.durable.length));
  for (let page = 0; page < length; page += PAGE_BYTES) {
    const end = Math.min(page + PAGE_BYTES, length);
    const live = inode.data.subarray(page, Math.min(end, inode.data.length));
    const synced = inode.durable.subarray(page, Math.min(end, inode.durable.length));
    if (live.equals(synced)) continue;
    if (survival.randomPages(path) < 0.5) {
      survived.fill(0, page, end);
      live.copy(survived, page);
    }
  }
  return survived;
}

/**
 * An open file of a {@link MemStorage}. Once closed, every call fails with `EBADF`, as a real
 * closed fd would (or worse: a reused fd number would reach another file), so that a file closed
 * under a read in flight shows up in tests.
 */
class MemFile implements StorageFile {
  private isClosed = false;

  constructor(
    private readonly disk: MemDisk,
    private readonly generation: number,
    private readonly openedAs: string,
    private readonly inode: Inode,
  ) {
    disk.openFiles++;
  }

  /** The file's current name (it follows renames, so faults can target the final name). */
  get path(): string {
    const dir = dirname(this.openedAs);
    for (const [name, inode] of this.disk.dir(dir).entries) if (inode === this.inode) return `${dir}/${name}`;
    return this.openedAs;
  }

  private checkOpen(op: string): void {
    if (this.isClosed) throw new StorageError('EBADF', op, this.openedAs);
  }

  writev(buffers: readonly Uint8Array[], position: number): number {
    this.checkOpen('writev');
    this.disk.before(this.generation, 'writev', this.path);
    let p = position;
    for (const b of buffers) {
      const room = this.disk.capacityBytes - this.disk.usedBytes() + this.inode.data.length;
      if (p + b.length > room) {
        // Like a real disk: write what fits, then fail.
        const fits = Math.max(0, room - p);
        this.put(b.subarray(0, fits), p);
        throw new StorageError('ENOSPC', 'writev', this.path);
      }
      this.put(b, p);
      p += b.length;
    }
    return p - position;
  }

  private put(bytes: Uint8Array, position: number): void {
    const end = position + bytes.length;
    if (end > this.inode.data.length) {
      const grown = Buffer.alloc(end);
      this.inode.data.copy(grown);
      this.inode.data = grown;
    }
    this.inode.data.set(bytes, position);
  }

  readSync(buffer: Uint8Array, length: number, position: number): number {
    this.checkOpen('read');
    this.disk.beforeRead(this.generation, this.path);
    const n = Math.max(0, Math.min(length, this.inode.data.length - position));
    buffer.set(this.inode.data.subarray(position, position + n), 0);
    return n;
  }

  read(buffer: Uint8Array, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.checkOpen('read');
      // In flight until the next turn: a close meanwhile makes the read fail (readSync checks).
      setImmediate(() => {
        try {
          resolve(this.readSync(buffer, length, position));
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  async fillZeros(position: number, end: number): Promise<void> {
    this.checkOpen('write');
    await new Promise((resolve) => setImmediate(resolve));
    this.checkOpen('write');
    this.disk.before(this.generation, 'fillZeros', this.path);
    this.put(Buffer.alloc(0), end);
    if (end > this.inode.data.length) this.put(Buffer.alloc(end - position), position);
    else this.inode.data.fill(0, position, end);
    if (this.disk.usedBytes() > this.disk.capacityBytes) {
      this.inode.data = this.inode.data.subarray(0, position);
      throw new StorageError('ENOSPC', 'fillZeros', this.path);
    }
  }

  datasync(): void {
    this.checkOpen('fdatasync');
    this.disk.before(this.generation, 'datasync', this.path);
    this.inode.durable = Buffer.from(this.inode.data);
    this.disk.synced(this.path);
  }

  async datasyncAsync(): Promise<void> {
    this.checkOpen('fdatasync');
    await new Promise((resolve) => setImmediate(resolve));
    this.datasync();
  }

  sync(): void {
    this.checkOpen('fsync');
    this.disk.before(this.generation, 'sync', this.path);
    this.inode.durable = Buffer.from(this.inode.data);
    this.disk.synced(this.path);
  }

  truncate(length: number): void {
    this.checkOpen('ftruncate');
    this.disk.before(this.generation, 'truncate', this.path);
    if (length <= this.inode.data.length) this.inode.data = Buffer.from(this.inode.data.subarray(0, length));
    else this.put(Buffer.alloc(0), length);
  }

  size(): number {
    this.checkOpen('fstat');
    this.disk.checkAlive(this.generation, 'fstat', this.path);
    return this.inode.data.length;
  }

  close(): void {
    this.checkOpen('close');
    this.isClosed = true;
    this.disk.openFiles--;
  }
}

/** One process's view of a {@link MemDisk}. */
class MemStorage implements Storage {
  constructor(
    private readonly disk: MemDisk,
    private readonly generation: number,
  ) {}

  private entry(path: string): Inode | undefined {
    return this.disk.hasDir(dirname(path)) ? this.disk.dir(dirname(path)).entries.get(basename(path)) : undefined;
  }

  open(path: string, mode: OpenMode): StorageFile {
    const existing = this.entry(path);
    if (mode === 'create-new') {
      if (existing !== undefined) throw new StorageError('EEXIST', 'open', path);
      if (!this.disk.hasDir(dirname(path))) throw new StorageError('ENOENT', 'open', path);
      this.disk.before(this.generation, 'create', path);
      const inode = new Inode();
      this.disk.dir(dirname(path)).entries.set(basename(path), inode);
      return new MemFile(this.disk, this.generation, path, inode);
    }
    this.disk.checkAlive(this.generation, 'open', path);
    if (existing === undefined) throw new StorageError('ENOENT', 'open', path);
    return new MemFile(this.disk, this.generation, path, existing);
  }

  list(dir: string): string[] {
    this.disk.checkAlive(this.generation, 'readdir', dir);
    if (!this.disk.hasDir(dir)) throw new StorageError('ENOENT', 'readdir', dir);
    return [...this.disk.dir(dir).entries.keys()];
  }

  exists(path: string): boolean {
    this.disk.checkAlive(this.generation, 'stat', path);
    return this.disk.hasDir(path) || this.entry(path) !== undefined;
  }

  size(path: string): number {
    const inode = this.entry(path);
    if (inode === undefined) throw new StorageError('ENOENT', 'stat', path);
    return inode.data.length;
  }

  mkdirp(dir: string): void {
    this.disk.checkAlive(this.generation, 'mkdir', dir);
    this.disk.dir(dir);
  }

  rename(from: string, to: string): void {
    this.disk.before(this.generation, 'rename', from);
    const inode = this.entry(from);
    if (inode === undefined) throw new StorageError('ENOENT', 'rename', from);
    this.disk.dir(dirname(from)).entries.delete(basename(from));
    this.disk.dir(dirname(to)).entries.set(basename(to), inode);
  }

  unlink(path: string): void {
    this.disk.before(this.generation, 'unlink', path);
    if (!this.disk.dir(dirname(path)).entries.delete(basename(path))) throw new StorageError('ENOENT', 'unlink', path);
  }

  syncDir(dir: string): void {
    this.disk.before(this.generation, 'syncDir', dir);
    const d = this.disk.dir(dir);
    d.durable = new Map(d.entries);
  }

  readFile(path: string): Buffer {
    this.disk.checkAlive(this.generation, 'read', path);
    const inode = this.entry(path);
    if (inode === undefined) throw new StorageError('ENOENT', 'read', path);
    return Buffer.from(inode.data);
  }

  lock(dir: string): StorageLock {
    return this.disk.lock(this.generation, dir);
  }
}
