/**
 * Transactions through compaction: key compaction drops the PREPAREs of aborted transactions,
 * duplicate PREPAREs and committed PREPAREs whose writes are all superseded, keeps in-doubt ones
 * and every COMMIT and ABORT; the view rebuilt from the log alone, or from a snapshot taken with a
 * transaction in doubt after the segments below it were deleted, answers as before; a PREPARE
 * whose outcome the table does not know (a forgotten transaction, or an older one of a reused id
 * after a rebuild met only the newer one's COMMIT) is kept, and so are the tombstones of its keys.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeTxnWrites, type TxnWrite } from '../../../src/codec/txn-writes.js';
import type { WalRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { Compactor } from '../../../src/state/compactor.js';
import { compactKeys } from '../../../src/state/key-compaction.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import type { Storage } from '../../../src/storage/storage.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';

const DIR = '/data';
const b = (text: string): Buffer => Buffer.from(text);
const put = (key: string, value: string): TxnWrite => ({ op: 'put', key: b(key), value: b(value) });

interface Opened {
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  readonly compactor: Compactor;
  close(): Promise<void>;
}

async function open(storage: Storage, clock: FakeClock, txnMaxEnded?: number): Promise<Opened> {
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096, indexIntervalBytes: 256, clock: clock.now, onWarning: () => {} });
  const { keeper } = await StateKeeper.open({ wal, storage, options: { tombstoneRetentionMs: 0, ...(txnMaxEnded === undefined ? {} : { txnMaxEnded }) }, clock: clock.now });
  const compactor = new Compactor({ wal, state: keeper, storage, options: { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0, keepSnapshots: 1 }, clock: clock.now });
  return {
    wal,
    keeper,
    compactor,
    async close() {
      await keeper.close();
      await wal.close();
    },
  };
}

async function seal(keeper: StateKeeper, wal: Wal): Promise<void> {
  const before = wal.stats().segmentCount;
  for (let i = 0; i < 100 && wal.stats().segmentCount === before; i++) await keeper.append([{ value: Buffer.alloc(200, 'f') }]);
}

async function readAll(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(record);
  return out;
}

async function valueOf(keeper: StateKeeper, key: string): Promise<string | undefined> {
  return (await keeper.get(b(key)))?.value.toString();
}

describe('transactions and key compaction', () => {
  test('drops aborted, duplicate and wholly superseded PREPAREs; keeps in-doubt and live ones, COMMITs and ABORTs', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await open(disk.mount(), clock);
    const { keeper, wal } = opened;
    const aborted = await keeper.prepare(b('aborted'), [put('x', 'never')]);
    await keeper.abort(b('aborted'), 'no');
    const live = await keeper.prepare(b('live'), [put('a', '1')]);
    await keeper.commit(b('live'));
    const superseded = await keeper.prepare(b('superseded'), [put('s', '1')]);
    await keeper.commit(b('superseded'));
    await keeper.append([{ key: b('s'), value: b('2') }]);
    const inDoubt = await keeper.prepare(b('in-doubt'), [put('d', '1')]);
    // A duplicate PREPARE, as a library caller of the log (unchecked) may write one: every replay ignores it.
    const duplicate = await wal.append([{ type: 'prepare', key: b('live'), value: encodeTxnWrites([put('a', 'dup')]) }]);
    await seal(keeper, wal);
    await keeper.caughtUp();
    const result = await compactKeys(keeper, wal, { thresholdPercent: 0, clock: clock.now });
    assert.ok(result.segmentsRewritten > 0);
    const prepares = (await readAll(wal)).filter((r) => r.type === 'prepare').map((r) => r.offset);
    assert.deepEqual(prepares, [live.firstOffset, inDoubt.firstOffset]);
    for (const dropped of [aborted, superseded, duplicate]) assert.ok(!prepares.includes(dropped.firstOffset));
    const ends = (await readAll(wal)).filter((r) => r.type === 'commit' || r.type === 'abort').map((r) => r.key!.toString());
    assert.deepEqual(ends, ['aborted', 'live', 'superseded']);
    await opened.close();

    // Rebuilt from the log alone (no snapshot): the same answers, the same states.
    const again = await open(disk.mount(), clock);
    try {
      assert.equal(await valueOf(again.keeper, 'a'), '1');
      assert.equal(await valueOf(again.keeper, 's'), '2');
      assert.equal(await valueOf(again.keeper, 'x'), undefined);
      assert.equal(again.keeper.txnState(b('aborted')), 'aborted');
      assert.equal(again.keeper.txnState(b('superseded')), 'committed');
      assert.deepEqual((await again.keeper.listInDoubt({ limit: 10 })).transactions.map((t) => t.prepareOffset), [inDoubt.firstOffset]);
      await again.keeper.commit(b('in-doubt'));
      assert.equal(await valueOf(again.keeper, 'd'), '1');
    } finally {
      await again.close();
    }
  });

  test('keeps the tombstone of a key that a kept PREPARE still puts, so that a rebuild from the log does not bring it back', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await open(disk.mount(), clock);
    const { keeper, wal } = opened;
    // The PREPARE stays (its write of j is live); its write of k is superseded by the DELETE.
    await keeper.prepare(b('t'), [put('k', '1'), put('j', '1')]);
    await keeper.commit(b('t'));
    await keeper.append([{ type: 'delete', key: b('k'), value: Buffer.alloc(0) }]);
    await seal(keeper, wal);
    await keeper.caughtUp();
    clock.advance(1000);
    await compactKeys(keeper, wal, { thresholdPercent: 0, clock: clock.now });
    const records = await readAll(wal);
    assert.ok(records.some((r) => r.type === 'prepare'), 'the PREPARE stays');
    assert.ok(records.some((r) => r.type === 'delete'), 'and so does the tombstone');
    await opened.close();
    const again = await open(disk.mount(), clock);
    try {
      assert.equal(await valueOf(again.keeper, 'k'), undefined);
      assert.equal(await valueOf(again.keeper, 'j'), '1');
    } finally {
      await again.close();
    }
  });
});

describe('transactions and compaction below a snapshot', () => {
  test('an in-doubt transaction whose PREPARE was deleted with its segment commits after a restart from the snapshot', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await open(disk.mount(), clock);
    const { keeper, wal } = opened;
    const prepared = await keeper.prepare(b('slow'), [put('p', 'v'), { op: 'delete', key: b('q'), value: Buffer.alloc(0) }]);
    await keeper.append([{ key: b('q'), value: b('old') }]);
    await keeper.prepare(b('gone'), [put('g', 'v')]);
    await keeper.abort(b('gone'), 'no');
    await seal(keeper, wal);
    const compaction = await opened.compactor.compact();
    assert.ok(compaction.segmentsDeleted > 0);
    assert.ok(wal.firstOffset > prepared.firstOffset, 'the PREPARE is gone from the log');
    await opened.close();

    const again = await open(disk.mount(), clock);
    try {
      assert.deepEqual((await again.keeper.listInDoubt({ limit: 10 })).transactions.map((t) => [Buffer.from(t.txnIdBase64, 'base64').toString(), t.prepareOffset]), [['slow', prepared.firstOffset]]);
      assert.equal(again.keeper.txnState(b('gone')), 'aborted');
      assert.equal(await valueOf(again.keeper, 'p'), undefined);
      const commit = await again.keeper.commit(b('slow'));
      assert.equal((await again.keeper.get(b('p')))!.offset, commit.firstOffset);
      assert.equal(await valueOf(again.keeper, 'q'), undefined);
      assert.equal(await valueOf(again.keeper, 'g'), undefined);
    } finally {
      await again.close();
    }
  });
});

/** Commits transaction `id` with `writes`, then another one, so that a table remembering one ended transaction forgets `id`. */
async function commitThenForget(keeper: StateKeeper, id: string, writes: TxnWrite[]): Promise<void> {
  await keeper.prepare(b(id), writes);
  await keeper.commit(b(id));
  await keeper.prepare(b('u'), [put('other', '1')]);
  await keeper.commit(b('u'));
  await keeper.caughtUp();
}

describe('key compaction and transactions whose outcome the table does not know', () => {
  test('a PREPARE of a transaction the table forgot keeps the tombstones of the keys it puts', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    // The table remembers one ended transaction: t is forgotten once u ends.
    const opened = await open(disk.mount(), clock, 1);
    const { keeper, wal } = opened;
    await commitThenForget(keeper, 't', [put('k', '1')]);
    assert.equal(keeper.txnState(b('t')), 'unknown', 't is forgotten');
    await keeper.append([{ type: 'delete', key: b('k'), value: Buffer.alloc(0) }]);
    await seal(keeper, wal);
    await keeper.caughtUp();
    clock.advance(1000);
    await compactKeys(keeper, wal, { thresholdPercent: 0, clock: clock.now });
    const records = await readAll(wal);
    assert.ok(records.some((r) => r.type === 'prepare' && r.key?.toString() === 't'), 't\'s PREPARE stays (its outcome is not known)');
    assert.ok(records.some((r) => r.type === 'delete'), 'and so does the tombstone of k');
    await opened.close();
    // Rebuilt from the log alone: t's PREPARE and COMMIT replay k = 1, and the DELETE removes it.
    const again = await open(disk.mount(), clock, 1);
    try {
      assert.equal(await valueOf(again.keeper, 'k'), undefined);
    } finally {
      await again.close();
    }
  });

  test('after a rebuild that met a COMMIT without its PREPARE, an older PREPARE of the reused id is kept', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await open(disk.mount(), clock, 1);
    const { keeper, wal } = opened;
    // t's first transaction, forgotten once u ends; then the id is used again.
    await commitThenForget(keeper, 't', [put('a', '1')]);
    await keeper.prepare(b('t'), [put('bb', '2')]);
    await keeper.commit(b('t'));
    // The second t's only write is superseded: its PREPARE goes at the first compaction.
    await keeper.append([{ key: b('bb'), value: b('3') }]);
    await seal(keeper, wal);
    await keeper.caughtUp();
    await compactKeys(keeper, wal, { thresholdPercent: 0, clock: clock.now });
    await opened.close();
    // Rebuilt from the log: the second t's COMMIT comes without a PREPARE before it.
    const rebuilt = await open(disk.mount(), clock, 1);
    await seal(rebuilt.keeper, rebuilt.wal);
    await rebuilt.keeper.caughtUp();
    await compactKeys(rebuilt.keeper, rebuilt.wal, { thresholdPercent: 0, clock: clock.now });
    const prepares = (await readAll(rebuilt.wal)).filter((r) => r.type === 'prepare' && r.key?.toString() === 't');
    assert.equal(prepares.length, 1, 'the first t\'s PREPARE stays: its write of a is live');
    await rebuilt.close();
    const again = await open(disk.mount(), clock, 1);
    try {
      assert.equal(await valueOf(again.keeper, 'a'), '1');
      assert.equal(await valueOf(again.keeper, 'bb'), '3');
    } finally {
      await again.close();
    }
  });
});
