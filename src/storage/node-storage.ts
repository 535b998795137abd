import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
// fs-native-extensions (holepunch): an fcntl open file description lock (F_OFD_SETLK) on Linux,
// flock on macOS, LockFileEx on Windows. Chosen over fs-ext because it ships prebuilt addons inside
// the package (nothing is compiled or fetched at install), is N-API (one binary for every Node
// version) and is released regularly; fs-ext compiles a nan addon with node-gyp at install time
// and has had no release in years (its "is this deprecated?" issue is open).
import { tryLock, unlock } from 'fs-native-extensions';
import { StorageError, type OpenMode, type Storage, type StorageFile, type StorageLock } from './storage.js';

const LOCK_FILE = 'LOCK';
const ZERO_CHUNK_BYTES = 1024 * 1024;
let zeroChunk: Buffer | undefined;

/** Turns a `node:fs` error into a `StorageError`; the one place errno codes enter wald. */
function translate(error: unknown, syscall: string, path: string): StorageError {
  if (error instanceof StorageError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
  return new StorageError(code, syscall, path, { cause: error });
}

function call<T>(syscall: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw translate(error, syscall, path);
  }
}

/** An open file of {@link NodeStorage}. */
class NodeFile implements StorageFile {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  writev(buffers: readonly Uint8Array[], position: number): number {
    let written = 0;
    let pending = buffers as Uint8Array[];
    // writev may write less than asked; finish the rest or surface the error it hits.
    for (;;) {
      const total = pending.reduce((sum, b) => sum + b.length, 0);
      const n = call('writev', this.path, () => fs.writevSync(this.fd, pending, position + written));
      written += n;
      if (n >= total) return written;
      if (n === 0) throw new StorageError('EIO', 'writev', this.path);
      pending = dropPrefix(pending, n);
    }
  }

  readSync(buffer: Uint8Array, length: number, position: number): number {
    return call('read', this.path, () => fs.readSync(this.fd, buffer, 0, length, position));
  }

  read(buffer: Uint8Array, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buffer, 0, length, position, (error, bytesRead) => {
        if (error) reject(translate(error, 'read', this.path));
        else resolve(bytesRead);
      });
    });
  }

  async fillZeros(position: number, end: number): Promise<void> {
    zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
    const chunk = zeroChunk;
    for (let p = position; p < end; ) {
      const n = Math.min(chunk.length, end - p);
      await new Promise<void>((resolve, reject) => {
        fs.write(this.fd, chunk, 0, n, p, (error) => (error ? reject(translate(error, 'write', this.path)) : resolve()));
      });
      p += n;
    }
  }

  datasync(): void {
    call('fdatasync', this.path, () => fs.fdatasyncSync(this.fd));
  }

  datasyncAsync(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.fd, (error) => (error ? reject(translate(error, 'fdatasync', this.path)) : resolve()));
    });
  }

  sync(): void {
    call('fsync', this.path, () => fs.fsyncSync(this.fd));
  }

  truncate(length: number): void {
    call('ftruncate', this.path, () => fs.ftruncateSync(this.fd, length));
  }

  size(): number {
    return call('fstat', this.path, () => fs.fstatSync(this.fd).size);
  }

  close(): void {
    call('close', this.path, () => fs.closeSync(this.fd));
  }
}

function dropPrefix(buffers: Uint8Array[], bytes: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = bytes;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}

const OPEN_FLAGS: Readonly<Record<OpenMode, string>> = { read: 'r', 'read-write': 'r+', 'create-new': 'wx+' };

/** Read and write, created if missing, never truncated: opening must not erase a live holder's name. */
const LOCK_OPEN_FLAGS = fs.constants.O_RDWR | fs.constants.O_CREAT;
const LOCK_INFO_MAX_BYTES = 256;

/**
 * The held lock of {@link NodeStorage.lock}: an open `LOCK` file whose fd holds the OS lock.
 * Releasing unlocks and closes it; the file stays (see `lock` for why it is never removed).
 */
class NodeLock implements StorageLock {
  private fd: number | undefined;

  constructor(
    private readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  release(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    try {
      unlock(fd);
    } finally {
      call('close', this.path, () => fs.closeSync(fd));
    }
  }
}

/** Who the `LOCK` file says holds it (its first line), or undefined when it says nothing. */
function readHolder(fd: number): string | undefined {
  try {
    const buffer = Buffer.alloc(LOCK_INFO_MAX_BYTES);
    const n = fs.readSync(fd, buffer, 0, buffer.length, 0);
    const holder = buffer.toString('utf8', 0, n).split('\n')[0]!.trim();
    return holder === '' ? undefined : holder;
  } catch {
    return undefined;
  }
}

/**
 * The real file system, through synchronous `node:fs` calls on the write path.
 *
 * The directory lock is an OS advisory lock on an open fd of `<dir>/LOCK`, held for as long as the
 * lock is: the kernel drops it when the process dies, however it dies, so no dead process can hold
 * a directory. The file's text (`pid@host`) only names the holder in the error of a refused lock.
 */
export class NodeStorage implements Storage {
  open(path: string, mode: OpenMode): StorageFile {
    const fd = call('open', path, () => fs.openSync(path, OPEN_FLAGS[mode]));
    return new NodeFile(path, fd);
  }

  list(dir: string): string[] {
    return call('readdir', dir, () => fs.readdirSync(dir));
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  size(path: string): number {
    return call('stat', path, () => fs.statSync(path).size);
  }

  mkdirp(dir: string): void {
    call('mkdir', dir, () => fs.mkdirSync(dir, { recursive: true }));
  }

  rename(from: string, to: string): void {
    call('rename', from, () => fs.renameSync(from, to));
  }

  unlink(path: string): void {
    call('unlink', path, () => fs.unlinkSync(path));
  }

  syncDir(dir: string): void {
    const fd = call('open', dir, () => fs.openSync(dir, 'r'));
    try {
      call('fsync', dir, () => fs.fsyncSync(fd));
    } finally {
      fs.closeSync(fd);
    }
  }

  readFile(path: string): Buffer {
    return call('read', path, () => fs.readFileSync(path));
  }

  /**
   * Takes the lock of `dir`, or throws `StorageError` `ELOCKED` naming the holder that the `LOCK`
   * file names (undefined when it names none).
   *
   * Whatever a `LOCK` file says, it is taken over when no live process holds its OS lock: a dead
   * holder's pid may be alive again after a container restart (as pid 1, or as this process), and
   * the host name may have changed. The lock is per open file description, so a second lock of the
   * same directory in this process is refused too. The file is never removed: a process that
   * opened it just before the removal would lock the removed file while a third one creates and
   * locks a new one, and both would hold the directory.
   */
  lock(dir: string): StorageLock {
    const path = join(dir, LOCK_FILE);
    const fd = call('open', path, () => fs.openSync(path, LOCK_OPEN_FLAGS, 0o644));
    let locked: boolean;
    try {
      locked = tryLock(fd);
    } catch (error) {
      fs.closeSync(fd);
      throw translate(error, 'lock', path);
    }
    if (!locked) {
      const holder = readHolder(fd);
      fs.closeSync(fd);
      throw new StorageError('ELOCKED', 'lock', dir, { holder });
    }
    const lock = new NodeLock(path, fd);
    try {
      const info = Buffer.from(`${process.pid}@${hostname()}\nlocked at ${new Date().toISOString()}\n`);
      fs.writeSync(fd, info, 0, info.length, 0);
      fs.ftruncateSync(fd, info.length);
    } catch {
      // Information only, so neither synced nor required: the OS lock decides who holds the
      // directory, and a full disk must not keep the log from opening for reads.
    }
    return lock;
  }

  realPath(path: string): string {
    try {
      return fs.realpathSync(path);
    } catch (error) {
      throw translate(error, 'realpath', path);
    }
  }

  freeBytes(dir: string): number | undefined {
    try {
      const s = fs.statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }
}
