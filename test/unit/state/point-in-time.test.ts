/**
 * The state at a point in time (point-in-time.ts) against a model: every record appended is kept
 * in a list, and the state at an offset or instant is that list replayed into a `Map` up to it.
 * Random appends (PUTs, DELETEs, keyless records, flushes), full and incremental snapshots, and
 * compactions that delete the segments below a snapshot; then the state at random offsets and
 * instants, built from the live log and from the segment files read offline, must equal the model,
 * or be refused with WAL_POINT_IN_TIME_UNAVAILABLE exactly when no snapshot and retained log reach
 * the point.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AppendRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError, WalError } from '../../../src/errors.js';
import { OfflineLog } from '../../../src/offline/offline-log.js';
import { Compactor } from '../../../src/state/compactor.js';
import { compactKeys } from '../../../src/state/key-compaction.js';
import { replayToPoint, walPointInTimeLog, type PointInTime, type PointInTimeLog, type PointInTimeState } from '../../../src/state/point-in-time.js';
import { PointInTimeReplays } from '../../../src/state/point-in-time-replays.js';
import { listSnapshots, loadSnapshot } from '../../../src/state/snapshot-reader.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import { DEFAULT_MAX_ENDED_TXNS } from '../../../src/state/txn-table.js';
import type { Storage } from '../../../src/storage/storage.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';
import { testSeed } from '../../support/seed.js';
import { assertStateEquals, type ModelEntry } from '../../support/state-model.js';

const DIR = '/data';
const SNAPSHOT_DIR = '/data/snapshots';
const NO_RETENTION = { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0 };

/** One record as appended: what the model replays. */
interface LoggedRecord {
  readonly offset: number;
  readonly timestamp: number;
  readonly type: 'put' | 'delete' | 'flush' | 'keyless';
  readonly key: string;
  readonly value: Buffer;
}

/** The state below `end` as the model says: the records replayed into a Map (keys by hex). */
function modelAt(records: readonly LoggedRecord[], end: number): Map<string, ModelEntry> {
  const entries = new Map<string, ModelEntry>();
  for (const record of records) {
    if (record.offset >= end) break;
    if (record.type === 'flush') entries.clear();
    else if (record.type === 'put') entries.set(Buffer.from(record.key).toString('hex'), { value: record.value, offset: record.offset, timestamp: record.timestamp });
    else if (record.type === 'delete') entries.delete(Buffer.from(record.key).toString('hex'));
  }
  return entries;
}

/** The offset a point resolves to by the model: an instant, the first record stamped after it. */
function modelOffset(records: readonly LoggedRecord[], point: PointInTime, end: number): number {
  if ('offset' in point) return point.offset;
  return records.find((record) => record.timestamp > point.timestampMs)?.offset ?? end;
}

/** Whether a state at `offset` can be built: a log from 0, or a snapshot between the first retained offset and it (or exactly at it). */
function isReachable(storage: Storage, firstOffset: number, offset: number, isInstant: boolean): boolean {
  if (isInstant && firstOffset > 0 && offset <= firstOffset) return false;
  if (firstOffset === 0) return true;
  return listSnapshots(storage, SNAPSHOT_DIR).snapshots.some((info) => info.type !== 'point' && info.walOffset <= offset && (info.walOffset >= firstOffset || info.walOffset === offset));
}

interface Fixture {
  readonly disk: MemDisk;
  readonly storage: Storage;
  readonly clock: FakeClock;
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  readonly compactor: Compactor;
  readonly records: LoggedRecord[];
  close(): Promise<void>;
}

async function openFixture(): Promise<Fixture> {
  const disk = new MemDisk();
  const storage = disk.mount();
  const clock = new FakeClock();
  const { wal } = await Wal.open({ dir: DIR, storage, segmentSizeBytes: 4096, indexIntervalBytes: 256, preallocate: false, clock: clock.now, onWarning: () => {} });
  const { keeper } = await StateKeeper.open({ wal, storage, clock: clock.now });
  const compactor = new Compactor({ wal, state: keeper, storage, options: NO_RETENTION, clock: clock.now });
  return {
    disk,
    storage,
    clock,
    wal,
    keeper,
    compactor,
    records: [],
    close: async () => {
      await compactor.idle();
      await keeper.close();
      await wal.close();
    },
  };
}

/** Appends one batch and logs it for the model. */
async function appendBatch(f: Fixture, batch: readonly { kind: 'put' | 'delete' | 'keyless'; key: number; size: number }[]): Promise<void> {
  const records: AppendRecord[] = batch.map((r, i) => {
    const key = Buffer.from(`key-${r.key}`);
    if (r.kind === 'keyless') return { value: Buffer.from(`plain ${i}`) };
    if (r.kind === 'delete') return { type: 'delete', key, value: Buffer.alloc(0) };
    return { key, value: Buffer.alloc(r.size, `v${f.wal.nextOffset + i}.`) };
  });
  const result = await f.keeper.append(records);
  records.forEach((record, i) => {
    const kind = batch[i]!.kind;
    f.records.push({ offset: result.firstOffset + i, timestamp: result.timestamp, type: kind, key: `key-${batch[i]!.key}`, value: Buffer.from(record.value) });
  });
}

async function flush(f: Fixture): Promise<void> {
  const { offset } = await f.keeper.flushAll();
  const [record] = await f.wal.read(offset, { limit: 1 });
  f.records.push({ offset, timestamp: record!.timestamp, type: 'flush', key: '', value: Buffer.alloc(0) });
}

/** Logs the checkpoint a compaction appended (its timestamp read back), so the model's offsets stay dense. */
async function logCheckpoints(f: Fixture): Promise<void> {
  const next = f.records.length === 0 ? 0 : f.records[f.records.length - 1]!.offset + 1;
  for (let offset = next; offset < f.wal.nextOffset; offset++) {
    const [record] = await f.wal.read(offset, { limit: 1 });
    f.records.push({ offset, timestamp: record!.timestamp, type: 'keyless', key: '', value: Buffer.alloc(0) });
  }
}

/** Builds the state at `point` from `log`, or the refusal. */
async function buildAt(f: Fixture, log: PointInTimeLog, point: PointInTime): Promise<PointInTimeState | WalError> {
  try {
    return await replayToPoint({ log, storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS, pageBytes: 256 }, { to: point });
  } catch (error) {
    if (isWalError(error, 'WAL_POINT_IN_TIME_UNAVAILABLE')) return error;
    throw error;
  }
}

function checkPoint(f: Fixture, built: PointInTimeState | WalError, point: PointInTime, firstOffset: number, where: string): void {
  const end = f.wal.nextOffset;
  const offset = modelOffset(f.records, point, end);
  const reachable = isReachable(f.storage, firstOffset, offset, !('offset' in point));
  const label = `${where} at ${JSON.stringify(point)} (offset ${offset}, first retained ${firstOffset})`;
  if (built instanceof WalError) {
    assert.equal(reachable, false, `${label}: refused (${built.message}) though a snapshot and the log reach it`);
    assert.equal(built.details['firstOffset'], firstOffset, `${label}: the refusal names the first retained offset`);
    const earliest = built.details['earliestOffset'];
    if (earliest !== undefined) assert.ok(isReachable(f.storage, firstOffset, earliest as number, false), `${label}: the earliest offset named (${String(earliest)}) is reachable`);
    return;
  }
  assert.equal(reachable, true, `${label}: built though nothing reaches it`);
  assert.equal(built.nextOffset, offset, `${label}: resolved offset`);
  assertStateEquals(built.state, modelAt(f.records, offset), offset);
  assert.equal(built.absentOffsets, 0, `${label}: no offset is absent from a log never key-compacted`);
  assert.ok(built.snapshot === undefined || built.snapshot.walOffset <= offset, `${label}: the snapshot used is at or below the point`);
}

const command = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), records: fc.array(fc.record({ kind: fc.constantFrom('put' as const, 'put' as const, 'delete' as const, 'keyless' as const), key: fc.nat({ max: 9 }), size: fc.nat({ max: 150 }) }), { minLength: 1, maxLength: 6 }), advanceMs: fc.nat({ max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), incremental: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
);

describe('the state at a point in time', { timeout: 300_000 }, () => {
  test('equals the model replayed to random offsets and instants, across snapshots and compaction, live and offline', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { minLength: 10, maxLength: 80 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 6, maxLength: 6 }),
        async (commands, picks) => {
          const f = await openFixture();
          try {
            for (const c of commands) {
              if (c.kind === 'append') {
                f.clock.advance(c.advanceMs);
                await appendBatch(f, c.records);
              } else if (c.kind === 'flush') {
                f.clock.advance(1);
                await flush(f);
              } else if (c.kind === 'snapshot') {
                await f.keeper.createSnapshot({ incremental: c.incremental }).catch((error: unknown) => {
                  if (!isWalError(error, 'WAL_SNAPSHOT_NO_BASE')) throw error;
                });
              } else {
                await f.compactor.compact();
                await logCheckpoints(f);
              }
            }
            const end = f.wal.nextOffset;
            const firstTs = f.records[0]?.timestamp ?? f.clock.nowMs;
            const points: PointInTime[] = [
              { offset: Math.min(end, Math.floor(picks[0]! * (end + 1))) },
              { offset: Math.min(end, Math.floor(picks[1]! * (end + 1))) },
              { offset: end },
              { timestampMs: firstTs - 1 + Math.floor(picks[2]! * (f.clock.nowMs - firstTs + 3)) },
              { timestampMs: firstTs - 1 + Math.floor(picks[3]! * (f.clock.nowMs - firstTs + 3)) },
              { timestampMs: f.records[Math.floor(picks[4]! * f.records.length)]?.timestamp ?? firstTs },
            ];
            const offline = await OfflineLog.open(f.storage, DIR);
            for (const point of points) {
              checkPoint(f, await buildAt(f, walPointInTimeLog(f.wal), point), point, f.wal.firstOffset, 'live');
              checkPoint(f, await buildAt(f, offline, point), point, f.wal.firstOffset, 'offline');
            }
          } finally {
            await f.close();
          }
        },
      ),
      { seed: testSeed('point in time against a model'), numRuns: 40 },
    );
  });

  test('a point before the first retained record of a compacted log is refused naming the earliest state available', async () => {
    const f = await openFixture();
    try {
      for (let i = 0; i < 40; i++) {
        f.clock.advance(1);
        await appendBatch(f, [{ kind: 'put', key: i % 5, size: 100 }, { kind: 'put', key: (i + 1) % 5, size: 100 }]);
      }
      const compacted = await f.compactor.compact();
      await logCheckpoints(f);
      assert.ok(compacted.segmentsDeleted > 0 && f.wal.firstOffset > 0, 'the compaction deleted segments');
      const firstOffset = f.wal.firstOffset;
      const log = walPointInTimeLog(f.wal);
      for (const point of [{ offset: firstOffset - 1 }, { offset: 0 }, { timestampMs: f.records[0]!.timestamp }]) {
        const refused = await buildAt(f, log, point);
        assert.ok(refused instanceof WalError, `the state at ${JSON.stringify(point)} is refused`);
        assert.equal(refused.code, 'WAL_POINT_IN_TIME_UNAVAILABLE');
        assert.equal(refused.details['firstOffset'], firstOffset);
        assert.equal(refused.details['earliestOffset'], compacted.snapshotOffset, 'the earliest state is the compaction snapshot');
        assert.equal(typeof refused.details['earliestTimestampMs'], 'number', 'and its instant is named');
      }
      // The earliest state named is available, and equals the model.
      const at = { offset: compacted.snapshotOffset };
      checkPoint(f, await buildAt(f, log, at), at, firstOffset, 'live');
      await assert.rejects(replayToPoint({ log, storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS }, { to: { offset: f.wal.nextOffset + 1 } }), (error: unknown) => isWalError(error, 'WAL_OFFSET_OUT_OF_RANGE'));
    } finally {
      await f.close();
    }
  });

  test('a snapshot exactly at the first retained offset serves that offset, not an instant before its record, nor an older snapshot below it', async () => {
    const f = await openFixture();
    try {
      for (let b = 0; f.wal.listSegments().length < 4 && b < 1000; b++) {
        f.clock.advance(1);
        await appendBatch(f, [{ kind: 'put', key: b % 7, size: 60 }, { kind: b % 3 === 0 ? 'delete' : 'put', key: (b + 3) % 7, size: 30 }]);
      }
      const base = f.wal.listSegments().at(-1)!.baseOffset;
      const replays = new PointInTimeReplays({ wal: f.wal, storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS, maxBuilds: 2, exclusive: (run) => f.compactor.exclusive(run), clock: f.clock.now });
      await replays.snapshotAt({ offset: base - 5 });
      await replays.snapshotAt({ offset: base });
      // The newest snapshot by offset (at `base`) covers the segments below it.
      await f.compactor.deleteSegmentsBefore(base);
      assert.equal(f.wal.firstOffset, base, 'the log starts at the snapshot');
      const log = walPointInTimeLog(f.wal);
      const exact = await buildAt(f, log, { offset: base });
      assert.ok(!(exact instanceof WalError), 'the state at the first retained offset is the snapshot');
      assertStateEquals(exact.state, modelAt(f.records, base), base);
      for (const point of [{ offset: base - 1 }, { offset: base - 5 + 1 }, { timestampMs: f.records[base - 1]!.timestamp - 1 }]) {
        const refused = await buildAt(f, log, point);
        assert.ok(refused instanceof WalError, `the state at ${JSON.stringify(point)} is refused: the log below ${base} is gone`);
        assert.equal(refused.details['earliestOffset'], base);
      }
      const later = { offset: f.wal.nextOffset };
      checkPoint(f, await buildAt(f, log, later), later, base, 'live');
    } finally {
      await f.close();
    }
  });

  test('a snapshot written at an earlier point holds that state, and recovery still starts from the newest snapshot', async () => {
    const f = await openFixture();
    try {
      for (let i = 0; i < 30; i++) {
        f.clock.advance(1);
        await appendBatch(f, [{ kind: i % 4 === 3 ? 'delete' : 'put', key: i % 6, size: 20 }]);
      }
      await f.keeper.createSnapshot();
      const replays = new PointInTimeReplays({ wal: f.wal, storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS, maxBuilds: 1, exclusive: (run) => f.compactor.exclusive(run), clock: f.clock.now });
      const { built, written } = await replays.snapshotAt({ offset: 12 });
      assert.equal(written.walOffset, 12);
      assert.equal(written.type, 'full');
      assertStateEquals(built.state, modelAt(f.records, 12), 12);
      // The older snapshot is a true state: the state at 12 built from it alone is the same.
      const again = await buildAt(f, walPointInTimeLog(f.wal), { offset: 12 });
      assert.ok(!(again instanceof WalError));
      assert.equal(again.snapshot?.id, written.id, 'the snapshot at the point is used');
      assertStateEquals(again.state, modelAt(f.records, 12), 12);
      // A reopen starts from the newest snapshot by offset, not the one just written.
      await f.keeper.close();
      const reopened = await StateKeeper.open({ wal: f.wal, storage: f.storage });
      try {
        assert.equal(reopened.report.snapshot?.walOffset, 30);
      } finally {
        await reopened.keeper.close();
      }
    } finally {
      await f.compactor.idle();
      await f.wal.close();
    }
  });

  test('builds beyond max_point_in_time_builds are refused with WAL_TOO_MANY_BUILDS', async () => {
    const f = await openFixture();
    try {
      await appendBatch(f, [{ kind: 'put', key: 1, size: 10 }]);
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      // The one build allowed waits in the compactor's queue behind a held run.
      void f.compactor.exclusive(() => held);
      const replays = new PointInTimeReplays({ wal: f.wal, storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS, maxBuilds: 1, exclusive: (run) => f.compactor.exclusive(run) });
      const first = replays.snapshotAt(undefined);
      assert.equal(replays.buildCount, 1);
      await assert.rejects(replays.stateAt({ offset: 1 }), (error: unknown) => isWalError(error, 'WAL_TOO_MANY_BUILDS') && error.details['limit'] === 1);
      release();
      await first;
      assert.equal(replays.buildCount, 0);
      assert.equal((await replays.stateAt({ offset: 1 })).state.size, 1);
    } finally {
      await f.close();
    }
  });

  test('a state over max_state_bytes is refused with WAL_STATE_FULL', async () => {
    const f = await openFixture();
    try {
      for (let i = 0; i < 20; i++) await appendBatch(f, [{ kind: 'put', key: i, size: 100 }]);
      await assert.rejects(
        replayToPoint({ log: walPointInTimeLog(f.wal), storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1000, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS }),
        (error: unknown) => isWalError(error, 'WAL_STATE_FULL') && error.details['configKey'] === 'max_state_bytes',
      );
    } finally {
      await f.close();
    }
  });
  test('a transaction in doubt at the snapshot a build starts from commits (or aborts) in the replay, and a snapshot of a point carries the transactions in doubt there', async () => {
    const f = await openFixture();
    try {
      const put = (key: string, value: string) => ({ op: 'put' as const, key: Buffer.from(key), value: Buffer.from(value) });
      await f.keeper.prepare(Buffer.from('t-commit'), [put('a', 'from t-commit'), put('b', 'also')]);
      await f.keeper.prepare(Buffer.from('t-abort'), [put('c', 'never')]);
      await f.keeper.createSnapshot();
      const inDoubtAt = f.wal.nextOffset;
      await f.keeper.commit(Buffer.from('t-commit'));
      await f.keeper.abort(Buffer.from('t-abort'), 'test');
      const built = await replayToPoint({ log: walPointInTimeLog(f.wal), storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS }, {});
      assert.equal(built.snapshot?.walOffset, inDoubtAt, 'the build starts from the snapshot taken while both were in doubt');
      assert.equal(built.state.get(Buffer.from('a'))?.value.toString(), 'from t-commit');
      assert.equal(built.state.get(Buffer.from('b'))?.value.toString(), 'also');
      assert.equal(built.state.get(Buffer.from('c')), undefined, 'the aborted one changes nothing');
      assert.deepEqual(built.txns.inDoubtList(), []);
      const replays = new PointInTimeReplays({ wal: f.wal, storage: f.storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS, maxBuilds: 1, exclusive: (run) => f.compactor.exclusive(run), clock: f.clock.now });
      const { written } = await replays.snapshotAt({ offset: inDoubtAt });
      const loaded = await loadSnapshot(f.storage, written.path);
      assert.ok(loaded.ok);
      assert.deepEqual(
        loaded.txns.inDoubtList().map((txn) => Buffer.from(txn.id).toString()).sort(),
        ['t-abort', 't-commit'],
        'the snapshot of the point holds both transactions in doubt there',
      );
    } finally {
      await f.close();
    }
  });
  test('with a small txn_max_ended, an id forgotten and prepared again applies as live, from the log and from a snapshot', async () => {
    const storage = new MemDisk().mount();
    const clock = new FakeClock();
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, clock: clock.now, onWarning: () => {} });
    const { keeper } = await StateKeeper.open({ wal, storage, clock: clock.now, options: { txnMaxEnded: 1 } });
    const compactor = new Compactor({ wal, state: keeper, storage, options: NO_RETENTION, clock: clock.now });
    const put = (key: string, value: string) => ({ op: 'put' as const, key: Buffer.from(key), value: Buffer.from(value) });
    /** Ends `first` then `other` (so that `first` is forgotten), then prepares and commits `first` again. */
    const reuse = async (first: string, other: string, key: string, beforeOther?: () => Promise<unknown>) => {
      await keeper.prepare(Buffer.from(first), [put(key, 'first')]);
      await keeper.commit(Buffer.from(first));
      await beforeOther?.();
      await keeper.prepare(Buffer.from(other), []);
      await keeper.commit(Buffer.from(other));
      // Ends in flight count as remembered; once applied, the view's table (of one) decides.
      await keeper.caughtUp();
      await keeper.prepare(Buffer.from(first), [put(key, 'again')]);
      await keeper.commit(Buffer.from(first));
    };
    const replays = new PointInTimeReplays({ wal, storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: 1, maxBuilds: 1, exclusive: (run) => compactor.exclusive(run), clock: clock.now });
    try {
      await reuse('t1', 't2', 'a');
      const fromLog = wal.nextOffset;
      await reuse('t3', 't4', 'b', () => keeper.createSnapshot());
      assert.equal((await keeper.get(Buffer.from('a')))?.value.toString(), 'again', 'live, the forgotten id commits again');
      assert.equal((await keeper.get(Buffer.from('b')))?.value.toString(), 'again');
      const early = await replays.stateAt({ offset: fromLog });
      assert.equal(early.snapshot, undefined, 'built from the log alone');
      assert.equal(early.state.get(Buffer.from('a'))?.value.toString(), 'again');
      const late = await replays.stateAt(undefined);
      assert.notEqual(late.snapshot, undefined, 'built from the snapshot taken while t3 was remembered');
      assert.equal(late.state.get(Buffer.from('b'))?.value.toString(), 'again');
      await keeper.close();
      await wal.close();
      const offline = await replayToPoint({ log: await OfflineLog.open(storage, DIR), storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: 1 });
      assert.equal(offline.state.get(Buffer.from('a'))?.value.toString(), 'again');
      assert.equal(offline.state.get(Buffer.from('b'))?.value.toString(), 'again');
    } finally {
      await compactor.idle();
      await keeper.close();
      await wal.close();
    }
  });

  test('a point past a key-compaction gap holds only the records before it', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096 });
    const { keeper } = await StateKeeper.open({ wal, storage, options: { tombstoneRetentionMs: 0 } });
    try {
      // b at 0, a at 1..5, c at 6, then filler until the segment seals; key compaction drops a's 1..4.
      await keeper.append([{ key: Buffer.from('b'), value: Buffer.from('0') }]);
      for (let i = 1; i <= 5; i++) await keeper.append([{ key: Buffer.from('a'), value: Buffer.from(String(i)) }]);
      await keeper.append([{ key: Buffer.from('c'), value: Buffer.from('6') }]);
      for (let i = 0; i < 100 && wal.stats().segmentCount === 1; i++) await keeper.append([{ key: Buffer.from(`f${i}`), value: Buffer.alloc(200, 1) }]);
      await keeper.caughtUp();
      await compactKeys(keeper, wal, { thresholdPercent: 0 });
      const source = { log: walPointInTimeLog(wal), storage, snapshotDir: SNAPSHOT_DIR, maxStateBytes: 1 << 30, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS };
      // Inside the gap the state is what the compacted log still says (a's dropped PUTs are gone);
      // past it, every key the log holds below the point, and nothing from after it.
      for (const offset of [2, 3, 6, 7]) assert.equal((await replayToPoint(source, { to: { offset } })).nextOffset, offset);
      const at7 = await replayToPoint(source, { to: { offset: 7 } });
      assert.deepEqual(at7.state.list({ limit: 10 }).entries.map((e) => e.key.toString()), ['a', 'b', 'c']);
      assert.equal(at7.state.get(Buffer.from('a'))?.value.toString(), '5');
      // A state with offsets key compaction removed is not written as a snapshot: it would be
      // loaded and restored as exact. The exact state at the log's end is.
      const replays = new PointInTimeReplays({ ...source, wal, maxBuilds: 1, exclusive: (run) => run() });
      const refused = await replays.snapshotAt({ offset: 3 }).catch((error: unknown) => error);
      assert.ok(isWalError(refused, 'WAL_POINT_IN_TIME_UNAVAILABLE'), `refused: ${String(refused)}`);
      assert.equal(refused.details['absentOffsets'], 2);
      assert.equal(listSnapshots(storage, SNAPSHOT_DIR).snapshots.length, 0, 'nothing written');
      const { written } = await replays.snapshotAt({ offset: 1 });
      assert.equal(written.walOffset, 1, 'a point before the gap is exact');
    } finally {
      await keeper.close();
      await wal.close();
    }
  });
});
