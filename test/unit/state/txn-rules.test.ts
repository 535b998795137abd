/**
 * Transactions in the key-value view (StateKeeper over a real log on a MemDisk): the refusal rules
 * (WAL_TXN_STATE) checked in the order appends get offsets, inside a batch too, undone when the
 * append fails; the writes applied at the COMMIT, all at its offset, never at the PREPARE,
 * discarded at an ABORT; in-doubt transactions reported at recovery and listed in pages; the
 * bounded memory of ended transactions; txn_timeout_ms.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeTxnWrites } from '../../../src/codec/txn-writes.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { StateKeeper, type TimedOutTxn } from '../../../src/state/state-keeper.js';
import type { StateOptions } from '../../../src/state/state-options.js';
import type { Storage } from '../../../src/storage/storage.js';
import { MemDisk } from '../../support/mem-disk.js';

const DIR = '/data';
const id = (text: string): Buffer => Buffer.from(text);
const put = (key: string, value: string) => ({ op: 'put' as const, key: Buffer.from(key), value: Buffer.from(value) });
const del = (key: string) => ({ op: 'delete' as const, key: Buffer.from(key), value: Buffer.alloc(0) });

interface Opened {
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  readonly report: Awaited<ReturnType<typeof StateKeeper.open>>['report'];
  close(): Promise<void>;
}

async function open(storage: Storage, options: StateOptions = {}, extra: { clock?: () => number; onTxnTimeout?: (t: TimedOutTxn) => void } = {}): Promise<Opened> {
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, clock: extra.clock });
  const { keeper, report } = await StateKeeper.open({ wal, storage, options, clock: extra.clock, onTxnTimeout: extra.onTxnTimeout });
  return {
    wal,
    keeper,
    report,
    async close() {
      await keeper.close();
      await wal.close();
    },
  };
}

/** Asserts that `promise` rejects with WAL_TXN_STATE naming `txn`, in `state`, at `field`. */
async function refused(promise: Promise<unknown>, txn: string, state: string, field = 'records[0]'): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isWalError(error, 'WAL_TXN_STATE'), String(error));
    assert.equal(error.details['txnIdBase64'], id(txn).toString('base64'));
    assert.equal(error.details['state'], state);
    assert.equal(error.details['field'], field);
    assert.match(error.message, new RegExp(`'${txn}'`));
    return true;
  });
}

async function valueOf(keeper: StateKeeper, key: string): Promise<string | undefined> {
  return (await keeper.get(id(key)))?.value.toString();
}

describe('transaction rules', () => {
  test('COMMIT or ABORT without a PREPARE is refused and writes nothing', async () => {
    const { wal, keeper, close } = await open(new MemDisk().mount());
    try {
      await refused(keeper.commit(id('t1')), 't1', 'unknown');
      await refused(keeper.abort(id('t1'), 'no'), 't1', 'unknown');
      assert.equal(wal.nextOffset, 0);
    } finally {
      await close();
    }
  });

  test('a second PREPARE of a prepared, committed or aborted transaction is refused', async () => {
    const { keeper, close } = await open(new MemDisk().mount());
    try {
      await keeper.prepare(id('a'), [put('k', '1')]);
      await refused(keeper.prepare(id('a'), [put('k', '2')]), 'a', 'in_doubt');
      await keeper.commit(id('a'));
      await refused(keeper.prepare(id('a'), [put('k', '3')]), 'a', 'committed');
      await keeper.prepare(id('b'), []);
      await keeper.abort(id('b'), 'changed my mind');
      await refused(keeper.prepare(id('b'), []), 'b', 'aborted');
      assert.equal(await valueOf(keeper, 'k'), '1');
    } finally {
      await close();
    }
  });

  test('COMMIT after ABORT and ABORT after COMMIT are refused', async () => {
    const { keeper, close } = await open(new MemDisk().mount());
    try {
      await keeper.prepare(id('a'), [put('x', 'a')]);
      await keeper.abort(id('a'), '');
      await refused(keeper.commit(id('a')), 'a', 'aborted');
      await keeper.prepare(id('c'), [put('y', 'c')]);
      await keeper.commit(id('c'));
      await refused(keeper.abort(id('c'), 'late'), 'c', 'committed');
      await refused(keeper.commit(id('c')), 'c', 'committed');
      assert.equal(await valueOf(keeper, 'x'), undefined);
      assert.equal(await valueOf(keeper, 'y'), 'c');
    } finally {
      await close();
    }
  });

  test('of two concurrent COMMITs (or a COMMIT and an ABORT) of one transaction exactly one passes', async () => {
    const { wal, keeper, close } = await open(new MemDisk().mount());
    try {
      for (let round = 0; round < 5; round++) {
        const txn = id(`r${round}`);
        await keeper.prepare(txn, [put(`k${round}`, 'v')]);
        const before = wal.nextOffset;
        const outcomes = await Promise.allSettled([keeper.commit(txn), round % 2 === 0 ? keeper.commit(txn) : keeper.abort(txn, 'race')]);
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
        const failure = outcomes.find((o) => o.status === 'rejected')!;
        assert.ok(isWalError(failure.reason, 'WAL_TXN_STATE'));
        assert.equal(wal.nextOffset, before + 1);
        assert.equal(await valueOf(keeper, `k${round}`), 'v');
      }
    } finally {
      await close();
    }
  });

  test('the rules apply inside a batch: PREPARE+COMMIT passes, a second COMMIT in it is refused whole', async () => {
    const { wal, keeper, close } = await open(new MemDisk().mount());
    try {
      const prepare = { type: 'prepare' as const, key: id('b1'), value: encodeTxnWrites([put('k', 'v'), put('j', 'w')]) };
      const commit = { type: 'commit' as const, key: id('b1'), value: Buffer.alloc(0) };
      await refused(keeper.append([prepare, commit, commit]), 'b1', 'committed', 'records[2]');
      await refused(keeper.append([prepare, { ...prepare }]), 'b1', 'in_doubt', 'records[1]');
      assert.equal(wal.nextOffset, 0);
      assert.equal(keeper.txnState(id('b1')), 'unknown');
      const result = await keeper.append([prepare, { key: id('plain'), value: id('p') }, commit]);
      assert.equal((await keeper.get(id('k')))!.offset, result.lastOffset);
      assert.equal((await keeper.get(id('j')))!.offset, result.lastOffset);
      assert.equal(await valueOf(keeper, 'plain'), 'p');
    } finally {
      await close();
    }
  });

  test('a failed append gives back the transaction states it took', async () => {
    const { wal, keeper, close } = await open(new MemDisk().mount());
    try {
      await keeper.prepare(id('f'), [put('k', 'v')]);
      await assert.rejects(keeper.commit(id('f'), { expectedOffset: 99 }), (error: unknown) => isWalError(error, 'WAL_OFFSET_MISMATCH'));
      assert.equal(keeper.txnState(id('f')), 'in_doubt');
      await assert.rejects(keeper.prepare(id('g'), [], { expectedOffset: 99 }), (error: unknown) => isWalError(error, 'WAL_OFFSET_MISMATCH'));
      assert.equal(keeper.txnState(id('g')), 'unknown');
      await keeper.commit(id('f'));
      await keeper.prepare(id('g'), []);
      assert.equal(wal.nextOffset, 3);
    } finally {
      await close();
    }
  });

  test('a retried idempotent append of a PREPARE or COMMIT is answered as the original, not refused', async () => {
    const { wal, keeper, close } = await open(new MemDisk().mount());
    try {
      const first = await keeper.prepare(id('i'), [put('k', 'v')], { producerId: 'p', sequence: 1 });
      const again = await keeper.prepare(id('i'), [put('k', 'v')], { producerId: 'p', sequence: 1 });
      assert.equal(again.duplicate, true);
      assert.equal(again.firstOffset, first.firstOffset);
      await keeper.commit(id('i'), { producerId: 'p', sequence: 2 });
      const commitAgain = await keeper.commit(id('i'), { producerId: 'p', sequence: 2 });
      assert.equal(commitAgain.duplicate, true);
      assert.equal(wal.nextOffset, 2);
    } finally {
      await close();
    }
  });

  test('refuses empty ids and values that do not fit the record type', async () => {
    const { wal, keeper, close } = await open(new MemDisk().mount());
    try {
      const field = (name: string) => (error: unknown) => isWalError(error, 'WAL_INVALID_ARGUMENT') && error.details['field'] === name;
      await assert.rejects(keeper.prepare(Buffer.alloc(0), []), field('records[0].key'));
      await assert.rejects(keeper.append([{ type: 'prepare', key: id('x'), value: id('not writes') }]), field('records[0].value'));
      await keeper.prepare(id('x'), []);
      await assert.rejects(keeper.append([{ type: 'commit', key: id('x'), value: id('?') }]), field('records[0].value'));
      await assert.rejects(keeper.append([{ type: 'abort', key: id('x'), value: Buffer.from([0xff, 0xfe]) }]), field('records[0].value'));
      assert.equal(wal.nextOffset, 1);
    } finally {
      await close();
    }
  });
});

describe('transactions in the view', () => {
  test('writes apply at the COMMIT, all at its offset, never at the PREPARE; ABORT discards them', async () => {
    const { keeper, close } = await open(new MemDisk().mount());
    try {
      await keeper.append([{ key: id('gone'), value: id('old') }, { key: id('kept'), value: id('old') }]);
      await keeper.prepare(id('t'), [put('a', '1'), put('b', '2'), del('gone'), put('a', '3')]);
      await keeper.prepare(id('u'), [put('kept', 'aborted')]);
      assert.equal(await valueOf(keeper, 'a'), undefined);
      assert.equal(await valueOf(keeper, 'gone'), 'old');
      const commit = await keeper.commit(id('t'));
      await keeper.abort(id('u'), 'no');
      const a = (await keeper.get(id('a')))!;
      assert.equal(a.value.toString(), '3');
      assert.equal(a.offset, commit.firstOffset);
      assert.equal(a.timestamp, commit.timestamp);
      assert.equal((await keeper.get(id('b')))!.offset, commit.firstOffset);
      assert.equal(await valueOf(keeper, 'gone'), undefined);
      assert.equal(await valueOf(keeper, 'kept'), 'old');
      assert.equal(keeper.inDoubtCount, 0);
    } finally {
      await close();
    }
  });

  test('recovery reports the in-doubt transactions with ids, prepare offsets and ages', async () => {
    const storage = new MemDisk().mount();
    let now = 1_000_000;
    const clock = () => now;
    const first = await open(storage, {}, { clock });
    await first.keeper.prepare(id('old'), [put('k', 'v')]);
    now += 500;
    await first.keeper.prepare(id('ended'), []);
    await first.keeper.commit(id('ended'));
    await first.keeper.prepare(id('new'), [put('j', 'w'), put('i', 'x')]);
    await first.close();
    now += 1000;
    const second = await open(storage, {}, { clock });
    try {
      assert.equal(second.report.inDoubtCount, 2);
      assert.deepEqual(second.report.inDoubtTransactions, [
        { txnIdBase64: id('old').toString('base64'), prepareOffset: 0, prepareTimestamp: 1_000_000, ageMs: 1500, writeCount: 1 },
        { txnIdBase64: id('new').toString('base64'), prepareOffset: 3, prepareTimestamp: 1_000_500, ageMs: 1000, writeCount: 2 },
      ]);
      await refused(second.keeper.prepare(id('ended'), []), 'ended', 'committed');
      await second.keeper.commit(id('new'));
      assert.equal(await valueOf(second.keeper, 'i'), 'x');
      assert.equal(second.keeper.oldestInDoubtAgeMs(), 1500);
    } finally {
      await second.close();
    }
  });

  test('lists the in-doubt transactions in pages, oldest first', async () => {
    const { keeper, close } = await open(new MemDisk().mount());
    try {
      for (let i = 0; i < 7; i++) await keeper.prepare(id(`t${i}`), []);
      await keeper.commit(id('t2'));
      const seen: string[] = [];
      let pageToken = '';
      for (let pages = 0; pages < 10; pages++) {
        const page = await keeper.listInDoubt({ limit: 2, pageToken });
        assert.equal(page.inDoubtCount, 6);
        seen.push(...page.transactions.map((t) => Buffer.from(t.txnIdBase64, 'base64').toString()));
        pageToken = page.nextPageToken;
        if (pageToken === '') break;
      }
      assert.deepEqual(seen, ['t0', 't1', 't3', 't4', 't5', 't6']);
      await assert.rejects(keeper.listInDoubt({ limit: 2, pageToken: 'bogus' }), (error: unknown) => isWalError(error, 'WAL_INVALID_ARGUMENT') && error.details['field'] === 'page_token');
    } finally {
      await close();
    }
  });

  test('remembers at most txn_max_ended ended transactions: a forgotten id is unknown again', async () => {
    const storage = new MemDisk().mount();
    const first = await open(storage, { txnMaxEnded: 2 });
    for (const name of ['e1', 'e2', 'e3']) {
      await first.keeper.prepare(id(name), [put(name, name)]);
      await first.keeper.commit(id(name));
    }
    // Appends not yet applied count as what they say; once applied, the view's table decides.
    await first.keeper.caughtUp();
    assert.equal(first.keeper.txnState(id('e1')), 'unknown');
    assert.equal(first.keeper.txnState(id('e2')), 'committed');
    await refused(first.keeper.commit(id('e1')), 'e1', 'unknown');
    await first.close();
    const second = await open(storage, { txnMaxEnded: 2 });
    try {
      assert.equal(second.keeper.txnState(id('e1')), 'unknown');
      assert.equal(second.keeper.txnState(id('e3')), 'committed');
      await second.keeper.prepare(id('e1'), [put('e1', 'again')]);
      await second.keeper.commit(id('e1'));
      assert.equal(await valueOf(second.keeper, 'e1'), 'again');
    } finally {
      await second.close();
    }
  });

  test('txn_timeout_ms aborts in-doubt transactions older than it, with a reason, and reports each', async () => {
    const storage = new MemDisk().mount();
    let now = 5_000_000;
    const heard: TimedOutTxn[] = [];
    const { wal, keeper, close } = await open(storage, { txnTimeoutMs: 1000 }, { clock: () => now, onTxnTimeout: (t) => heard.push(t) });
    try {
      await keeper.prepare(id('slow'), [put('s', '1')]);
      now += 600;
      await keeper.prepare(id('quick'), [put('q', '1')]);
      assert.deepEqual(await keeper.abortTimedOut(), []);
      now += 500;
      const aborted = await keeper.abortTimedOut();
      assert.deepEqual(aborted.map((t) => Buffer.from(t.txnIdBase64, 'base64').toString()), ['slow']);
      assert.deepEqual(heard, aborted);
      assert.equal(keeper.txnState(id('slow')), 'aborted');
      assert.equal(keeper.txnState(id('quick')), 'in_doubt');
      const [record] = await wal.read(aborted[0]!.abortOffset, { limit: 1 });
      assert.equal(record!.type, 'abort');
      assert.match(record!.value.toString(), /txn_timeout_ms \(1000 ms\)/);
      await keeper.commit(id('quick'));
      now += 10_000;
      assert.deepEqual(await keeper.abortTimedOut(), []);
    } finally {
      await close();
    }
  });

  test('txn_timeout_ms 0 (the default) never aborts', async () => {
    let now = 0;
    const { keeper, close } = await open(new MemDisk().mount(), {}, { clock: () => now });
    try {
      await keeper.prepare(id('t'), []);
      now += 1e9;
      assert.deepEqual(await keeper.abortTimedOut(), []);
      assert.equal(keeper.txnState(id('t')), 'in_doubt');
    } finally {
      await close();
    }
  });
});
