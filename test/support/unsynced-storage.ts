import { NodeStorage, type OpenMode, type Storage, type StorageFile, type StorageLock } from '../../src/index.js';

/**
 * The real file system with every fsync / fdatasync / directory sync skipped.
 *
 * For tests that reopen a log on real files hundreds of times (a byte-by-byte sweep) and check what
 * the next process sees: syncs change nothing a process can read, only what survives a power cut,
 * which those tests do not simulate (the in-memory crash disk does). Skipping them keeps a sweep
 * fast and its run time independent of how busy the disk is. Everything else is `NodeStorage`,
 * including the directory lock.
 */
export class UnsyncedStorage implements Storage {
  private readonly inner = new NodeStorage();

  open(path: string, mode: OpenMode): StorageFile {
    return new UnsyncedFile(this.inner.open(path, mode));
  }

  list(dir: string): string[] {
    return this.inner.list(dir);
  }

  exists(path: string): boolean {
    return this.inner.exists(path);
  }

  size(path: string): number {
    return this.inner.size(path);
  }

  mkdirp(dir: string): void {
    this.inner.mkdirp(dir);
  }

  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }

  unlink(path: string): void {
    this.inner.unlink(path);
  }

  syncDir(): void {}

  readFile(path: string): Buffer {
    return this.inner.readFile(path);
  }

  lock(dir: string): StorageLock {
    return this.inner.lock(dir);
  }
}

class UnsyncedFile implements StorageFile {
  constructor(private readonly inner: StorageFile) {}

  get path(): string {
    return this.inner.path;
  }

  writev(buffers: readonly Uint8Array[], position: number): number {
    return this.inner.writev(buffers, position);
  }

  readSync(buffer: Uint8Array, length: number, position: number): number {
    return this.inner.readSync(buffer, length, position);
  }

  read(buffer: Uint8Array, length: number, position: number): Promise<number> {
    return this.inner.read(buffer, length, position);
  }

  fillZeros(position: number, end: number): Promise<void> {
    return this.inner.fillZeros(position, end);
  }

  datasync(): void {}

  async datasyncAsync(): Promise<void> {}

  sync(): void {}

  truncate(length: number): void {
    this.inner.truncate(length);
  }

  size(): number {
    return this.inner.size();
  }

  close(): void {
    this.inner.close();
  }
}
