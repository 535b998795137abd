/**
 * A power cut at every disk operation of a compaction (snapshot write, its rename and directory
 * sync, the durability sync of the snapshot, the checkpoint append, each segment and index
 * unlink, the log directory sync, the pruning of an old snapshot), with the unsynced bytes lost,
 * kept as a prefix, or kept page by page in any order: afterwards the log and its view reopen, the
 * view equals the model, every retained record reads back as appended, no offset is reused, and
 * the next compaction finishes the job.
 *
 * Randomised (which unsynced bytes survive): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../src/engine/wal.js';
import { Compactor } from '../../src/state/compactor.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../src/state/state-options.js';
import { FakeClock } from '../support/fake-clock.js';
import { MemDisk, type UnsyncedSurvival } from '../support/mem-disk.js';
import { random, testSeed } from '../support/seed.js';

const DIR = '/data';
const OPTIONS = { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0, keepSnapshots: 1 };

interface Model {
  /** Keys by name: value and offset of the latest put. */
  readonly entries: Map<string, { value: string; offset: number }>;
  /** Every appended record's value, by offset. */
  readonly values: Map<number, string>;
  lastOffset: number;
}

async function openAll(disk: MemDisk, clock: FakeClock) {
  const storage = disk.mount();
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096, clock: clock.now, onWarning: () => {} });
  try {
    const { keeper } = await StateKeeper.open({ wal, storage });
    const compactor = new Compactor({ wal, state: keeper, storage, options: OPTIONS, clock: clock.now });
    return { wal, keeper, compactor };
  } catch (error) {
    await wal.close();
    throw error;
  }
}

/** The same log in every run: puts and deletes over a few keys, an older snapshot, then more. */
async function setup(disk: MemDisk, clock: FakeClock): Promise<{ opened: Awaited<ReturnType<typeof openAll>>; model: Model }> {
  const opened = await openAll(disk, clock);
  const model: Model = { entries: new Map(), values: new Map(), lastOffset: -1 };
  const next = random(7);
  for (let i = 0; i < 160; i++) {
    if (i === 60) await opened.keeper.createSnapshot();
    const key = `key-${Math.floor(next() * 12)}`;
    const isDelete = next() < 0.2;
    const value = isDelete ? '' : `value ${i} `.padEnd(60 + (i % 40), '.');
    const { firstOffset } = await opened.wal.append([{ key: Buffer.from(key), value: Buffer.from(value), type: isDelete ? 'delete' : 'put' }]);
    model.values.set(firstOffset, value);
    model.lastOffset = firstOffset;
    if (isDelete) model.entries.delete(key);
    else model.entries.set(key, { value, offset: firstOffset });
  }
  await opened.keeper.caughtUp();
  return { opened, model };
}

function survivalFor(mode: number, next: () => number): UnsyncedSurvival | undefined {
  if (mode === 0) return undefined;
  if (mode === 1) return (size) => Math.floor(next() * (size + 1));
  return { randomPages: next };
}

async function viewOf(keeper: StateKeeper): Promise<Map<string, { value: string; offset: number }>> {
  const page = await keeper.listKeys({ limit: 1000, maxBytes: 1 << 20 });
  const rows = new Map<string, { value: string; offset: number }>();
  for (const info of page.keys) {
    const entry = (await keeper.get(info.key))!;
    rows.set(info.key.toString(), { value: entry.value.toString(), offset: entry.offset });
  }
  return rows;
}

/** Reopens after the crash and checks everything the header promises; `where` names the run. */
async function verify(disk: MemDisk, clock: FakeClock, model: Model, where: string): Promise<void> {
  const opened = await openAll(disk, clock);
  try {
    const { wal, keeper, compactor } = opened;
    assert.deepEqual(await viewOf(keeper), model.entries, `${where}: the view`);
    assert.ok(wal.nextOffset > model.lastOffset, `${where}: no acknowledged record lost`);
    for await (const record of wal.range(wal.firstOffset)) {
      if (record.offset <= model.lastOffset) assert.equal(record.value.toString(), model.values.get(record.offset), `${where}: record ${record.offset}`);
      else assert.equal(record.type, 'checkpoint', `${where}: only a checkpoint follows the workload`);
    }
    const { firstOffset } = await wal.append([{ value: Buffer.from('after') }]);
    assert.equal(firstOffset, wal.nextOffset - 1);
    assert.ok(firstOffset > model.lastOffset, `${where}: offset ${firstOffset} is not reused`);
    const finished = await compactor.compact();
    for (const segment of wal.listSegments()) {
      assert.ok(segment.isActive || segment.nextOffset > finished.snapshotOffset, `${where}: the next compaction deletes every covered segment`);
    }
    assert.deepEqual(await viewOf(keeper), model.entries, `${where}: the view after the next compaction`);
  } finally {
    await opened.keeper.close();
    await opened.wal.close();
  }
}

describe('compaction under power cuts', { timeout: 600_000 }, () => {
  test('a crash at any disk operation of a compaction keeps the state, every retained record and the offsets', async () => {
    const next = random(testSeed('compaction crash points'));
    const clock = new FakeClock();
    const counting = new MemDisk();
    const { opened } = await setup(counting, clock);
    const opsBefore = counting.ops;
    const done = await opened.compactor.compact();
    const operations = counting.ops - opsBefore;
    assert.ok(done.segmentsDeleted >= 5 && done.snapshotsDeleted === 1, `${done.segmentsDeleted} segments, ${done.snapshotsDeleted} snapshots deleted`);
    assert.ok(operations >= 20, `${operations} operations`);
    await opened.keeper.close();
    await opened.wal.close();
    let crashedBeforeDelete = 0;
    let crashedAfterDelete = 0;
    // Operation `operations + 1` is none: the compaction completes and the power fails right after.
    for (let op = 1; op <= operations + 1; op++) {
      for (let mode = 0; mode < 3; mode++) {
        const disk = new MemDisk();
        const { opened: run, model } = await setup(disk, clock);
        if (op <= operations) {
          disk.crashAt(op, survivalFor(mode, next));
          // A crash inside a step that swallows disk errors (pruning) lets the call resolve.
          await run.compactor.compact().catch(() => undefined);
          assert.equal(disk.crashes, 1, `operation ${op} crashes`);
        } else {
          await run.compactor.compact();
          disk.crash(survivalFor(mode, next));
        }
        await run.keeper.close().catch(() => undefined);
        await run.wal.close().catch(() => undefined);
        const firstOffset = (await Wal.open({ dir: DIR, storage: disk.mount(), preallocate: false, segmentSizeBytes: 4096, onWarning: () => {} }).then(async ({ wal }) => {
          const first = wal.firstOffset;
          await wal.close();
          return first;
        }));
        if (firstOffset === 0) crashedBeforeDelete++;
        else crashedAfterDelete++;
        await verify(disk, clock, model, `crash at operation ${op}/${operations}, mode ${mode}`);
      }
    }
    assert.ok(crashedBeforeDelete > 0 && crashedAfterDelete > 0, `${crashedBeforeDelete} runs kept the whole log, ${crashedAfterDelete} lost its compacted part`);
  });
  for (const syncPolicy of ['none', 'interval'] as const) {
    test(`under ${syncPolicy}, a power cut after a compaction leaves a log that opens with the state of every record it kept`, async () => {
      const next = random(testSeed(`compaction power cut ${syncPolicy}`));
      for (let mode = 0; mode < 3; mode++) {
        const disk = new MemDisk();
        const walOptions = { dir: DIR, preallocate: false, segmentSizeBytes: 4096, syncPolicy, syncIntervalMs: 3_600_000, onWarning: () => {} };
        const { wal } = await Wal.open({ ...walOptions, storage: disk.mount() });
        const { keeper } = await StateKeeper.open({ wal, storage: disk.mount() });
        // Key i % 10 at offset i: the records after the last sync are only written.
        for (let i = 0; i < 200; i++) await wal.append([{ key: Buffer.from(`key-${i % 10}`), value: Buffer.from(`value ${i}`.padEnd(80, '.')) }]);
        const done = await new Compactor({ wal, state: keeper, storage: disk.mount(), options: OPTIONS }).compact();
        assert.ok(done.segmentsDeleted > 0, 'the compaction deleted segments');
        disk.crash(survivalFor(mode, next));
        await keeper.close().catch(() => undefined);
        await wal.close().catch(() => undefined);
        const reopened = await Wal.open({ ...walOptions, storage: disk.mount() });
        try {
          // Opens (before the fix: WAL_STATE_LOST, the only snapshot beyond the log's end).
          const { keeper: view } = await StateKeeper.open({ wal: reopened.wal, storage: disk.mount() });
          try {
            assert.ok(reopened.wal.nextOffset >= done.snapshotOffset, `mode ${mode}: the log reaches the snapshot's offset ${done.snapshotOffset} (next offset ${reopened.wal.nextOffset})`);
            const kept = Math.min(200, reopened.wal.nextOffset);
            const expected = new Map<string, string>();
            for (let i = 0; i < kept; i++) expected.set(`key-${i % 10}`, `value ${i}`.padEnd(80, '.'));
            const actual = new Map<string, string>();
            for (const key of expected.keys()) actual.set(key, (await view.get(Buffer.from(key)))?.value.toString() ?? '(none)');
            assert.deepEqual(actual, expected, `mode ${mode}: the view`);
          } finally {
            await view.close();
          }
        } finally {
          await reopened.wal.close();
        }
      }
    });
  }
});
