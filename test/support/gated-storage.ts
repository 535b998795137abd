import type { Storage, StorageFile } from '../../src/storage/storage.js';

/** A storage whose next read (or `datasyncAsync`) of a file matching a pattern waits until the test opens the gate. */
export class GatedStorage implements Storage {
  private pattern: RegExp | undefined;
  private op: 'read' | 'datasyncAsync' = 'read';
  private release: (() => void) | undefined;
  private readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  private holding: (() => void) | undefined;
  /** Resolves once a call is held at the gate. */
  readonly held = new Promise<void>((resolve) => (this.holding = resolve));

  constructor(private readonly inner: Storage) {}

  /** Holds the next `op` on a file whose name (now) matches `pattern`, once. */
  arm(pattern: RegExp, op: 'read' | 'datasyncAsync' = 'read'): void {
    this.pattern = pattern;
    this.op = op;
  }

  /** Holds the call if it is the one armed for. */
  private async pass(op: 'read' | 'datasyncAsync', path: string): Promise<void> {
    if (this.op !== op || this.pattern?.test(path) !== true) return;
    this.pattern = undefined;
    this.holding?.();
    await this.opened;
  }

  open(path: string, mode: Parameters<Storage['open']>[1]): StorageFile {
    const file = this.inner.open(path, mode);
    const gate = this;
    return {
      path: file.path,
      writev: (buffers, position) => file.writev(buffers, position),
      readSync: (buffer, length, position) => file.readSync(buffer, length, position),
      // The file's name now: a segment is written under a temp name, then renamed.
      read: async (buffer, length, position) => {
        await gate.pass('read', file.path);
        return file.read(buffer, length, position);
      },
      fillZeros: (position, end) => file.fillZeros(position, end),
      datasync: () => file.datasync(),
      datasyncAsync: async () => {
        await gate.pass('datasyncAsync', file.path);
        return file.datasyncAsync();
      },
      sync: () => file.sync(),
      truncate: (length) => file.truncate(length),
      size: () => file.size(),
      close: () => file.close(),
    };
  }

  /** Lets the held read go on. */
  openGate(): void {
    this.release?.();
  }

  list = (dir: string): string[] => this.inner.list(dir);
  exists = (path: string): boolean => this.inner.exists(path);
  size = (path: string): number => this.inner.size(path);
  mkdirp = (dir: string): void => this.inner.mkdirp(dir);
  rename = (from: string, to: string): void => this.inner.rename(from, to);
  unlink = (path: string): void => this.inner.unlink(path);
  syncDir = (dir: string): void => this.inner.syncDir(dir);
  readFile = (path: string): Buffer => this.inner.readFile(path);
  lock = (dir: string): ReturnType<Storage['lock']> => this.inner.lock(dir);
}
