/**
 * createEmptyLog: a log that starts at a base offset opens with that first and next offset, takes
 * its first append there, survives reopening; a directory that holds a log is refused; and a power
 * cut at every disk operation of the creation leaves either no log (opened at 0) or the whole
 * empty one (opened at the base offset).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEmptyLog } from '../../../src/engine/empty-log.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { CrashError, MemDisk } from '../../support/mem-disk.js';

const DIR = '/data/log';

describe('createEmptyLog', () => {
  test('makes a log whose first and next offset are the base offset; the first append gets it, and a reopen keeps it', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    createEmptyLog({ dir: DIR, storage, baseOffset: 1234 });
    assert.deepEqual(storage.list(DIR).filter((name) => name.endsWith('.seg')), ['00000000000000001234.seg']);
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false });
    assert.equal(wal.firstOffset, 1234);
    assert.equal(wal.nextOffset, 1234);
    assert.equal(wal.highWatermark, 1233);
    const { firstOffset } = await wal.append([{ value: Buffer.from('first') }, { value: Buffer.from('second') }]);
    assert.equal(firstOffset, 1234);
    await wal.close();
    disk.crash();
    const reopened = (await Wal.open({ dir: DIR, storage: disk.mount(), preallocate: false })).wal;
    try {
      assert.equal(reopened.firstOffset, 1234);
      assert.deepEqual((await reopened.read(1234)).map((record) => [record.offset, record.value.toString()]), [
        [1234, 'first'],
        [1235, 'second'],
      ]);
    } finally {
      await reopened.close();
    }
  });

  test('refuses a directory that holds a log, and a base offset that is not an offset', async () => {
    const storage = new MemDisk().mount();
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false });
    await wal.append([{ value: Buffer.from('x') }]);
    assert.throws(() => createEmptyLog({ dir: DIR, storage, baseOffset: 10 }), (error: unknown) => isWalError(error, 'WAL_LOCKED'));
    await wal.close();
    assert.throws(
      () => createEmptyLog({ dir: DIR, storage, baseOffset: 10 }),
      (error: unknown) => isWalError(error, 'WAL_INVALID_ARGUMENT') && error.details['segment'] === '00000000000000000000.seg',
    );
    for (const baseOffset of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1]) {
      assert.throws(() => createEmptyLog({ dir: '/other', storage, baseOffset }), RangeError);
    }
  });

  test('a power cut at any disk operation leaves no log (opened at 0) or the whole empty log at the base offset', async () => {
    const counting = new MemDisk();
    createEmptyLog({ dir: DIR, storage: counting.mount(), baseOffset: 77 });
    const operations = counting.ops;
    assert.ok(operations >= 4, `${operations} operations`);
    const seen = new Set<number>();
    for (let op = 1; op <= operations + 1; op++) {
      const disk = new MemDisk();
      disk.crashAt(op);
      try {
        createEmptyLog({ dir: DIR, storage: disk.mount(), baseOffset: 77 });
        disk.crash();
      } catch (error) {
        if (!(error instanceof CrashError) && !isWalError(error)) throw error;
        if (isWalError(error) && !(error.cause instanceof CrashError)) throw error;
      }
      const { wal } = await Wal.open({ dir: DIR, storage: disk.mount(), preallocate: false });
      try {
        assert.ok(wal.firstOffset === 0 || wal.firstOffset === 77, `crash at operation ${op}: first offset ${wal.firstOffset}`);
        assert.equal(wal.nextOffset, wal.firstOffset);
        seen.add(wal.firstOffset);
      } finally {
        await wal.close();
      }
    }
    assert.deepEqual([...seen].sort((a, b) => a - b), [0, 77], 'both outcomes happen');
  });
});
