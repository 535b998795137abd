import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NodeStorage } from '../../../src/storage/node-storage.js';
import { StorageError } from '../../../src/storage/storage.js';
import { makeTempDir } from '../../support/temp-dir.js';

const LOCK_HOLDER = fileURLToPath(new URL('./lock-holder-child.js', import.meta.url));

/** The pid of a process that has exited (and so holds nothing). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  assert.ok(child.pid !== undefined);
  return child.pid;
}

/** A child process holding the lock of `dir`, once it said so. */
async function spawnLockHolder(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [LOCK_HOLDER, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const [first] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => ['exited'])])) as string[];
  assert.equal(first, 'locked', 'the child took the lock');
  return child;
}

async function sigkill(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

function isLocked(holder: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof StorageError && error.code === 'ELOCKED' && error.holder === holder;
}

describe('NodeStorage directory lock', () => {
  test('takes over a LOCK file whose writer is gone, whatever it holds: a dead pid, a pid alive again, another host, nothing', async () => {
    const contents = [
      `${await deadPid()}@${hostname()}`,
      // After a container restart the dead holder's pid is often alive again: as pid 1, or as us.
      `1@${hostname()}`,
      `${process.pid}@${hostname()}`,
      // ... or the hostname changed.
      `${process.pid}@another-host`,
      // A crash between creating and writing the file.
      '',
    ];
    for (const content of contents) {
      const { dir, remove } = makeTempDir();
      try {
        writeFileSync(join(dir, 'LOCK'), content);
        const lock = new NodeStorage().lock(dir);
        assert.equal(readFileSync(join(dir, 'LOCK'), 'utf8').split('\n')[0], `${process.pid}@${hostname()}`, `took over ${JSON.stringify(content)}`);
        lock.release();
      } finally {
        remove();
      }
    }
  });

  test('refuses a lock held by a live process, naming it, until that process is killed', async () => {
    const { dir, remove } = makeTempDir();
    let child: ChildProcess | undefined;
    try {
      child = await spawnLockHolder(dir);
      const storage = new NodeStorage();
      assert.throws(() => storage.lock(dir), isLocked(`${child.pid}@${hostname()}`));
      // The kernel's lock decides, not the file's text: emptied, it still is the child's.
      writeFileSync(join(dir, 'LOCK'), '');
      assert.throws(() => storage.lock(dir), (e: unknown) => e instanceof StorageError && e.code === 'ELOCKED');
      await sigkill(child);
      storage.lock(dir).release();
    } finally {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) await sigkill(child);
      remove();
    }
  });

  test('two locks of one directory in one process conflict', () => {
    const { dir, remove } = makeTempDir();
    try {
      const first = new NodeStorage().lock(dir);
      assert.throws(() => new NodeStorage().lock(dir), isLocked(`${process.pid}@${hostname()}`));
      first.release();
      new NodeStorage().lock(dir).release();
    } finally {
      remove();
    }
  });

  test('releasing a lock twice does not release the next holder', () => {
    const { dir, remove } = makeTempDir();
    try {
      const storage = new NodeStorage();
      const first = storage.lock(dir);
      first.release();
      const second = storage.lock(dir);
      first.release();
      assert.throws(() => storage.lock(dir), isLocked(`${process.pid}@${hostname()}`));
      second.release();
    } finally {
      remove();
    }
  });

  test('after release the directory can be locked again', () => {
    const { dir, remove } = makeTempDir();
    try {
      const storage = new NodeStorage();
      storage.lock(dir).release();
      storage.lock(dir).release();
    } finally {
      remove();
    }
  });
});
