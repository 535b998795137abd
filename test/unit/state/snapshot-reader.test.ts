/**
 * Reading snapshots back: verification names the file and the reason of any damage (a flipped
 * byte anywhere in a chain, a missing or substituted base), listings read headers and report what
 * they cannot use, and loading the newest snapshot falls back past a damaged one.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { describe, test } from 'node:test';
import { KeyState } from '../../../src/state/key-state.js';
import { listSnapshots, loadNewestSnapshot, loadSnapshot, readSnapshotInfo, snapshotPath, verifySnapshot } from '../../../src/state/snapshot-reader.js';
import { writeSnapshot, type WrittenSnapshot } from '../../../src/state/snapshot-writer.js';
import type { Storage } from '../../../src/storage/storage.js';
import { MemDisk } from '../../support/mem-disk.js';
import { random } from '../../support/seed.js';
import { assertStateEquals, StateModel } from '../../support/state-model.js';

const DIR = '/data/snapshots';

interface Chain {
  readonly disk: MemDisk;
  readonly storage: Storage;
  readonly full: WrittenSnapshot;
  readonly incremental: WrittenSnapshot;
  readonly model: StateModel;
}

/** A full snapshot and an incremental on it, each of a few hundred bytes. */
async function writeChain(compress: boolean): Promise<Chain> {
  const disk = new MemDisk();
  const storage = disk.mount();
  const state = new KeyState();
  const model = new StateModel(state);
  const next = random(7);
  model.randomRecords(next, 12, 6, 12);
  const full = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' }, { compress, chunkBytes: 40 });
  state.forgetChangesBefore(full.walOffset);
  model.randomRecords(next, 8, 6, 12);
  const incremental = await writeSnapshot(storage, DIR, state.captureView(), { type: 'incremental', base: full }, { compress, chunkBytes: 40 });
  assert.ok(incremental.tombstoneCount > 0 && incremental.entryCount > 0, 'the chain has puts and tombstones');
  return { disk, storage, full, incremental, model };
}

describe('snapshot reader', () => {
  for (const compress of [false, true]) {
    test(`a flipped byte anywhere in a chain fails verification naming the file (compress: ${compress})`, async () => {
      const { disk, storage, full, incremental, model } = await writeChain(compress);
      assert.ok((await verifySnapshot(storage, incremental.path)).ok);
      for (const damaged of [full, incremental]) {
        const bytes = disk.fileBytes(damaged.path)!;
        for (let i = 0; i < bytes.length; i++) {
          bytes[i]! ^= 1 << (i % 8);
          const verified = await verifySnapshot(storage, incremental.path);
          const loaded = await loadSnapshot(storage, incremental.path);
          bytes[i]! ^= 1 << (i % 8);
          assert.equal(verified.ok, false, `byte ${i} of ${basename(damaged.path)}`);
          assert.equal(verified.ok ? '' : verified.file, damaged.path, `byte ${i}: ${verified.ok ? '' : verified.reason}`);
          assert.equal(loaded.ok, false, `byte ${i} of ${basename(damaged.path)} loads`);
        }
      }
      const loaded = await loadSnapshot(storage, incremental.path);
      assert.ok(loaded.ok, 'every byte was put back');
      assertStateEquals(loaded.state, model.entries, model.nextOffset);
    });
  }

  test('names the reason: checksum, truncation, header', async () => {
    const { disk, storage, full, incremental } = await writeChain(false);
    const bytes = disk.fileBytes(full.path)!;
    const reasonOf = async (): Promise<string> => {
      const verified = await verifySnapshot(storage, incremental.path);
      return verified.ok ? '' : `${basename(verified.file)}: ${verified.reason}`;
    };
    bytes[100]! ^= 0xff;
    assert.equal(await reasonOf(), `${basename(full.path)}: checksum mismatch`);
    bytes[100]! ^= 0xff;
    bytes[3]! ^= 0xff;
    assert.equal(await reasonOf(), `${basename(full.path)}: bad magic`);
    bytes[3]! ^= 0xff;
    const file = storage.open(full.path, 'read-write');
    file.truncate(bytes.length - 1);
    file.close();
    assert.match(await reasonOf(), /truncated or extended/);
  });

  test('a missing or substituted base fails the chain naming the base', async () => {
    const { disk, storage, full, incremental } = await writeChain(false);
    const other = await writeSnapshot(storage, DIR, new KeyState().captureView(), { type: 'full' });
    const fullBytes = Buffer.from(disk.fileBytes(full.path)!);
    storage.unlink(full.path);
    const missing = await verifySnapshot(storage, incremental.path);
    assert.deepEqual(missing, { ok: false, file: full.path, reason: `base snapshot ${full.id} is missing` });
    const substitute = storage.open(full.path, 'create-new');
    substitute.writev([disk.fileBytes(other.path)!], 0);
    substitute.close();
    const swapped = await verifySnapshot(storage, incremental.path);
    assert.deepEqual(swapped, { ok: false, file: full.path, reason: `the file holds snapshot ${other.id}, not the base ${full.id}` });
    storage.unlink(full.path);
    const restored = storage.open(full.path, 'create-new');
    restored.writev([fullBytes], 0);
    restored.close();
    assert.ok((await verifySnapshot(storage, incremental.path)).ok);
  });

  test('lists headers in id order and reports temp files and unusable files', async () => {
    const { storage, full, incremental } = await writeChain(true);
    assert.deepEqual(listSnapshots(storage, '/nowhere'), { snapshots: [], unreadable: [], tempFiles: [] });
    const temp = storage.open(`${DIR}/00000000000000000099-000000000000000-00000000.snap.tmp`, 'create-new');
    temp.close();
    const junk = storage.open(`${DIR}/junk.snap`, 'create-new');
    junk.writev([Buffer.from('not a snapshot')], 0);
    junk.close();
    const renamed = `${DIR}/00000000000000000000-000000000000000-00000000.snap`;
    const copy = storage.open(renamed, 'create-new');
    copy.writev([storage.readFile(full.path)], 0);
    copy.close();
    const listing = listSnapshots(storage, DIR);
    assert.deepEqual(
      listing.snapshots.map((s) => [s.id, s.type, s.baseId, s.isCompressed]),
      [
        [full.id, 'full', undefined, true],
        [incremental.id, 'incremental', full.id, true],
      ],
    );
    assert.deepEqual(listing.tempFiles, ['00000000000000000099-000000000000000-00000000.snap.tmp']);
    assert.deepEqual(listing.unreadable, [
      { ok: false, file: renamed, reason: `the file holds snapshot ${full.id}` },
      { ok: false, file: `${DIR}/junk.snap`, reason: 'short header' },
    ]);
    const info = readSnapshotInfo(storage, incremental.path);
    assert.ok(info.ok);
    const { checksum, ...row } = incremental;
    assert.equal(checksum.length, 64);
    assert.deepEqual(info.info, row);
    assert.equal(snapshotPath(DIR, incremental.id), incremental.path);
  });

  test('loading the newest snapshot falls back past a damaged one and says why', async () => {
    const { disk, storage, full, incremental } = await writeChain(false);
    const before = await loadSnapshot(storage, full.path);
    assert.ok(before.ok);
    disk.fileBytes(incremental.path)![80]! ^= 0x10;
    const newest = await loadNewestSnapshot(storage, DIR);
    assert.deepEqual(newest.failures, [{ ok: false, file: incremental.path, reason: 'checksum mismatch' }]);
    assert.equal(newest.loaded?.chain.map((s) => s.id).join(), full.id);
    assert.deepEqual(newest.loaded?.state.list({ limit: 100 }), before.state.list({ limit: 100 }));
    disk.fileBytes(full.path)![80]! ^= 0x10;
    const none = await loadNewestSnapshot(storage, DIR);
    assert.equal(none.loaded, undefined);
    assert.deepEqual(
      none.failures.map((f) => f.file),
      [full.path, full.path],
      'the incremental now fails at its base',
    );
  });
});
