/**
 * A power cut at every disk operation of a restore (`restoreSnapshot` of a full + incremental
 * chain into a new data directory, with and without `overwrite` of an old log there), unsynced
 * bytes and entries lost: afterwards the new directory either holds no restored log yet (it opens
 * as the empty log at 0 or as the old log, untouched or emptied), or refuses to open its view
 * (`WAL_STATE_LOST`), or opens with exactly the snapshot's state, its first offset the snapshot's
 * wal offset. Never a view that opens with another state.
 */
import assert from 'node:assert/strict';
import { lockDataDir } from '../../src/engine/data-dir-lock.js';
import { describe, test } from 'node:test';
import { Wal } from '../../src/engine/wal.js';
import { isWalError } from '../../src/errors.js';
import { restoreSnapshot } from '../../src/state/snapshot-restore.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import type { Storage } from '../../src/storage/storage.js';
import { CrashError, MemDisk } from '../support/mem-disk.js';

const SOURCE = '/source';
const TARGET = '/restored';

/** A log with a full snapshot, more writes, an incremental on it; the state of the incremental. */
async function setup(disk: MemDisk, withOldLog: boolean): Promise<{ source: string; walOffset: number; expected: Map<string, string> }> {
  const storage = disk.mount();
  const { wal } = await Wal.open({ dir: SOURCE, storage, preallocate: false });
  const { keeper } = await StateKeeper.open({ wal, storage });
  await keeper.append(Array.from({ length: 40 }, (_, i) => ({ key: Buffer.from(`k${i % 25}`), value: Buffer.from(`v${i}`) })));
  await keeper.createSnapshot();
  await keeper.append([{ key: Buffer.from('k3'), value: Buffer.alloc(0), type: 'delete' }, { key: Buffer.from('k4'), value: Buffer.from('changed') }]);
  const incremental = await keeper.createSnapshot({ incremental: true, compress: true });
  const expected = new Map<string, string>();
  for (let i = 0; i < 25; i++) {
    const entry = await keeper.get(Buffer.from(`k${i}`));
    if (entry !== undefined) expected.set(`k${i}`, `${Buffer.from(entry.value).toString()}@${entry.offset}`);
  }
  await keeper.close();
  await wal.close();
  if (withOldLog) {
    const old = (await Wal.open({ dir: TARGET, storage, preallocate: false })).wal;
    await old.append([{ key: Buffer.from('old'), value: Buffer.from('log') }]);
    await old.close();
  }
  disk.crash();
  return { source: incremental.path, walOffset: incremental.walOffset, expected };
}

type Outcome = 'not restored' | 'refused' | 'restored';

/** What a server would find in TARGET. */
async function outcomeOf(storage: Storage, walOffset: number, expected: Map<string, string>, label: string): Promise<Outcome> {
  const { wal } = await Wal.open({ dir: TARGET, storage, preallocate: false });
  try {
    let keeper: StateKeeper;
    try {
      keeper = (await StateKeeper.open({ wal, storage })).keeper;
    } catch (error) {
      assert.ok(isWalError(error, 'WAL_STATE_LOST'), `${label}: ${String(error)}`);
      assert.equal(wal.firstOffset, walOffset, `${label}: only the restored log lacks its snapshot`);
      return 'refused';
    }
    try {
      if (wal.firstOffset === 0) {
        // No restored log: the old one (whole, or emptied by overwrite), or none.
        const old = await keeper.get(Buffer.from('old'));
        assert.ok(keeper.keyCount === 0 || (keeper.keyCount === 1 && old !== undefined), `${label}: ${keeper.keyCount} keys in a log at 0`);
        return 'not restored';
      }
      assert.equal(wal.firstOffset, walOffset, label);
      assert.equal(wal.nextOffset, walOffset, label);
      const state = new Map<string, string>();
      for (const key of expected.keys()) {
        const entry = await keeper.get(Buffer.from(key));
        if (entry !== undefined) state.set(key, `${Buffer.from(entry.value).toString()}@${entry.offset}`);
      }
      assert.deepEqual(state, expected, label);
      assert.equal(keeper.keyCount, expected.size, label);
      return 'restored';
    } finally {
      await keeper.close();
    }
  } finally {
    await wal.close();
  }
}

describe('restore under power cuts', () => {
  for (const withOldLog of [false, true]) {
    test(`a crash at any operation of a restore${withOldLog ? ' over an old log (overwrite)' : ''} leaves no restored log, one that refuses to open, or the snapshot's state`, async () => {
      const counting = new MemDisk();
      const counted = await setup(counting, withOldLog);
      const opsBefore = counting.ops;
      await restoreSnapshot({ storage: counting.mount(), source: counted.source, dataDir: TARGET, overwrite: withOldLog });
      const operations = counting.ops - opsBefore;
      assert.ok(operations >= 10, `${operations} operations`);
      const seen = new Set<Outcome>();
      for (let op = 1; op <= operations + 1; op++) {
        const disk = new MemDisk();
        const { source, walOffset, expected } = await setup(disk, withOldLog);
        const storage = disk.mount();
        if (op <= operations) {
          disk.crashAt(op);
          await assert.rejects(restoreSnapshot({ storage, source, dataDir: TARGET, overwrite: withOldLog }), (error: unknown) =>
            error instanceof CrashError || (isWalError(error) && error.cause instanceof CrashError),
          );
        } else {
          await restoreSnapshot({ storage, source, dataDir: TARGET, overwrite: withOldLog });
          disk.crash();
        }
        seen.add(await outcomeOf(disk.mount(), walOffset, expected, `crash at operation ${op} of ${operations}`));
      }
      assert.deepEqual([...seen].sort(), ['not restored', 'refused', 'restored']);
    });
  }

  test('the data directory stays locked through every step: no log can be opened there while the snapshot is copied', async () => {
    const disk = new MemDisk();
    const { source } = await setup(disk, false);
    let tries = 0;
    const storage = disk.mount();
    await restoreSnapshot({
      storage,
      source,
      dataDir: TARGET,
      onProgress: (phase) => {
        if (phase !== 'copy' || tries > 0) return;
        tries++;
        // The empty log exists by now: an open here would find it without its snapshot.
        assert.throws(() => lockDataDir(storage, TARGET, 'a server'), (error: unknown) => isWalError(error, 'WAL_LOCKED'));
      },
    });
    assert.equal(tries, 1, 'the copy reported progress');
    lockDataDir(storage, TARGET, 'after the restore').release();
  });
});
