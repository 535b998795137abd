/**
 * Key compaction (`compactKeys`) over a real log and its view on a MemDisk: it keeps exactly the
 * records the view needs (latest PUT per key, keyless and server records, tombstones by the
 * retention and snapshot rule), the view rebuilt afterwards (from the log alone and from a
 * snapshot) equals a plain `Map` model, every retained record reads back as appended, and a tail
 * following the log across the rewrite gets every live record in order.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AppendRecord, WalRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { compactKeys } from '../../../src/state/key-compaction.js';
import { writeSnapshot } from '../../../src/state/snapshot-writer.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import type { Storage } from '../../../src/storage/storage.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';
import { testSeed } from '../../support/seed.js';

const DIR = '/data';
const SNAPSHOTS = '/data/snapshots';
const HOUR_MS = 3_600_000;

interface Opened {
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  close(): Promise<void>;
}

async function openKeeper(storage: Storage, clock: FakeClock, tombstoneRetentionMs = HOUR_MS): Promise<Opened> {
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096, indexIntervalBytes: 256, clock: clock.now, onWarning: () => {} });
  const { keeper } = await StateKeeper.open({ wal, storage, options: { tombstoneRetentionMs } });
  return {
    wal,
    keeper,
    async close() {
      await keeper.close();
      await wal.close();
    },
  };
}

/** What was appended at each offset, and the key-value model. */
class Log {
  readonly appended = new Map<number, AppendRecord>();
  readonly model = new Map<string, { value: string; offset: number }>();

  constructor(
    private readonly opened: Opened,
    private readonly clock: FakeClock,
  ) {}

  async append(records: AppendRecord[]): Promise<void> {
    this.clock.advance(1);
    const { firstOffset } = await this.opened.keeper.append(records);
    records.forEach((record, i) => {
      this.appended.set(firstOffset + i, record);
      if (record.type === 'flush_all') this.model.clear();
      if (record.key === undefined) return;
      const key = record.key.toString();
      if (record.type === 'delete') this.model.delete(key);
      else if ((record.type ?? 'put') === 'put') this.model.set(key, { value: record.value.toString(), offset: firstOffset + i });
    });
  }

  put(key: string, value: string): Promise<void> {
    return this.append([{ key: Buffer.from(key), value: Buffer.from(value.padEnd(50, '.')) }]);
  }

  delete(key: string): Promise<void> {
    return this.append([{ type: 'delete', key: Buffer.from(key), value: Buffer.alloc(0) }]);
  }

  /** Fills the active segment with keyless records until it rotates, so what came before is sealed. */
  async seal(): Promise<void> {
    const before = this.opened.wal.stats().segmentCount;
    for (let i = 0; i < 200 && this.opened.wal.stats().segmentCount === before; i++) await this.append([{ value: Buffer.alloc(100, 'f') }]);
  }
}

async function readAll(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(record);
  return out;
}

/** Every key of the view with value and offset, sorted by key. */
async function viewOf(keeper: StateKeeper): Promise<[string, string, number][]> {
  const listed = await keeper.listKeys({ limit: 100_000, maxBytes: 1 << 30 });
  const out: [string, string, number][] = [];
  for (const info of listed.keys) {
    const entry = (await keeper.get(info.key))!;
    out.push([info.key.toString(), entry.value.toString(), entry.offset]);
  }
  return out;
}

function modelOf(log: Log): [string, string, number][] {
  return [...log.model].map(([key, e]): [string, string, number] => [key, e.value.padEnd(50, '.'), e.offset]).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Every retained record reads back as it was appended at its offset. */
function assertRetainedIntact(records: readonly WalRecord[], log: Log, label: string): void {
  for (const record of records) {
    const appended = log.appended.get(record.offset);
    assert.ok(appended !== undefined, `${label}: offset ${record.offset} was appended`);
    assert.equal(record.type, appended.type ?? 'put', `${label}: type at ${record.offset}`);
    assert.equal(record.key?.toString(), appended.key?.toString(), `${label}: key at ${record.offset}`);
    assert.equal(record.value.toString(), Buffer.from(appended.value).toString(), `${label}: value at ${record.offset}`);
  }
}

describe('compactKeys', () => {
  test('keeps the latest PUT of each key, keyless and server records; drops superseded PUTs', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await openKeeper(disk.mount(), clock);
    const log = new Log(opened, clock);
    for (let round = 0; round < 5; round++) for (let k = 0; k < 6; k++) await log.put(`k${k}`, `r${round}`);
    await log.append([{ value: Buffer.from('keyless') }]);
    await log.append([{ type: 'checkpoint', value: Buffer.from('cp') }]);
    await log.append([{ type: 'flush_all', value: Buffer.alloc(0) }]);
    await log.put('k1', 'after flush');
    await log.seal();
    await viewOf(opened.keeper);
    const result = await compactKeys(opened.keeper, opened.wal, { thresholdPercent: 0, clock: clock.now });
    assert.ok(result.segmentsRewritten > 0);
    const records = await readAll(opened.wal);
    assertRetainedIntact(records, log, 'after compaction');
    const keyed = records.filter((r) => r.key !== undefined);
    // Every PUT before the flush is superseded (the flush cleared its key).
    assert.deepEqual(keyed.map((r) => r.key!.toString()), ['k1']);
    assert.ok(records.some((r) => r.value.toString() === 'keyless'));
    assert.ok(records.some((r) => r.type === 'checkpoint'));
    assert.ok(records.some((r) => r.type === 'flush_all'));
    assert.equal(result.recordsDropped, 30);
    assert.equal(result.freedBytes, result.beforeSizeBytes - result.afterSizeBytes);
    assert.ok(result.freedBytes > 0 && result.reductionPercent > 0 && result.reductionPercent < 100);
    assert.deepEqual(await viewOf(opened.keeper), modelOf(log));
    await opened.close();
  });

  test('a tombstone stays while younger than the retention, and below no snapshot; then goes', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const storage = disk.mount();
    const opened = await openKeeper(storage, clock);
    const log = new Log(opened, clock);
    await log.put('a', '1');
    await log.put('b', '1');
    await log.delete('a');
    await log.seal();
    await viewOf(opened.keeper);
    const tombstones = async (): Promise<number> => (await readAll(opened.wal)).filter((r) => r.type === 'delete').length;
    await compactKeys(opened.keeper, opened.wal, { thresholdPercent: 0, clock: clock.now });
    assert.equal(await tombstones(), 1, 'young: kept');
    const putsOfA = (await readAll(opened.wal)).filter((r) => r.key?.toString() === 'a' && r.type === 'put');
    assert.equal(putsOfA.length, 0, 'the PUT it deletes is superseded: dropped');
    clock.advance(HOUR_MS);
    await compactKeys(opened.keeper, opened.wal, { thresholdPercent: 0, clock: clock.now });
    assert.equal(await tombstones(), 0, 'old, no snapshot, log from 0, no PUT of its key below: dropped');
    assert.deepEqual(await viewOf(opened.keeper), modelOf(log));
    await opened.close();
  });

  test('an old tombstone at or above the oldest snapshot stays; below it, it goes', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const storage = disk.mount();
    const opened = await openKeeper(storage, clock);
    const log = new Log(opened, clock);
    await log.put('a', '1');
    await log.put('b', '1');
    await viewOf(opened.keeper);
    // A snapshot holding a, then its deletion: replaying from the snapshot without the tombstone
    // would bring a back.
    await writeSnapshot(storage, SNAPSHOTS, opened.keeper.captureView(), { type: 'full' });
    await log.delete('a');
    await log.seal();
    await viewOf(opened.keeper);
    clock.advance(2 * HOUR_MS);
    await compactKeys(opened.keeper, opened.wal, { thresholdPercent: 0, clock: clock.now });
    assert.equal((await readAll(opened.wal)).filter((r) => r.type === 'delete').length, 1, 'kept: a snapshot lies below it');
    await opened.close();

    // Reopened from that snapshot: a stays deleted.
    const again = await openKeeper(disk.mount(), clock);
    assert.equal(await again.keeper.get(Buffer.from('a')), undefined);
    // A newer snapshot, and the old one gone: the tombstone is below every snapshot now.
    await writeSnapshot(disk.mount(), SNAPSHOTS, again.keeper.captureView(), { type: 'full' });
    const s = disk.mount();
    const names = s.list(SNAPSHOTS).sort();
    s.unlink(`${SNAPSHOTS}/${names[0]}`);
    await compactKeys(again.keeper, again.wal, { thresholdPercent: 0, clock: clock.now });
    assert.equal((await readAll(again.wal)).filter((r) => r.type === 'delete').length, 0, 'dropped: below the oldest snapshot');
    await again.close();
    const third = await openKeeper(disk.mount(), clock);
    assert.equal(await third.keeper.get(Buffer.from('a')), undefined);
    assert.equal((await third.keeper.get(Buffer.from('b')))?.value.toString(), '1'.padEnd(50, '.'));
    await third.close();
  });

  test('an old tombstone stays while a PUT of its key stays below it in a segment not rewritten', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await openKeeper(disk.mount(), clock);
    const log = new Log(opened, clock);
    // Segment 1: one PUT of `a` among many live keys: below any threshold of 20%.
    await log.put('a', 'old');
    for (let k = 0; k < 30; k++) await log.put(`live${k}`, 'v');
    await log.seal();
    // Segment 2: a's deletion and many superseded PUTs: well above the threshold.
    for (let i = 0; i < 20; i++) await log.put('churn', `${i}`);
    await log.delete('a');
    await log.seal();
    await viewOf(opened.keeper);
    clock.advance(2 * HOUR_MS);
    const result = await compactKeys(opened.keeper, opened.wal, { thresholdPercent: 20, clock: clock.now });
    assert.ok(result.segmentsRewritten >= 1 && result.segmentsRewritten < result.segmentsConsidered);
    const records = await readAll(opened.wal);
    assert.ok(records.some((r) => r.key?.toString() === 'a' && r.type === 'put'), 'the PUT of a stays (its segment is under the threshold)');
    assert.ok(records.some((r) => r.key?.toString() === 'a' && r.type === 'delete'), 'so its tombstone stays');
    assert.equal(records.filter((r) => r.key?.toString() === 'churn').length, 1);
    await opened.close();
    // Rebuilt from the log alone: a is deleted.
    const again = await openKeeper(disk.mount(), clock);
    assert.deepEqual(await viewOf(again.keeper), modelOf(log));
    await again.close();
  });

  test('a dry run estimates exactly what the run then does, and writes nothing', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await openKeeper(disk.mount(), clock);
    const log = new Log(opened, clock);
    for (let i = 0; i < 300; i++) await log.put(`k${i % 17}`, `${i}`);
    await log.seal();
    await viewOf(opened.keeper);
    const before = await readAll(opened.wal);
    const estimate = await compactKeys(opened.keeper, opened.wal, { dryRun: true, clock: clock.now });
    assert.equal(estimate.dryRun, true);
    assert.equal((await readAll(opened.wal)).length, before.length);
    assert.ok(estimate.redundancyPercent > 80, `most records are superseded (${estimate.redundancyPercent}%)`);
    const done = await compactKeys(opened.keeper, opened.wal, { clock: clock.now });
    for (const field of ['segmentsConsidered', 'segmentsRewritten', 'recordsDropped', 'beforeSizeBytes', 'afterSizeBytes', 'freedBytes', 'reductionPercent'] as const) {
      assert.equal(done[field], estimate[field], field);
    }
    await opened.close();
  });

  test('random PUT/DELETE sequences: after compaction the view rebuilt from the log alone and from a snapshot equals a Map model', async () => {
    const command = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key: fc.nat({ max: 11 }), size: fc.nat({ max: 120 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.nat({ max: 11 }) }),
      fc.record({ kind: fc.constant('keyless' as const) }),
      fc.record({ kind: fc.constant('snapshot' as const) }),
      fc.record({ kind: fc.constant('age' as const) }),
      fc.record({ kind: fc.constant('compact' as const), threshold: fc.constantFrom(0, 20, 60) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 20, maxLength: 160 }), fc.constantFrom(0, HOUR_MS), async (commands, retention) => {
        const disk = new MemDisk();
        const clock = new FakeClock();
        let opened = await openKeeper(disk.mount(), clock, retention);
        const log = new Log(opened, clock);
        const compact = async (threshold: number): Promise<void> => {
          await viewOf(opened.keeper);
          await compactKeys(opened.keeper, opened.wal, { thresholdPercent: threshold, clock: clock.now });
        };
        for (const c of commands) {
          if (c.kind === 'put') await log.put(`key-${c.key}`, 'x'.repeat(c.size));
          else if (c.kind === 'delete') await log.delete(`key-${c.key}`);
          else if (c.kind === 'keyless') await log.append([{ value: Buffer.alloc(64, 'k') }]);
          else if (c.kind === 'age') clock.advance(HOUR_MS);
          else if (c.kind === 'snapshot') {
            await viewOf(opened.keeper);
            await writeSnapshot(disk.mount(), SNAPSHOTS, opened.keeper.captureView(), { type: 'full' });
          } else await compact(c.threshold);
        }
        clock.advance(HOUR_MS);
        await log.seal();
        await compact(0);
        assert.deepEqual(await viewOf(opened.keeper), modelOf(log), 'the live view');
        assertRetainedIntact(await readAll(opened.wal), log, 'after compaction');
        const next = opened.wal.nextOffset;
        await opened.close();
        // From the newest snapshot (if any) plus the log.
        opened = await openKeeper(disk.mount(), clock, retention);
        assert.deepEqual(await viewOf(opened.keeper), modelOf(log), 'rebuilt from the snapshot and the log');
        assert.equal(opened.wal.nextOffset, next, 'no offset reused');
        await opened.close();
        // From the log alone.
        const s = disk.mount();
        if (s.exists(SNAPSHOTS)) for (const name of s.list(SNAPSHOTS)) s.unlink(`${SNAPSHOTS}/${name}`);
        opened = await openKeeper(s, clock, retention);
        assert.deepEqual(await viewOf(opened.keeper), modelOf(log), 'rebuilt from the log alone');
        await opened.close();
      }),
      { seed: testSeed('key compaction against a Map model'), numRuns: 40 },
    );
  });

  test('online: a tail following the log across the rewrite receives every live record in order, and appends go on', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await openKeeper(disk.mount(), clock);
    const log = new Log(opened, clock);
    for (let i = 0; i < 400; i++) await log.put(`k${i % 13}`, `${i}`);
    await log.seal();
    await viewOf(opened.keeper);
    const controller = new AbortController();
    const tail = opened.wal.openTail(0, { signal: controller.signal, maxRecords: 7 });
    const seen: WalRecord[] = [];
    const first = await tail.next();
    if (first.value?.kind === 'records') seen.push(...first.value.records);
    const compaction = compactKeys(opened.keeper, opened.wal, { thresholdPercent: 0, clock: clock.now });
    const appending = (async () => {
      for (let i = 0; i < 50; i++) await log.put(`during${i % 5}`, `${i}`);
    })();
    const result = await Promise.all([compaction, appending]).then(([r]) => r);
    assert.ok(result.segmentsRewritten > 0);
    for (let i = 0; i < 10_000 && (seen.at(-1)?.offset ?? -1) < opened.wal.highWatermark; i++) {
      const next = await tail.next();
      assert.equal(next.done, false);
      if (next.value!.kind === 'records') seen.push(...next.value!.records);
    }
    controller.abort();
    await tail.return();
    const offsets = seen.map((r) => r.offset);
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i]! > offsets[i - 1]!, 'in offset order, never twice');
    assertRetainedIntact(seen, log, 'tailed');
    const live = new Set([...log.model.values()].map((e) => e.offset));
    for (const offset of live) assert.ok(offsets.includes(offset), `live record ${offset} delivered`);
    assert.equal(offsets.at(-1), opened.wal.highWatermark);
    assert.deepEqual(await viewOf(opened.keeper), modelOf(log));
    await opened.close();
  });

  test('under sync policy none, a power cut after the rewrite keeps every key: what made a record redundant is synced before the swap', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const open = async (): Promise<Opened> => {
      const storage = disk.mount();
      const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096, syncPolicy: 'none', clock: clock.now, onWarning: () => {} });
      const { keeper } = await StateKeeper.open({ wal, storage });
      return { wal, keeper, close: async () => { await keeper.close(); await wal.close(); } };
    };
    const first = await open();
    for (let k = 0; k < 8; k++) await first.keeper.append([{ key: Buffer.from(`k${k}`), value: Buffer.from(`old-${k}`) }]);
    for (let i = 0; i < 100 && first.wal.stats().segmentCount < 3; i++) await first.keeper.append([{ value: Buffer.alloc(200, 'f') }]);
    await first.wal.sync();
    // Later PUTs of every key, in the active segment, written but not synced.
    for (let k = 0; k < 8; k++) await first.keeper.append([{ key: Buffer.from(`k${k}`), value: Buffer.from(`new-${k}`) }]);
    const result = await compactKeys(first.keeper, first.wal, { thresholdPercent: 0, clock: clock.now });
    assert.ok(result.recordsDropped > 0, `${result.recordsDropped} records dropped`);
    disk.crash();
    const second = await open();
    try {
      for (let k = 0; k < 8; k++) {
        const entry = await second.keeper.get(Buffer.from(`k${k}`));
        assert.ok(entry !== undefined, `k${k} survives the power cut`);
        assert.match(entry.value.toString(), new RegExp(`^(old|new)-${k}$`));
      }
    } finally {
      await second.close();
    }
  });

  test('refuses a bad retention', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await openKeeper(disk.mount(), clock);
    await assert.rejects(compactKeys(opened.keeper, opened.wal, { tombstoneRetentionMs: -1 }), RangeError);
    await opened.close();
  });
});
