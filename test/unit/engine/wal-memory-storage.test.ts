/**
 * The log on memory storage (`Wal.open({ storage: 'memory' })`, src/engine/storage-options.ts):
 * nothing reaches the disk, preallocated segments hold only what was written, a shared
 * MemoryStorage is the log's disk across reopens, and its cap acts as a full disk.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openStorage, storageKindOf } from '../../../src/engine/storage-options.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { NodeStorage } from '../../../src/storage/node-storage.js';
import { makeTempDir } from '../../support/temp-dir.js';

const MiB = 1024 * 1024;
const value = (i: number): { value: Buffer } => ({ value: Buffer.from(`record ${i}`.padEnd(100, '.')) });

describe('Wal on memory storage', () => {
  test("storage: 'memory' serves appends, reads and tails and never creates the data directory", async () => {
    const temp = makeTempDir();
    const dir = join(temp.dir, 'data');
    try {
      const { wal } = await Wal.open({ dir, storage: 'memory' });
      assert.equal(storageKindOf(wal.storage), 'memory');
      await wal.append([value(0), value(1)]);
      await wal.append([value(2)], { sync: true });
      assert.deepEqual((await wal.read(0, { limit: 10 })).map((r) => r.offset), [0, 1, 2]);
      const controller = new AbortController();
      const seen: number[] = [];
      for await (const record of wal.tail(1, { signal: controller.signal })) {
        seen.push(record.offset);
        if (record.offset === 2) controller.abort();
      }
      assert.deepEqual(seen, [1, 2]);
      assert.ok(wal.stats().io.fsyncs > 0, 'syncs are no-ops but still counted');
      await wal.close();
      assert.equal(existsSync(dir), false, 'the data directory is only a name');
    } finally {
      temp.remove();
    }
  });

  test('preallocated 64 MiB segments hold only the bytes written', async () => {
    const storage = new MemoryStorage();
    const { wal } = await Wal.open({ dir: '/data', storage, preallocate: true });
    for (let i = 0; i < 100; i++) await wal.append([value(i)]);
    assert.equal(wal.stats().segmentCount, 1);
    const { usedBytes } = storage.stats();
    assert.ok(usedBytes < 1 * MiB, `the log holds ${usedBytes} bytes for 100 records`);
    await wal.close();
    assert.equal(storage.stats().openFiles, 0, 'close closes every file');
  });

  test('one MemoryStorage is the log’s disk: a reopen recovers every record, across segments; a second open is WAL_LOCKED', async () => {
    const storage = new MemoryStorage();
    const first = (await Wal.open({ dir: 'data', storage, segmentSizeBytes: 4096 })).wal;
    for (let i = 0; i < 100; i++) await first.append([value(i)]);
    assert.ok(first.stats().segmentCount > 2);
    await assert.rejects(Wal.open({ dir: 'data', storage }), (error) => isWalError(error, 'WAL_LOCKED'));
    await first.close();
    const { wal, report } = await Wal.open({ dir: 'data', storage, segmentSizeBytes: 4096 });
    assert.equal(report.records, 100);
    assert.deepEqual((await wal.read(98, { limit: 10 })).map((r) => r.value), [value(98).value, value(99).value]);
    await wal.close();
    const fresh = await Wal.open({ dir: 'data', storage: 'memory' });
    assert.equal(fresh.report.records, 0, "another 'memory' storage shares nothing");
    await fresh.wal.close();
  });

  test('past the cap appends fail with WAL_NO_SPACE and the log goes disk-full', async () => {
    const storage = new MemoryStorage({ maxBytes: 64 * 1024 });
    const { wal } = await Wal.open({ dir: '/data', storage, preallocate: false, diskFullProbeIntervalMs: 60_000 });
    let failure: unknown;
    for (let i = 0; i < 10_000 && failure === undefined; i++) {
      try {
        await wal.append([value(i)]);
      } catch (error) {
        failure = error;
      }
    }
    assert.ok(isWalError(failure, 'WAL_NO_SPACE'), `failed with ${String(failure)}`);
    assert.equal(wal.stats().writeState, 'disk-full');
    assert.ok(storage.stats().usedBytes <= 64 * 1024);
    await wal.close();
  });

  test('openStorage: names make new storages, a Storage is kept, anything else is a TypeError naming options.storage', () => {
    assert.ok(openStorage(undefined) instanceof NodeStorage);
    assert.ok(openStorage('disk') instanceof NodeStorage);
    const capped = openStorage('memory', { maxMemoryStorageBytes: 1000 });
    assert.ok(capped instanceof MemoryStorage);
    assert.equal(capped.freeBytes?.('/'), 1000);
    assert.equal(openStorage('memory', { maxMemoryStorageBytes: 0 }).freeBytes?.('/'), undefined, '0: no cap');
    assert.equal(openStorage(capped), capped);
    assert.throws(() => openStorage('tape' as 'disk'), (error: unknown) => error instanceof TypeError && /options\.storage/.test(error.message));
  });
});
