import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { NodeStorage } from '../../../src/storage/node-storage.js';
import { StorageError } from '../../../src/storage/storage.js';
import { makeTempDir } from '../../support/temp-dir.js';

/** The pid of a process that has exited (and so holds nothing). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  assert.ok(child.pid !== undefined);
  return child.pid;
}

describe('NodeStorage directory lock', () => {
  test('takes over a lock left by a process that is gone (a crash or kill -9)', async () => {
    const { dir, remove } = makeTempDir();
    try {
      writeFileSync(join(dir, 'LOCK'), `${await deadPid()}@${hostname()}`);
      const lock = new NodeStorage().lock(dir);
      assert.equal(readFileSync(join(dir, 'LOCK'), 'utf8'), `${process.pid}@${hostname()}`);
      lock.release();
    } finally {
      remove();
    }
  });

  test('takes over an empty lock (a crash between creating and writing it)', () => {
    const { dir, remove } = makeTempDir();
    try {
      writeFileSync(join(dir, 'LOCK'), '');
      new NodeStorage().lock(dir).release();
    } finally {
      remove();
    }
  });

  test('refuses a lock held by a live process, or by another host, naming the holder', () => {
    const { dir, remove } = makeTempDir();
    try {
      const storage = new NodeStorage();
      for (const holder of [`${process.pid}@${hostname()}`, `1@some-other-host`]) {
        writeFileSync(join(dir, 'LOCK'), holder);
        assert.throws(
          () => storage.lock(dir),
          (error: unknown) => error instanceof StorageError && error.code === 'ELOCKED' && error.holder === holder,
        );
      }
    } finally {
      remove();
    }
  });

  test('release removes the lock, so the directory can be locked again', () => {
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
