/**
 * A power cut at every disk operation of a workload, under every sync policy, with the unsynced
 * bytes lost (in order) or persisted page by page in any order: after recovery the log opens, its
 * offsets are dense, nothing unacknowledged sits in the middle, whatever was known durable is there
 * byte for byte, and idempotent producers are not written twice.
 *
 * Randomised (which unsynced pages survive): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../src/engine/wal.js';
import type { SyncPolicy, WalRecord } from '../../src/engine/types.js';
import { MemDisk, type UnsyncedSurvival } from '../support/mem-disk.js';
import { random, testSeed } from '../support/seed.js';
import { FakeClock } from '../support/fake-clock.js';

const DIR = '/data';
const SEGMENT_SIZE_BYTES = 4096;
/** Batches of these numbers carry producer `p`, sequence = batch number. */
const isIdempotent = (batch: number): boolean => batch % 3 === 0;

/** The value of record `r` of batch `b`: recognisable, so any record read back names its batch. */
function value(b: number, r: number): Buffer {
  return Buffer.from(`batch ${b} record ${r} `.padEnd(40 + ((b * 7 + r) % 50), '.'));
}

interface Acked {
  readonly batch: number;
  readonly firstOffset: number;
  readonly count: number;
}

/** What the workload saw before the crash. */
interface Outcome {
  readonly acked: Acked[];
  /** Batches acknowledged before a sync (or close) that covered them completed: durable under any policy. */
  durableBatches: number;
}

interface Setup {
  readonly syncPolicy: SyncPolicy;
  readonly preallocate: boolean;
}

function openLog(disk: MemDisk, setup: Setup, clock: FakeClock): Promise<{ wal: Wal }> {
  return Wal.open({
    dir: DIR,
    storage: disk.mount(),
    segmentSizeBytes: SEGMENT_SIZE_BYTES,
    preallocate: setup.preallocate,
    indexIntervalBytes: 256,
    clock: clock.now,
    syncPolicy: setup.syncPolicy,
    // The timer never fires in a run: syncs come from rotations, wal.sync() and close, at the same
    // operations in every run, so that "crash at operation N" means the same place each time.
    syncIntervalMs: 3_600_000,
    // The fake clock moves 1 ms a batch: the recovery point is written after nearly every sync, so
    // its writes are crash points too.
    recoveryPointIntervalMs: 1,
    onWarning: () => {},
  });
}

/**
 * A workload that touches every step the engine takes on disk: appends (single, idempotent and
 * concurrent), rotations, among them one inside a flush of many batches, a forced sync, a
 * compaction, a close, and a second process life. Returns what was acknowledged before any failure.
 */
async function workload(disk: MemDisk, setup: Setup, clock: FakeClock): Promise<Outcome> {
  const outcome: Outcome = { acked: [], durableBatches: 0 };
  let wal: Wal | undefined;
  let b = 0;
  const appendBatch = async (log: Wal, count = 1 + (b % 4)): Promise<void> => {
    const batch = b++;
    clock.advance(1);
    const records = Array.from({ length: count }, (_, r) => ({ value: value(batch, r) }));
    const options = isIdempotent(batch) ? { producerId: 'p', sequence: batch } : {};
    const result = await log.append(records, options);
    outcome.acked.push({ batch, firstOffset: result.firstOffset, count });
  };
  const durable = async (step: () => Promise<unknown>): Promise<void> => {
    const before = outcome.acked.length;
    await step();
    // close() reports a failed final sync as a warning, not an error: a power cut inside it must
    // still end this process life.
    if (disk.crashes > 0) throw new Error('crashed');
    outcome.durableBatches = Math.max(outcome.durableBatches, before);
  };
  try {
    ({ wal } = await openLog(disk, setup, clock));
    const first = wal;
    for (let i = 0; i < 30; i++) await appendBatch(first);
    // 16 batches in one flush, across a rotation.
    await Promise.all(Array.from({ length: 16 }, () => appendBatch(first, 2)));
    await durable(() => first.sync());
    await first.deleteSegmentsBefore(40);
    for (let i = 0; i < 10; i++) await appendBatch(first);
    await durable(() => first.close());
    // A second process life: starts from a cleanly closed log (its active segment has an index),
    // appends across more rotations, and stops cleanly again.
    ({ wal } = await openLog(disk, setup, clock));
    const second = wal;
    for (let i = 0; i < 30; i++) await appendBatch(second, 2);
    await durable(() => second.close());
  } catch {
    // The crash: whatever was acknowledged (and, under interval/none, synced) before it must survive.
    await wal?.close().catch(() => undefined);
  }
  return outcome;
}

async function readAll(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(record);
  return out;
}

/** Checks the recovered log against what the workload saw before the crash. */
async function verify(disk: MemDisk, setup: Setup, outcome: Outcome, label: string): Promise<void> {
  const { wal } = await openLog(disk, setup, new FakeClock(2_000_000_000_000));
  try {
    const records = await readAll(wal);
    for (let i = 0; i < records.length; i++) assert.equal(records[i]!.offset, wal.firstOffset + i, `${label}: offsets dense`);
    assert.ok(wal.firstOffset <= 40, `${label}: compaction never goes past what was asked`);
    const byOffset = new Map(records.map((r) => [r.offset, r]));
    // Under `always` every acknowledged batch was durable; otherwise those a sync covered.
    const mustSurvive = setup.syncPolicy === 'always' ? outcome.acked.length : outcome.durableBatches;
    const ackedAt = new Map<number, { batch: number; index: number }>();
    outcome.acked.forEach((a, k) => {
      for (let r = 0; r < a.count; r++) ackedAt.set(a.firstOffset + r, { batch: a.batch, index: r });
      if (k >= mustSurvive) return;
      for (let r = 0; r < a.count; r++) {
        const offset = a.firstOffset + r;
        if (offset < wal.firstOffset) continue; // compacted away on purpose
        const got = byOffset.get(offset);
        assert.ok(got, `${label}: durable offset ${offset} lost`);
        assert.deepEqual(got.value, value(a.batch, r), `${label}: offset ${offset} changed`);
      }
    });
    // Nothing unacknowledged in the middle: a record at an acknowledged offset is that record; past
    // the last acknowledged one, only whole batches the workload appended (not yet acknowledged).
    const lastAcked = Math.max(-1, ...ackedAt.keys());
    for (const record of records) {
      const expected = ackedAt.get(record.offset);
      if (expected !== undefined) assert.deepEqual(record.value, value(expected.batch, expected.index), `${label}: offset ${record.offset} holds what was acknowledged there`);
      else assert.ok(record.offset > lastAcked && /^batch \d+ record \d+ /.test(record.value.toString()), `${label}: unacknowledged offset ${record.offset} in the middle`);
    }
    await checkProducer(wal, records, label);
    const next = await wal.append([{ value: Buffer.from('after recovery') }], { sync: true });
    assert.equal(next.firstOffset, wal.firstOffset + records.length, `${label}: appending goes on after the recovered end`);
    assert.equal((await wal.read(next.firstOffset, { limit: 1 }))[0]?.value.toString(), 'after recovery');
  } finally {
    await wal.close();
  }
}

/**
 * A retry of producer p's last batch in the log (acknowledged or not) is a duplicate answered with
 * the original offsets, never a second copy.
 */
async function checkProducer(wal: Wal, records: readonly WalRecord[], label: string): Promise<void> {
  let last: { batch: number; firstOffset: number; count: number } | undefined;
  for (const record of records) {
    const match = /^batch (\d+) record (\d+) /.exec(record.value.toString());
    const batch = Number(match?.[1]);
    if (match === null || !isIdempotent(batch)) continue;
    if (last?.batch === batch) last.count++;
    else if (last === undefined || batch > last.batch) last = { batch, firstOffset: record.offset, count: 1 };
  }
  if (last === undefined) return;
  const { batch, firstOffset, count } = last;
  const retry = await wal.append(Array.from({ length: count }, (_, r) => ({ value: value(batch, r) })), { producerId: 'p', sequence: batch });
  assert.equal(retry.duplicate, true, `${label}: the retry of sequence ${batch} is recognised`);
  assert.equal(retry.firstOffset, firstOffset, `${label}: the retry answers with the original offsets`);
}

function survivalFor(mode: 'lost' | 'pages', next: () => number): UnsyncedSurvival | undefined {
  return mode === 'lost' ? undefined : { randomPages: next };
}

const SWEEPS: readonly (Setup & { readonly survival: 'lost' | 'pages' })[] = [
  { syncPolicy: 'always', preallocate: false, survival: 'lost' },
  { syncPolicy: 'always', preallocate: true, survival: 'lost' },
  { syncPolicy: 'always', preallocate: true, survival: 'pages' },
  { syncPolicy: 'interval', preallocate: false, survival: 'pages' },
  { syncPolicy: 'interval', preallocate: true, survival: 'pages' },
  { syncPolicy: 'none', preallocate: false, survival: 'pages' },
  { syncPolicy: 'none', preallocate: true, survival: 'pages' },
];

describe('crash points', () => {
  for (const sweep of SWEEPS) {
    const name = `${sweep.syncPolicy}, preallocate ${sweep.preallocate}, unsynced bytes ${sweep.survival === 'lost' ? 'lost' : 'persisted page by page in any order'}`;
    test(`${name}: the log recovers what was durable after a crash at any disk operation`, async () => {
      const reference = new MemDisk();
      const full = await workload(reference, sweep, new FakeClock());
      assert.equal(full.acked.length, 86, 'the workload runs to the end without a crash');
      const totalOps = reference.ops;
      assert.ok(totalOps > 100, `the workload exercises the disk (${totalOps} operations)`);
      const next = random(testSeed(`crash points (${name}), ${totalOps} disk operations`));
      for (let op = 1; op <= totalOps; op++) {
        const disk = new MemDisk();
        disk.crashAt(op, survivalFor(sweep.survival, next));
        const outcome = await workload(disk, sweep, new FakeClock());
        disk.crash(survivalFor(sweep.survival, next));
        await verify(disk, sweep, outcome, `${name}: crash at operation ${op}/${totalOps}`);
      }
    });
  }

  for (const preallocate of [false, true]) {
    test(`a crash in the middle of writing a batch keeps all of it or none of it (preallocate ${preallocate})`, async () => {
      // Crash at the fdatasync that would make a 20-record batch durable, keeping every possible
      // prefix of the unsynced bytes: the batch's frame is cut anywhere.
      const clock = new FakeClock();
      const big = Array.from({ length: 20 }, (_, r) => ({ value: value(1, r) }));
      const outcomes = new Set<number>();
      for (let cut = 0; cut <= 20 * 120; cut += 11) {
        const disk = new MemDisk();
        const first = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate, clock: clock.now });
        await first.wal.append([{ value: value(0, 0) }]);
        const dataEnd = first.wal.stats().io.bytesWritten; // the header and the first frame
        disk.crashWhen('datasync', /0\.seg$/, () => dataEnd + cut);
        await first.wal.append(big).catch(() => undefined);
        const { wal: reopened } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20 });
        const records = await readAll(reopened);
        assert.ok(records.length === 1 || records.length === 21, `cut ${cut}: ${records.length} records (all or nothing)`);
        outcomes.add(records.length);
        if (records.length === 21) for (let r = 0; r < 20; r++) assert.deepEqual(records[r + 1]!.value, value(1, r));
        await reopened.close();
      }
      assert.deepEqual([...outcomes].sort(), [1, 21], 'some cuts lose the whole batch, the last ones keep all of it');
    });
  }
});
