/**
 * A power cut at every disk operation of `wald repair --truncate-at` (applyTruncation), with the
 * unsynced bytes lost, kept as a prefix, or kept page by page in any order: afterwards the log
 * opens, holds a prefix of what it held that is never shorter than the offset, no snapshot of cut
 * records is left once records are gone, and running the same repair again finishes it.
 *
 * Randomised (which unsynced bytes survive): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal, type AppendRecord, type WalOptions } from '../../src/index.js';
import { applyTruncation, planTruncation } from '../../src/offline/log-truncation.js';
import { KeyState } from '../../src/state/key-state.js';
import { listSnapshots } from '../../src/state/snapshot-reader.js';
import { writeSnapshot } from '../../src/state/snapshot-writer.js';
import type { Storage } from '../../src/storage/storage.js';
import { assertRecordsEqual, readAllRecords } from '../support/expect-records.js';
import { FakeClock } from '../support/fake-clock.js';
import { CrashError, MemDisk, type UnsyncedSurvival } from '../support/mem-disk.js';
import { testBatch } from '../support/offline-log.js';
import { random, testSeed } from '../support/seed.js';

const DIR = '/data';
const SNAPSHOTS = '/data/snapshots';
const BATCHES = 80;
/** Batch 15's first offset: inside the first of three segments, with snapshots below and above it. */
const OFFSET = 30;

function options(storage: Storage): WalOptions {
  return { dir: DIR, storage, syncPolicy: 'always', segmentSizeBytes: 4096, preallocate: false, clock: new FakeClock().now };
}

async function snapshotAt(storage: Storage, walOffset: number): Promise<void> {
  const state = new KeyState();
  for (let offset = 0; offset < walOffset; offset++) state.apply({ offset, timestamp: offset, type: 'put', key: Buffer.from(`k${offset % 3}`), value: Buffer.from(`v${offset}`) });
  await writeSnapshot(storage, SNAPSHOTS, state.captureView(), { type: 'full' });
}

/** The same directory in every run: a cleanly closed log of several segments, reopened once (so its recovery point covers it), and two snapshots. */
async function setup(disk: MemDisk): Promise<AppendRecord[]> {
  const storage = disk.mount();
  const { wal } = await Wal.open(options(storage));
  const records: AppendRecord[] = [];
  for (let b = 0; b < BATCHES; b++) {
    await wal.append(testBatch(b));
    records.push(...testBatch(b));
  }
  await wal.close();
  await (await Wal.open(options(storage))).wal.close();
  await snapshotAt(storage, 20);
  await snapshotAt(storage, 150);
  return records;
}

async function repair(storage: Storage): Promise<void> {
  applyTruncation(storage, DIR, await planTruncation(storage, DIR, OFFSET, 'snapshots'), 1_800_000_000_000);
}

function survivalFor(mode: number, next: () => number): UnsyncedSurvival | undefined {
  if (mode === 0) return undefined;
  if (mode === 1) return (size) => Math.floor(next() * (size + 1));
  return { randomPages: next };
}

describe('wald repair under power cuts', () => {
  test('a crash at any operation of a truncation leaves a log that opens, holds a prefix no shorter than the offset, and a second run finishes the cut', async () => {
    const next = random(testSeed('repair crash points'));
    const counting = new MemDisk();
    await setup(counting);
    const plan = await planTruncation(counting.mount(), DIR, OFFSET, 'snapshots');
    assert.ok(plan.removedSegments.length >= 2, `${plan.removedSegments.length} segments removed`);
    const opsBefore = counting.ops;
    applyTruncation(counting.mount(), DIR, plan, 1_800_000_000_000);
    const operations = counting.ops - opsBefore;
    assert.ok(operations >= 10, `${operations} operations`);
    const lengths = new Set<number>();
    for (let op = 1; op <= operations + 1; op++) {
      for (let mode = 0; mode < 3; mode++) {
        const at = `operation ${op}, mode ${mode}`;
        const disk = new MemDisk();
        const records = await setup(disk);
        if (op <= operations) {
          const storage = disk.mount();
          const planned = await planTruncation(storage, DIR, OFFSET, 'snapshots');
          disk.crashAt(op, survivalFor(mode, next));
          assert.throws(() => applyTruncation(storage, DIR, planned, 1_800_000_000_000), (error: unknown) => error instanceof CrashError || (error as Error).cause instanceof CrashError, at);
        } else {
          await repair(disk.mount());
          disk.crash(survivalFor(mode, next));
        }
        const storage = disk.mount();
        const { wal } = await Wal.open(options(storage)).catch((error: unknown) => assert.fail(`${at}: the log does not open: ${String(error)}`));
        try {
          const length = wal.nextOffset;
          lengths.add(length);
          assert.ok(length >= OFFSET && length <= records.length, `${at}: the log ends at ${length}`);
          assertRecordsEqual(await readAllRecords(wal), records.slice(0, length));
          if (length < records.length) {
            const above = listSnapshots(storage, SNAPSHOTS).snapshots.filter((s) => s.walOffset > OFFSET);
            assert.deepEqual(above, [], `${at}: records are gone, so is the snapshot of them`);
          }
        } finally {
          await wal.close();
        }
        await repair(storage);
        const { wal: finished } = await Wal.open(options(storage));
        try {
          assert.equal(finished.nextOffset, OFFSET, `${at}: the second run cuts at the offset`);
          assertRecordsEqual(await readAllRecords(finished), records.slice(0, OFFSET));
        } finally {
          await finished.close();
        }
      }
    }
    assert.ok(lengths.has(BATCHES * 2) && lengths.has(OFFSET), `lengths seen: ${[...lengths].join()}`);
  });
});
