/**
 * A power cut at every disk operation of a key compaction (each segment's temp file: create,
 * writes, fdatasync; its index: temp, write, fdatasync, rename, directory fsync; the segment's
 * rename over the old one; the directory fsync), while appends go on, with the unsynced bytes lost
 * or persisted page by page in any order: after reopen the log opens, every live record and every
 * acknowledged append is intact, every retained record is the one appended at its offset, no
 * offset is reused, the view equals the model, and appends continue at the right offset.
 *
 * Randomised (which unsynced pages survive): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WalRecord } from '../../src/engine/types.js';
import { Wal } from '../../src/engine/wal.js';
import { compactKeys } from '../../src/state/key-compaction.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import type { Storage } from '../../src/storage/storage.js';
import { FakeClock } from '../support/fake-clock.js';
import { MemDisk, type UnsyncedSurvival } from '../support/mem-disk.js';
import { random, testSeed } from '../support/seed.js';

const DIR = '/data';
const KEYS = 9;
/** Keyed PUTs before the compaction: several sealed segments, most of them superseded. */
const PUTS = 240;
/** Keyless appends while the compaction runs. */
const LIVE_APPENDS = 12;

const valueOf = (i: number): Buffer => Buffer.from(`put ${i} `.padEnd(48 + (i % 40), '.'));
const liveValueOf = (i: number): Buffer => Buffer.from(`live ${i}`);

async function open(storage: Storage, clock: FakeClock): Promise<{ wal: Wal; keeper: StateKeeper }> {
  const { wal } = await Wal.open({
    dir: DIR,
    storage,
    segmentSizeBytes: 4096,
    indexIntervalBytes: 256,
    preallocate: false,
    syncPolicy: 'always',
    clock: clock.now,
    recoveryPointIntervalMs: 3_600_000,
    onWarning: () => {},
  });
  const { keeper } = await StateKeeper.open({ wal, storage, onFailure: () => {} });
  return { wal, keeper };
}

interface Outcome {
  /** Offsets of the keyless appends acknowledged during the compaction, by their number. */
  readonly liveAcked: Map<number, number>;
  /** Operations done before the compaction began (mutating disk operations). */
  opsBefore: number;
  isCompacted: boolean;
}

/** Keyed PUTs (all acknowledged, durable under `always`), then a compaction while keyless appends go on. */
async function workload(disk: MemDisk, clock: FakeClock): Promise<Outcome> {
  const outcome: Outcome = { liveAcked: new Map(), opsBefore: 0, isCompacted: false };
  const { wal, keeper } = await open(disk.mount(), clock);
  let appending: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; i < PUTS; i++) {
      clock.advance(1);
      await keeper.append([{ key: Buffer.from(`k${i % KEYS}`), value: valueOf(i) }]);
    }
    await keeper.get(Buffer.from('k0'));
    outcome.opsBefore = disk.ops;
    appending = (async () => {
      for (let i = 0; i < LIVE_APPENDS; i++) {
        const { firstOffset } = await wal.append([{ value: liveValueOf(i) }]);
        outcome.liveAcked.set(i, firstOffset);
      }
    })();
    // The crash may fail either first: the other is awaited in the catch.
    appending.catch(() => undefined);
    const result = await compactKeys(keeper, wal, { thresholdPercent: 0, clock: clock.now });
    await appending;
    outcome.isCompacted = result.segmentsRewritten > 0;
    await keeper.close();
    await wal.close();
  } catch {
    await appending.catch(() => undefined);
    await keeper.close().catch(() => undefined);
    await wal.close().catch(() => undefined);
  }
  return outcome;
}

async function readAll(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(record);
  return out;
}

async function verify(disk: MemDisk, outcome: Outcome, label: string): Promise<void> {
  const clock = new FakeClock(2_000_000_000_000);
  const { wal, keeper } = await open(disk.mount(), clock);
  try {
    const records = await readAll(wal);
    for (let i = 1; i < records.length; i++) assert.ok(records[i]!.offset > records[i - 1]!.offset, `${label}: offsets only grow`);
    // Every retained record is the one appended at its offset: PUT i at offset i, then keyless ones.
    const liveByOffset = new Map([...outcome.liveAcked].map(([i, offset]) => [offset, i]));
    for (const record of records) {
      if (record.offset < PUTS) {
        assert.equal(record.key?.toString(), `k${record.offset % KEYS}`, `${label}: key at ${record.offset}`);
        assert.deepEqual(record.value, valueOf(record.offset), `${label}: value at ${record.offset}`);
      } else {
        assert.equal(record.key, undefined, `${label}: offset ${record.offset} holds a keyless append`);
        assert.match(record.value.toString(), /^live \d+$/, `${label}: offset ${record.offset}`);
        const i = liveByOffset.get(record.offset);
        if (i !== undefined) assert.deepEqual(record.value, liveValueOf(i), `${label}: acknowledged append at ${record.offset}`);
      }
    }
    // The live PUT of every key (the last of it) is there.
    const offsets = new Set(records.map((r) => r.offset));
    for (let k = 0; k < KEYS; k++) {
      const last = PUTS - 1 - ((PUTS - 1 - k) % KEYS);
      assert.ok(offsets.has(last), `${label}: live PUT of k${k} at ${last}`);
      const entry = await keeper.get(Buffer.from(`k${k}`));
      assert.equal(entry?.offset, last, `${label}: the view has k${k} from offset ${last}`);
      assert.deepEqual(entry.value, valueOf(last));
    }
    for (const [i, offset] of outcome.liveAcked) assert.ok(offsets.has(offset), `${label}: acknowledged append ${i} at ${offset} survives`);
    const lastRecord = records[records.length - 1]!.offset;
    assert.ok(wal.nextOffset > lastRecord && wal.nextOffset >= PUTS + outcome.liveAcked.size, `${label}: the next offset is past everything`);
    const appended = await wal.append([{ value: Buffer.from('after reopen') }]);
    assert.equal(appended.firstOffset, wal.nextOffset - 1);
    assert.ok(appended.firstOffset > lastRecord, `${label}: no offset reused`);
    assert.equal((await wal.read(appended.firstOffset, { limit: 1 }))[0]?.value.toString(), 'after reopen');
    // A second compaction finishes what the crash cut short.
    await keeper.get(Buffer.from('k0'));
    await compactKeys(keeper, wal, { thresholdPercent: 0, clock: clock.now });
    const estimate = await compactKeys(keeper, wal, { thresholdPercent: 0, clock: clock.now, dryRun: true });
    assert.equal(estimate.recordsDropped, 0, `${label}: after a second compaction nothing redundant is left in sealed segments`);
  } finally {
    await keeper.close();
    await wal.close();
  }
}

describe('key compaction crash points', () => {
  for (const survival of ['lost', 'pages'] as const) {
    test(`a crash at any disk operation of a compaction loses nothing (unsynced bytes ${survival === 'lost' ? 'lost' : 'persisted page by page in any order'})`, async () => {
      const reference = new MemDisk();
      const full = await workload(reference, new FakeClock());
      assert.ok(full.isCompacted, 'the workload compacts');
      assert.equal(full.liveAcked.size, LIVE_APPENDS);
      const first = full.opsBefore + 1;
      const last = reference.ops;
      assert.ok(last - first > 20, `the compaction does disk operations (${last - first + 1})`);
      const next = random(testSeed(`key compaction crash points (${survival}), operations ${first}..${last}`));
      const keep = (): UnsyncedSurvival | undefined => (survival === 'lost' ? undefined : { randomPages: next });
      for (let op = first; op <= last; op++) {
        const disk = new MemDisk();
        disk.crashAt(op, keep());
        const outcome = await workload(disk, new FakeClock());
        disk.crash(keep());
        await verify(disk, outcome, `crash at operation ${op} (${op - first + 1} of the compaction's ${last - first + 1})`);
      }
    });
  }
});
