import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The real file system, through synchronous `node:fs` calls on the write path.
 *
 * The directory lock is a `LOCK` file created exclusively and holding `pid@host`; a lock whose
 * process is gone (a crash, `kill -9`) is taken over. Node has no `flock`, so two processes that
 * find the same stale lock at the same instant could both take it: a narrow race, documented in
 * docs/operations.md.
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

  lock(dir: string): StorageLock {
    const path = join(dir, LOCK_FILE);
    const me = `${process.pid}@${hostname()}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(path, 'wx');
        fs.writeSync(fd, me);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        this.syncDir(dir);
        return { release: () => fs.rmSync(path, { force: true }) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw translate(error, 'open', path);
      }
      const holder = fs.readFileSync(path, 'utf8').trim();
      const [pidText, host] = holder.split('@');
      const pid = Number(pidText);
      // An empty lock is a crash between creating and writing it.
      const stale = holder === '' || (host === hostname() && Number.isInteger(pid) && pid > 0 && !isAlive(pid));
      if (!stale) throw new StorageError('ELOCKED', 'lock', dir, { holder });
      fs.rmSync(path, { force: true });
    }
    throw new StorageError('ELOCKED', 'lock', dir, { holder: 'unknown' });
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
