/**
 * A power cut at every disk operation of a snapshot write (full, compressed, incremental), with the
 * unsynced bytes lost, kept as a prefix, or kept page by page in any order: afterwards the
 * directory lists either the snapshots it had or those plus the complete new one, never a partial
 * file under a snapshot name; whatever is listed verifies, and the newest loads to the state of
 * its offset.
 *
 * Randomised (which unsynced bytes survive): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KeyState } from '../../src/state/key-state.js';
import { listSnapshots, loadNewestSnapshot, verifySnapshot } from '../../src/state/snapshot-reader.js';
import { writeSnapshot, type SnapshotRequest, type WrittenSnapshot } from '../../src/state/snapshot-writer.js';
import { CrashError, MemDisk, type UnsyncedSurvival } from '../support/mem-disk.js';
import { random, testSeed } from '../support/seed.js';
import { assertStateEquals, StateModel, type ModelEntry } from '../support/state-model.js';

const DIR = '/data/snapshots';
/** Small chunks, so that the body takes several writes. */
const CHUNK_BYTES = 512;

type Kind = 'full' | 'compressed' | 'incremental';

/** The same setup in every run: one snapshot on disk, then more records, then the write under test. */
async function setup(disk: MemDisk, kind: Kind) {
  const storage = disk.mount();
  const state = new KeyState();
  const model = new StateModel(state);
  const next = random(11);
  model.randomRecords(next, 300, 60, 50);
  const old = await writeSnapshot(storage, DIR, state.captureView(), { type: 'full' }, { chunkBytes: CHUNK_BYTES });
  state.forgetChangesBefore(old.walOffset);
  const oldState = { entries: model.copy(), nextOffset: model.nextOffset };
  model.randomRecords(next, 200, 60, 50);
  const request: SnapshotRequest = kind === 'incremental' ? { type: 'incremental', base: old } : { type: 'full' };
  const write = (): Promise<WrittenSnapshot> =>
    writeSnapshot(storage, DIR, state.captureView(), request, { compress: kind === 'compressed', chunkBytes: CHUNK_BYTES });
  return { old, oldState, newState: { entries: model.copy(), nextOffset: model.nextOffset }, write };
}

function survivalFor(mode: number, next: () => number): UnsyncedSurvival | undefined {
  if (mode === 0) return undefined;
  if (mode === 1) return (size) => Math.floor(next() * (size + 1));
  return { randomPages: next };
}

describe('snapshot writes under power cuts', () => {
  for (const kind of ['full', 'compressed', 'incremental'] as const) {
    test(`a crash at any operation of a ${kind} snapshot write leaves the old set or the new complete one`, async () => {
      const next = random(testSeed(`snapshot crash points (${kind})`));
      const counting = new MemDisk();
      const { write } = await setup(counting, kind);
      const opsBefore = counting.ops;
      await write();
      const operations = counting.ops - opsBefore;
      assert.ok(operations >= 8, `${operations} operations`);
      let sawOld = 0;
      let sawNew = 0;
      // Operation `operations + 1` is none: the write completes and the power fails right after.
      for (let op = 1; op <= operations + 1; op++) {
        for (let mode = 0; mode < 3; mode++) {
          const disk = new MemDisk();
          const { old, oldState, newState, write: writeUnderTest } = await setup(disk, kind);
          if (op <= operations) {
            disk.crashAt(op, survivalFor(mode, next));
            await assert.rejects(writeUnderTest(), CrashError, `operation ${op} crashes`);
          } else {
            await writeUnderTest();
            disk.crash(survivalFor(mode, next));
          }
          const storage = disk.mount();
          const listing = listSnapshots(storage, DIR);
          assert.deepEqual(listing.unreadable, [], `operation ${op}, mode ${mode}: no partial file under a snapshot name`);
          const ids = listing.snapshots.map((s) => s.id);
          assert.ok(ids.length === 1 || ids.length === 2, `operation ${op}: ${ids.join()}`);
          assert.equal(ids[0], old.id);
          for (const snapshot of listing.snapshots) {
            const verified = await verifySnapshot(storage, snapshot.path);
            assert.ok(verified.ok, `operation ${op}, mode ${mode}: ${verified.ok ? '' : `${verified.file}: ${verified.reason}`}`);
          }
          const expected: { entries: Map<string, ModelEntry>; nextOffset: number } = ids.length === 1 ? oldState : newState;
          if (ids.length === 1) sawOld++;
          else sawNew++;
          const newest = await loadNewestSnapshot(storage, DIR);
          assert.deepEqual(newest.failures, []);
          assertStateEquals(newest.loaded!.state, expected.entries, expected.nextOffset);
        }
      }
      assert.ok(sawOld > 0, 'some crashes came before the new snapshot was durable');
      assert.ok(sawNew > 0, 'a crash after the directory sync keeps the new snapshot');
    });
  }
});
