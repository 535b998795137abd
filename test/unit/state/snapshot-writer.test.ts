/**
 * Snapshot round trips through the storage port: full and incremental chains (gzip and not)
 * restore to exactly the model state at each snapshot's offset; point snapshots hold one key; a
 * large write yields to the event loop and appends go on during it without showing in the file.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeSnapshotFile, entryKey, entryValue } from '../../../src/codec/snapshot-file.js';
import { snapshotFileName } from '../../../src/codec/snapshot-id.js';
import { isWalError } from '../../../src/errors.js';
import { KeyState } from '../../../src/state/key-state.js';
import { listSnapshots, loadNewestSnapshot, loadSnapshot, verifySnapshot } from '../../../src/state/snapshot-reader.js';
import { writeSnapshot, type WrittenSnapshot } from '../../../src/state/snapshot-writer.js';
import { MemDisk } from '../../support/mem-disk.js';
import { random, testSeed } from '../../support/seed.js';
import { assertStateEquals, StateModel, type ModelEntry } from '../../support/state-model.js';

const DIR = '/data/snapshots';

/** What a round of the workload does after its records: which snapshot to take, if any. */
const stepArb = fc.record({
  records: fc.integer({ min: 0, max: 40 }),
  snapshot: fc.constantFrom('none' as const, 'full' as const, 'incremental' as const),
  compress: fc.boolean(),
});

describe('snapshot writer and reader', () => {
  test('full and incremental chains, gzip or not, restore the state at each snapshot', async () => {
    const seed = testSeed('snapshot chains');
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 8, size: 'large' }), fc.integer({ min: 1, max: 200 }), async (steps, chunkBytes) => {
        const disk = new MemDisk();
        const storage = disk.mount();
        const state = new KeyState();
        const model = new StateModel(state);
        const next = random(seed ^ steps.length ^ chunkBytes);
        const written: { snapshot: WrittenSnapshot; entries: Map<string, ModelEntry>; nextOffset: number }[] = [];
        let last: WrittenSnapshot | undefined;
        for (const step of steps) {
          model.randomRecords(next, step.records, 12, 120);
          if (step.snapshot === 'none') continue;
          const view = state.captureView();
          const request = step.snapshot === 'incremental' && last !== undefined ? { type: 'incremental' as const, base: last } : { type: 'full' as const };
          const snapshot = await writeSnapshot(storage, DIR, view, request, { compress: step.compress, chunkBytes });
          state.forgetChangesBefore(snapshot.walOffset);
          assert.equal(snapshot.type, request.type);
          assert.equal(snapshot.walOffset, model.nextOffset);
          assert.equal(snapshot.isCompressed, step.compress);
          written.push({ snapshot, entries: model.copy(), nextOffset: model.nextOffset });
          last = snapshot;
        }
        assert.deepEqual(
          listSnapshots(storage, DIR).snapshots.map((s) => s.id),
          written.map((w) => w.snapshot.id).sort(),
        );
        for (const w of written) {
          const loaded = await loadSnapshot(storage, w.snapshot.path);
          assert.ok(loaded.ok, loaded.ok ? '' : `${loaded.file}: ${loaded.reason}`);
          assertStateEquals(loaded.state, w.entries, w.nextOffset);
          assert.equal(loaded.chain[0]!.type, 'full');
          assert.equal(loaded.chain[loaded.chain.length - 1]!.id, w.snapshot.id);
          assert.equal(loaded.checksums[loaded.checksums.length - 1], w.snapshot.checksum);
          const { sizeBytes, checksum, ...info } = w.snapshot;
          assert.equal(disk.fileBytes(w.snapshot.path)?.length, sizeBytes);
          assert.equal(disk.fileBytes(w.snapshot.path)?.toString('hex', sizeBytes - 32), checksum);
          assert.deepEqual(loaded.chain[loaded.chain.length - 1], { ...info, sizeBytes });
        }
        const newest = await loadNewestSnapshot(storage, DIR);
        assert.deepEqual(newest.failures, []);
        const lastWritten = written[written.length - 1];
        if (lastWritten === undefined) assert.equal(newest.loaded, undefined);
        else assertStateEquals(newest.loaded!.state, lastWritten.entries, lastWritten.nextOffset);
        assert.equal(disk.openFiles, 0);
      }),
      { seed, numRuns: 60 },
    );
  });

  test('an incremental holds only the keys changed or deleted since its base', async () => {
    const storage = new MemDisk().mount();
    const state = new KeyState();
    const model = new StateModel(state);
    for (let i = 0; i < 100; i++) model.put(Buffer.from(`k${i}`), Buffer.from('v'));
    const full = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' });
    state.forgetChangesBefore(full.walOffset);
    model.put(Buffer.from('k5'), Buffer.from('new'));
    model.delete(Buffer.from('k7'));
    model.delete(Buffer.from('absent'));
    model.put(Buffer.from('k8'), Buffer.from('x'));
    model.delete(Buffer.from('k8'));
    const incremental = await writeSnapshot(storage, DIR, state.captureView(), { type: 'incremental', base: full });
    assert.equal(full.entryCount, 100);
    assert.deepEqual([incremental.entryCount, incremental.tombstoneCount, incremental.baseId], [1, 2, full.id]);
    const loaded = await loadSnapshot(storage, incremental.path);
    assert.ok(loaded.ok);
    assertStateEquals(loaded.state, model.entries, model.nextOffset);
  });

  test('an incremental with no change since its base sorts after it, within one millisecond too', async () => {
    const storage = new MemDisk().mount();
    const state = new KeyState();
    new StateModel(state).put(Buffer.from('a'), Buffer.from('1'));
    const now = (): number => 1_700_000_000_000;
    let base = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' }, { now });
    // Ids at one offset and one millisecond would otherwise order by their random nonce.
    for (let i = 0; i < 20; i++) {
      const next = await writeSnapshot(storage, DIR, state.captureView(), { type: 'incremental', base }, { now });
      assert.ok(next.id > base.id);
      assert.deepEqual([next.entryCount, next.tombstoneCount], [0, 0]);
      base = next;
    }
    const loaded = await loadSnapshot(storage, base.path);
    assert.ok(loaded.ok);
    assert.equal(loaded.chain.length, 21);
  });

  test('a loaded state goes on from its snapshot: incrementals build on the chain, not on older bases', async () => {
    const storage = new MemDisk().mount();
    const state = new KeyState();
    const model = new StateModel(state);
    const next = random(3);
    model.randomRecords(next, 50, 10);
    const full = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' });
    state.forgetChangesBefore(full.walOffset);
    model.randomRecords(next, 50, 10);
    const incremental = await writeSnapshot(storage, DIR, state.captureView(), { type: 'incremental', base: full });
    // A restart: the state comes back from the chain and follows the log from its offset.
    const loaded = await loadSnapshot(storage, incremental.path);
    assert.ok(loaded.ok);
    const restarted = loaded.state;
    assert.equal(restarted.nextOffset, incremental.walOffset);
    assert.equal(restarted.captureView().canListChangesSince(full.walOffset), false, 'deletions before the loaded snapshot are unknown');
    const resumed = new StateModel(restarted, model);
    resumed.randomRecords(next, 50, 10);
    const after = await writeSnapshot(storage, DIR, restarted.captureView(), { type: 'incremental', base: incremental });
    const reloaded = await loadSnapshot(storage, after.path);
    assert.ok(reloaded.ok);
    assert.equal(reloaded.chain.length, 3);
    assertStateEquals(reloaded.state, resumed.entries, resumed.nextOffset);
  });

  test('a write releases its view, done or failed', async () => {
    const storage = new MemDisk().mount();
    const state = new KeyState();
    const model = new StateModel(state);
    model.put(Buffer.from('a'), Buffer.from('1'));
    const view = state.captureView();
    assert.equal(state.openViewCount, 1);
    await writeSnapshot(storage, DIR, view, { type: 'full' });
    assert.equal(state.openViewCount, 0);
    assert.throws(() => view.get(Buffer.from('a')), /release/);
    const refused = state.captureView();
    await assert.rejects(writeSnapshot(storage, DIR, refused, { type: 'point', key: Buffer.from('zz') }), RangeError);
    assert.equal(state.openViewCount, 0);
  });

  test('a point snapshot holds one key and is not a state to load', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const state = new KeyState();
    const model = new StateModel(state);
    model.put(Buffer.from('a'), Buffer.from('1'));
    model.put(Buffer.from('b'), Buffer.from('2'));
    const point = await writeSnapshot(storage, DIR, state.captureView(), { type: 'point', key: Buffer.from('b') });
    assert.deepEqual([point.type, point.entryCount, point.walOffset], ['point', 1, 2]);
    const entries: string[] = [];
    const decoded = decodeSnapshotFile(disk.fileBytes(point.path)!, (e) => entries.push(`${entryKey(e)}=${entryValue(e)}@${e.offset}`));
    assert.ok(decoded.ok);
    assert.equal(decoded.value.checksum, point.checksum);
    assert.deepEqual(entries, ['b=2@1']);
    const verified = await verifySnapshot(storage, point.path);
    assert.ok(verified.ok);
    const loaded = await loadSnapshot(storage, point.path);
    assert.equal(loaded.ok, false);
    assert.match(loaded.ok ? '' : loaded.reason, /point snapshot/);
  });

  test('refuses a point snapshot of a missing key and an incremental its view cannot build', async () => {
    const storage = new MemDisk().mount();
    const state = new KeyState();
    const model = new StateModel(state);
    model.put(Buffer.from('a'), Buffer.from('1'));
    await assert.rejects(writeSnapshot(storage, DIR, state.captureView(), { type: 'point', key: Buffer.from('zz') }), RangeError);
    const full = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' });
    state.forgetChangesBefore(full.walOffset);
    model.put(Buffer.from('b'), Buffer.from('2'));
    const later = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' });
    state.forgetChangesBefore(later.walOffset);
    // Deletions before the later snapshot are forgotten: an incremental on the older base would miss them.
    await assert.rejects(writeSnapshot(storage, DIR, state.captureView(), { type: 'incremental', base: full }), RangeError);
    state.clear(model.nextOffset++);
    await assert.rejects(writeSnapshot(storage, DIR, state.captureView(), { type: 'incremental', base: later }), RangeError, 'a flush forgets the deleted keys');
    const other = await writeSnapshot(storage, DIR, new KeyState().captureView(), { type: 'full' });
    await assert.rejects(writeSnapshot(storage, DIR, state.captureView(), { type: 'incremental', base: { ...other, type: 'point' } }), RangeError);
    await assert.rejects(writeSnapshot(storage, DIR, state.captureView(), { type: 'full' }, { chunkBytes: 0 }), RangeError);
    await assert.rejects(writeSnapshot(storage, DIR, state.captureView(), { type: 'full' }, { compressionLevel: 10 }), RangeError);
  });

  for (const compress of [false, true]) {
    test(`a large snapshot yields to the event loop and appends go on meanwhile (compress: ${compress})`, async () => {
      // MemDisk's writes take no turn of the event loop and its fdatasync exactly one, so every other
      // turn counted comes from the writer.
      const storage = new MemDisk().mount();
      const state = new KeyState();
      const model = new StateModel(state);
      for (let i = 0; i < 20_000; i++) model.put(Buffer.from(`key-${i}`), Buffer.alloc(100, i % 251));
      const atCapture = model.copy();
      const view = state.captureView();
      // Appends "from clients" run in turns of the event loop while the snapshot is written.
      let turns = 0;
      let isWriting = true;
      const appendEachTurn = (): void => {
        if (!isWriting || turns >= 100_000) return;
        turns++;
        model.put(Buffer.from(`key-${turns % 30_000}`), Buffer.from(`during ${turns}`));
        setImmediate(appendEachTurn);
      };
      setImmediate(appendEachTurn);
      const snapshot = await writeSnapshot(storage, DIR, view, { type: 'full' }, { compress, chunkBytes: 64 * 1024 });
      isWriting = false;
      // About 40 chunks of 64 KiB, a turn after each.
      assert.ok(turns >= 20, `the event loop turned ${turns} times during the write`);
      assert.equal(state.nextOffset, 20_000 + turns, 'every append during the write was applied');
      const loaded = await loadSnapshot(storage, snapshot.path);
      assert.ok(loaded.ok);
      assertStateEquals(loaded.state, atCapture, 20_000);
    });
  }

  test('finding the changes of an incremental in a large view yields to the event loop', async () => {
    const storage = new MemDisk().mount();
    const state = new KeyState();
    const model = new StateModel(state);
    for (let i = 0; i < 50_000; i++) model.put(Buffer.from(`key-${i}`), Buffer.from('v'));
    const full = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' });
    state.forgetChangesBefore(full.walOffset);
    model.put(Buffer.from('key-7'), Buffer.from('changed'));
    model.delete(Buffer.from('key-8'));
    const atCapture = model.copy();
    const view = state.captureView();
    let turns = 0;
    let isWriting = true;
    const countTurn = (): void => {
      if (!isWriting || turns >= 100_000) return;
      turns++;
      setImmediate(countTurn);
    };
    setImmediate(countTurn);
    const incremental = await writeSnapshot(storage, DIR, view, { type: 'incremental', base: full });
    isWriting = false;
    // 50k keys scanned, a turn every 16k; one more for MemDisk's fdatasync.
    assert.ok(turns >= 3, `the event loop turned ${turns} times during the write`);
    assert.deepEqual([incremental.entryCount, incremental.tombstoneCount], [1, 1]);
    const loaded = await loadSnapshot(storage, incremental.path);
    assert.ok(loaded.ok);
    assertStateEquals(loaded.state, atCapture, 50_002);
  });

  test('a full disk fails the write with WAL_NO_SPACE and leaves no file behind', async () => {
    for (const compress of [false, true]) {
      const disk = new MemDisk();
      const storage = disk.mount();
      const state = new KeyState();
      const model = new StateModel(state);
      for (let i = 0; i < 2_000; i++) model.put(Buffer.from(`key-${i}`), Buffer.alloc(100, i));
      const old = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' });
      disk.capacityBytes = disk.usedBytes() + 10_000;
      await assert.rejects(
        writeSnapshot(storage, DIR, state.captureView(), { type: 'full' }, { compress, chunkBytes: 4096 }),
        (error: unknown) => isWalError(error, 'WAL_NO_SPACE') && typeof error.details['snapshot'] === 'string',
      );
      assert.deepEqual(storage.list(DIR), [snapshotFileName(old.id)], `compress: ${compress}`);
      assert.equal(disk.openFiles, 0);
    }
  });

  test('writes in chunks, not the whole file at once', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const state = new KeyState();
    const model = new StateModel(state);
    for (let i = 0; i < 2_000; i++) model.put(Buffer.from(`key-${i}`), Buffer.alloc(100));
    const opsBefore = disk.ops;
    const snapshot = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' }, { chunkBytes: 16 * 1024 });
    // create, header, about 16 chunks, trailer, datasync, rename, directory sync
    assert.ok(disk.ops - opsBefore >= 16 + 6, `${disk.ops - opsBefore} operations for ${snapshot.sizeBytes} bytes`);
  });
});
