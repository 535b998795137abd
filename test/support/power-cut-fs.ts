/**
 * A real file system that can lose what was never synced, as a power cut does: mounts
 * `test/support/fuse/unsynced_fs.py` (read its header for the model and the control protocol) over
 * a fresh backing directory, sends it commands, and unmounts it.
 *
 * Needs /usr/bin/python3 with Debian's python3-fusepy, fuse3 (`fusermount3`) and /dev/fuse, and
 * runs as root (CI does). Missing any of these fails the mount with the packages to install: a
 * power-cut test that silently does not run checks nothing.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DAEMON = join(REPO_ROOT, 'test/support/fuse/unsynced_fs.py');
/** Debian's interpreter: a pyenv `python3` earlier on PATH does not see Debian's modules. */
const PYTHON = '/usr/bin/python3';
const INSTALL_HINT = 'apt-get install -y python3-fusepy fuse3';
/** The daemon's exit code when it cannot import fusepy. */
const NO_FUSEPY_EXIT_CODE = 3;
/** Guards against a hung mount or unmount; neither takes more than a fraction of a second. */
const MOUNT_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;
/** The daemon's stderr kept for error messages. */
const MAX_STDERR_CHARS = 16_384;

/** What a cut did. */
export interface CutReport {
  /** Files the durable state holds, all rewritten. */
  readonly files: number;
  /** Unsynced pages (live bytes differing from durable ones) that reached the disk anyway: only with keep-pages. */
  readonly livePages: number;
  /** Unsynced pages that were lost: every one without keep-pages. */
  readonly durablePages: number;
}

/** The daemon's counters since it mounted. */
export interface PowerCutStats {
  readonly fsync: number;
  readonly fdatasync: number;
  readonly fsyncdir: number;
  readonly failedFsyncs: number;
  readonly writes: number;
  readonly cuts: number;
  readonly pendingFsyncFailures: number;
}

/** Options of {@link PowerCutFs.cut}. */
export interface CutOptions {
  /** Keep a random part of the unsynced pages (writeback in any order), drawn from this seed. */
  readonly keepPagesSeed?: number | undefined;
}

/** A mounted power-cut file system; {@link PowerCutFs.unmount} removes it and its temp dirs. */
export class PowerCutFs {
  private stderr = '';
  private isUnmounted = false;

  private constructor(
    /** Where the log lives: the mount. */
    readonly mountDir: string,
    /** The directory the mount passes through to. */
    readonly backingDir: string,
    private readonly root: string,
    private readonly socketPath: string,
    private readonly daemon: ChildProcess,
    private readonly exited: Promise<unknown>,
  ) {
    daemon.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-MAX_STDERR_CHARS);
    });
  }

  /** Mounts a fresh, empty file system in a new temp directory; resolves once it is usable. */
  static async mount(): Promise<PowerCutFs> {
    requireFuse();
    // The real path: /proc/self/mounts names the mount by it.
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'wald-power-cut-')));
    const backingDir = join(root, 'backing');
    const mountDir = join(root, 'mnt');
    mkdirSync(backingDir);
    mkdirSync(mountDir);
    const socketPath = join(root, 'control.sock');
    // -B: no __pycache__ beside the daemon's module in the source tree.
    const daemon = spawn(PYTHON, ['-B', DAEMON, backingDir, mountDir, socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(daemon, 'exit').catch(() => undefined);
    const fs = new PowerCutFs(mountDir, backingDir, root, socketPath, daemon, exited);
    try {
      await fs.waitReady();
    } catch (error) {
      await fs.unmount().catch(() => undefined);
      throw error;
    }
    return fs;
  }

  /** A power cut: everything not durable is lost (see unsynced_fs.py); the result is durable. */
  async cut(options: CutOptions = {}): Promise<CutReport> {
    const line = options.keepPagesSeed === undefined ? 'cut' : `cut keep-pages ${options.keepPagesSeed}`;
    return (await this.command(line)) as unknown as CutReport;
  }

  /** The next `count` fsync/fdatasync calls of files named like `nameGlob` fail with `code`. */
  async failFsync(code: 'EIO' | 'ENOSPC', count: number, nameGlob = '*'): Promise<void> {
    await this.command(`fail-fsync ${code} ${count} ${nameGlob}`);
  }

  async stats(): Promise<PowerCutStats> {
    return (await this.command('stats')) as unknown as PowerCutStats;
  }

  /**
   * Unmounts, waits for the daemon to exit and removes the temp dirs. Safe to call twice and after
   * a failed mount. Throws if the daemon reported errors on stderr (after cleaning up), or if the
   * mount could not be removed (then the temp dirs are left, never deleted through a mount).
   */
  async unmount(): Promise<void> {
    if (this.isUnmounted) return;
    this.isUnmounted = true;
    if (isMounted(this.mountDir)) {
      await run('fusermount3', ['-u', this.mountDir]).catch(() => run('fusermount3', ['-u', '-z', this.mountDir]));
    }
    if (!(await settlesWithin(this.exited, EXIT_TIMEOUT_MS))) {
      this.daemon.kill('SIGKILL');
      await this.exited;
    }
    if (isMounted(this.mountDir)) await run('fusermount3', ['-u', '-z', this.mountDir]);
    if (isMounted(this.mountDir)) throw new Error(`${this.mountDir} is still mounted; left ${this.root} in place`);
    rmSync(this.root, { recursive: true, force: true });
    if (this.stderr.trim() !== '') throw new Error(`unsynced_fs reported errors:\n${this.stderr}`);
  }

  /** Resolves when the daemon prints `ready`; rejects when it exits, cannot start, or takes too long. */
  private waitReady(): Promise<void> {
    const daemon = this.daemon;
    const lines = createInterface({ input: daemon.stdout! });
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        lines.close();
        daemon.off('exit', onExit);
        daemon.off('error', onError);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onLine = (line: string): void => settle(line === 'ready' ? undefined : new Error(`unsynced_fs printed '${line}' instead of 'ready'`));
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        const hint = code === NO_FUSEPY_EXIT_CODE ? ` (${INSTALL_HINT})` : '';
        // stderr may still be arriving: give its pipe the turn it needs to drain.
        setImmediate(() => settle(new Error(`unsynced_fs exited with ${String(code ?? signal)} before the mount was ready${hint}:\n${this.stderr}`)));
      };
      const onError = (error: Error): void => settle(new Error(`cannot start ${PYTHON} (${INSTALL_HINT})`, { cause: error }));
      const timer = setTimeout(() => settle(new Error(`unsynced_fs did not mount ${this.mountDir} within ${MOUNT_TIMEOUT_MS} ms:\n${this.stderr}`)), MOUNT_TIMEOUT_MS);
      lines.once('line', onLine);
      daemon.once('exit', onExit);
      daemon.once('error', onError);
    });
  }

  /** Sends one control command and returns its JSON answer; throws when the daemon refused it. */
  private async command(line: string): Promise<Record<string, unknown>> {
    const socket = createConnection(this.socketPath);
    try {
      await once(socket, 'connect');
      socket.write(line + '\n');
      for await (const reply of createInterface({ input: socket })) {
        const answer = JSON.parse(reply) as { ok: boolean; error?: string } & Record<string, unknown>;
        if (!answer.ok) throw new Error(`unsynced_fs refused '${line}': ${answer.error ?? 'no reason given'}`);
        return answer;
      }
      throw new Error(`unsynced_fs closed the control socket without answering '${line}'`);
    } finally {
      socket.destroy();
    }
  }
}

/** Fails, naming the packages to install, when this machine cannot run the power-cut file system. */
export function requireFuse(): void {
  const missing = [PYTHON, '/dev/fuse', '/usr/bin/fusermount3'].filter((path) => !existsSync(path));
  if (missing.length > 0) throw new Error(`the power-cut file system needs ${missing.join(', ')} (${INSTALL_HINT}; /dev/fuse from the kernel)`);
}

function isMounted(dir: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === dir);
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
