import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { TailQueueBudget, type TailQueueGrant } from '../../../src/server/tail-queue-budget.js';
import { testSeed } from '../../support/seed.js';

/** Lets every settled promise run its reactions (grants resolve their reservations' promises). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A reservation and what became of it so far. */
interface Request {
  readonly id: number;
  readonly bytes: number;
  readonly abort: AbortController;
  outcome: 'waiting' | 'granted' | 'aborted';
  grant: TailQueueGrant | undefined;
}

function request(budget: TailQueueBudget, id: number, bytes: number, granted: number[]): Request {
  const abort = new AbortController();
  const r: Request = { id, bytes, abort, outcome: 'waiting', grant: undefined };
  void budget.reserve(bytes, abort.signal).then((grant) => {
    assert.equal(r.outcome, 'waiting', `request ${id} settled twice`);
    if (grant === undefined) {
      r.outcome = 'aborted';
    } else {
      r.outcome = 'granted';
      r.grant = grant;
      granted.push(id);
    }
  });
  return r;
}

describe('TailQueueBudget', () => {
  test('grants at once while the bytes fit, then makes later reservations wait', async () => {
    const budget = new TailQueueBudget(100);
    const granted: number[] = [];
    const a = request(budget, 1, 60, granted);
    const b = request(budget, 2, 40, granted);
    const c = request(budget, 3, 1, granted);
    await settle();
    assert.deepEqual(granted, [1, 2]);
    assert.equal(budget.usedBytes, 100);
    assert.equal(budget.waitingCount, 1);
    assert.equal(c.outcome, 'waiting');
    a.grant!.release();
    await settle();
    assert.deepEqual(granted, [1, 2, 3]);
    assert.equal(budget.usedBytes, 41);
    b.grant!.release();
    c.grant!.release();
    assert.equal(budget.usedBytes, 0);
    assert.equal(budget.maxUsedBytes, 100);
  });

  test('waiters are served first come, first served: a large one is not overtaken by smaller ones', async () => {
    const budget = new TailQueueBudget(100);
    const granted: number[] = [];
    const holder = request(budget, 1, 90, granted);
    await settle();
    request(budget, 2, 50, granted);
    const small = request(budget, 3, 5, granted);
    await settle();
    // 5 bytes would fit beside the 90, but the 50 asked first.
    assert.equal(small.outcome, 'waiting');
    assert.equal(budget.waitingCount, 2);
    holder.grant!.release();
    await settle();
    assert.deepEqual(granted, [1, 2, 3]);
  });

  test('a reservation larger than the whole budget is granted alone, once nothing else is held', async () => {
    const budget = new TailQueueBudget(100);
    const granted: number[] = [];
    const small = request(budget, 1, 10, granted);
    await settle();
    const huge = request(budget, 2, 250, granted);
    const after = request(budget, 3, 10, granted);
    await settle();
    assert.equal(huge.outcome, 'waiting');
    small.grant!.release();
    await settle();
    assert.deepEqual(granted, [1, 2]);
    assert.equal(budget.usedBytes, 250);
    assert.equal(after.outcome, 'waiting', 'nothing joins an oversized grant');
    huge.grant!.shrinkTo(50);
    await settle();
    assert.deepEqual(granted, [1, 2, 3]);
    assert.equal(budget.usedBytes, 60);
  });

  test('an aborted waiter leaves the line, and those behind it move up', async () => {
    const budget = new TailQueueBudget(100);
    const granted: number[] = [];
    const holder = request(budget, 1, 30, granted);
    await settle();
    const blocking = request(budget, 2, 80, granted);
    const behind = request(budget, 3, 60, granted);
    await settle();
    assert.equal(budget.waitingCount, 2);
    blocking.abort.abort();
    await settle();
    assert.equal(blocking.outcome, 'aborted');
    assert.equal(behind.outcome, 'granted');
    assert.equal(budget.waitingCount, 0);
    assert.equal(budget.usedBytes, 90);
    holder.grant!.release();
    behind.grant!.release();
    assert.equal(budget.usedBytes, 0);
  });

  test('a reservation with an aborted signal takes nothing', async () => {
    const budget = new TailQueueBudget(100);
    const abort = new AbortController();
    abort.abort();
    assert.equal(await budget.reserve(10, abort.signal), undefined);
    assert.equal(budget.usedBytes, 0);
    assert.equal(budget.waitingCount, 0);
  });

  test('release gives the bytes back exactly once; shrinkTo gives back the excess', async () => {
    const budget = new TailQueueBudget(100);
    const grant = (await budget.reserve(80, new AbortController().signal))!;
    grant.shrinkTo(30);
    assert.equal(budget.usedBytes, 30);
    assert.equal(grant.bytes, 30);
    assert.throws(() => grant.shrinkTo(31), RangeError);
    grant.release();
    grant.release();
    assert.equal(budget.usedBytes, 0);
    assert.ok(grant.isReleased);
    assert.throws(() => budget.reserve(0, new AbortController().signal), RangeError);
    assert.throws(() => new TailQueueBudget(0), RangeError);
  });

  test('under any sequence of reserve, shrink, release and abort: no leak, no overdraft, first come first served', async () => {
    const limit = 1000;
    const op = fc.oneof(
      fc.record({ kind: fc.constant('reserve' as const), bytes: fc.integer({ min: 1, max: 1500 }) }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('shrink' as const), pick: fc.nat(), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const budget = new TailQueueBudget(limit);
        const granted: number[] = [];
        const requests: Request[] = [];
        const check = (): void => {
          const live = requests.filter((r) => r.outcome === 'granted' && !r.grant!.isReleased);
          assert.equal(budget.usedBytes, live.reduce((sum, r) => sum + r.grant!.bytes, 0), 'used = bytes of live grants');
          assert.ok(budget.usedBytes <= limit || live.length === 1, `overdraft: ${budget.usedBytes} by ${live.length} grants`);
          assert.equal(budget.waitingCount, requests.filter((r) => r.outcome === 'waiting').length);
          if (budget.usedBytes === 0) {
            assert.equal(budget.waitingCount, 0, 'nobody waits on an empty budget');
          }
          assert.deepEqual(granted, [...granted].sort((x, y) => x - y), 'granted in the order asked');
        };
        for (const o of ops) {
          if (o.kind === 'reserve') {
            requests.push(request(budget, requests.length, o.bytes, granted));
          } else {
            const candidates = requests.filter((r) =>
              o.kind === 'abort' ? r.outcome === 'waiting' : r.outcome === 'granted' && !r.grant!.isReleased,
            );
            const r = candidates[o.pick % Math.max(1, candidates.length)];
            if (r !== undefined) {
              if (o.kind === 'abort') r.abort.abort();
              else if (o.kind === 'release') r.grant!.release();
              else r.grant!.shrinkTo(Math.max(1, Math.ceil(r.grant!.bytes * o.fraction)));
            }
          }
          await settle();
          check();
        }
        for (const r of requests) r.abort.abort();
        await settle();
        for (const r of requests) r.grant?.release();
        await settle();
        check();
        assert.equal(budget.usedBytes, 0);
        assert.equal(budget.waitingCount, 0);
        assert.ok(requests.every((r) => r.outcome !== 'waiting'));
      }),
      { seed: testSeed('tail queue budget'), numRuns: 200 },
    );
  });
});
