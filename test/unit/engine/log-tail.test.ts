/**
 * The engine's one tail loop (`Wal.openTail`, src/engine/log-tail.ts): catch-up in bounded batches,
 * the idle signal, its endings, the single high-watermark waiter, and the `admit` hook.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { RECORD_ALLOWANCE_BYTES, recordSizeBytes } from '../../../src/codec/record-size.js';
import { LogTail, type TailSource } from '../../../src/engine/log-tail.js';
import type { TailAdmission, TailEvent } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { MemDisk } from '../../support/mem-disk.js';

const opened: Wal[] = [];
afterEach(async () => {
  for (const wal of opened.splice(0)) await wal.close();
});

async function openWal(segmentSizeBytes = 1024 * 1024): Promise<Wal> {
  const { wal } = await Wal.open({ dir: '/data', storage: new MemDisk().mount(), segmentSizeBytes, preallocate: false });
  opened.push(wal);
  return wal;
}

/** Appends `count` single-record batches with values of `valueBytes(i)` bytes. */
async function fill(wal: Wal, count: number, valueBytes: (i: number) => number = () => 100): Promise<void> {
  for (let i = 0; i < count; i++) {
    await wal.append([{ value: Buffer.alloc(valueBytes(i), i % 256) }]);
  }
}

/** The next event, failing the test when the tail has ended. */
async function nextEvent<A extends TailAdmission>(tail: LogTail<A>): Promise<TailEvent<A>> {
  const result = await tail.next();
  assert.equal(result.done, false, 'the tail ended');
  return result.value as TailEvent<A>;
}

/** Events until the first idle signal (at most `limit`), that signal included. */
async function untilIdle<A extends TailAdmission>(tail: LogTail<A>, limit = 1000): Promise<TailEvent<A>[]> {
  const events: TailEvent<A>[] = [];
  for (let i = 0; i < limit; i++) {
    const event = await nextEvent(tail);
    events.push(event);
    if (event.kind === 'idle') return events;
  }
  throw new Error(`no idle signal within ${limit} events`);
}

const offsetsOf = (events: readonly TailEvent[]): number[] => events.flatMap((e) => (e.kind === 'records' ? e.records.map((r) => r.offset) : []));

/** A source over a real log that counts the high-watermark waits the tail starts. */
function countingSource(wal: Wal): { source: TailSource; waits: () => number } {
  let waits = 0;
  const source: TailSource = {
    highWatermark: () => wal.highWatermark,
    readBatch: async (fromOffset, limit, maxBytes) => {
      const records = await wal.read(fromOffset, { limit, maxBytes });
      const last = records[records.length - 1];
      return { records, sizeBytes: records.reduce((sum, r) => sum + recordSizeBytes(r), 0), nextOffset: last === undefined ? fromOffset : last.offset + 1 };
    },
    waitForHighWatermark: (offset, signal) => {
      waits++;
      return wal.waitForHighWatermark(offset, signal);
    },
  };
  return { source, waits: () => waits };
}

describe('LogTail', () => {
  test('catches up in batches within maxRecords and maxBytes, a larger record alone, then signals idle', async () => {
    const wal = await openWal();
    // Small records, some middling ones, and at offset 7 one larger than maxBytes.
    const valueBytes = (i: number): number => (i === 7 ? 2000 : i % 7 === 3 ? 300 : 10);
    await fill(wal, 30, valueBytes);
    const maxRecords = 4;
    const maxBytes = 400;
    // What the limits allow, greedily: records while both hold, at least one per batch.
    const expected: number[][] = [];
    for (let offset = 2, batch: number[] = [], bytes = 0; offset < 30; offset++) {
      const size = RECORD_ALLOWANCE_BYTES + valueBytes(offset);
      if (batch.length > 0 && (batch.length === maxRecords || bytes + size > maxBytes)) {
        expected.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(offset);
      bytes += size;
      if (offset === 29) expected.push(batch);
    }
    assert.ok(expected.some((b) => b.length === maxRecords) && expected.some((b) => b.length === 2), 'both limits bind');
    const tail = wal.openTail(2, { maxRecords, maxBytes });
    const events = await untilIdle(tail);
    const idle = events.pop()!;
    assert.deepEqual(idle, { kind: 'idle', nextOffset: 30 });
    assert.deepEqual(events.map((e) => (e.kind === 'records' ? e.records.map((r) => r.offset) : 'idle')), expected);
    for (const event of events) {
      assert.ok(event.kind === 'records');
      assert.equal(event.sizeBytes, event.records.reduce((sum, r) => sum + recordSizeBytes(r), 0));
      assert.equal(event.nextOffset, event.records.at(-1)!.offset + 1);
      assert.equal(event.admission, undefined);
    }
    assert.equal(tail.nextOffset, 30);
    await tail.return();
  });

  test('signals idle once when it catches up, then every idleMs while no record arrives, and never right after live records', async () => {
    const wal = await openWal();
    await fill(wal, 3);
    const quiet = wal.openTail(0);
    assert.deepEqual(offsetsOf(await untilIdle(quiet)), [0, 1, 2]);
    // Without idleMs nothing more comes until a record does, and catching up again is not signalled.
    const pending = nextEvent(quiet);
    await fill(wal, 1);
    const live = await pending;
    assert.equal(live.kind, 'records');
    const afterLive = nextEvent(quiet);
    await fill(wal, 1);
    assert.deepEqual(offsetsOf([await afterLive]), [4]);
    await quiet.return();

    const ticking = wal.openTail(5, { idleMs: 5 });
    assert.deepEqual(await nextEvent(ticking), { kind: 'idle', nextOffset: 5 }, 'at once: nothing to catch up');
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await nextEvent(ticking), { kind: 'idle', nextOffset: 5 });
    }
    await fill(wal, 1);
    const next = await nextEvent(ticking);
    assert.deepEqual(offsetsOf([next]), [5]);
    assert.deepEqual(await nextEvent(ticking), { kind: 'idle', nextOffset: 6 }, 'after idleMs without records');
    await ticking.return();
  });

  test('an idle tail holds one high-watermark waiter across idle periods', async () => {
    const wal = await openWal();
    await fill(wal, 2);
    const { source, waits } = countingSource(wal);
    const tail = new LogTail(source, 0, { idleMs: 2 });
    assert.deepEqual(offsetsOf(await untilIdle(tail)), [0, 1]);
    for (let i = 0; i < 10; i++) {
      assert.equal((await nextEvent(tail)).kind, 'idle');
    }
    assert.equal(waits(), 1, 'one wait for ten idle periods');
    await fill(wal, 1);
    let event = await nextEvent(tail);
    for (let i = 0; i < 10 && event.kind === 'idle'; i++) {
      event = await nextEvent(tail);
    }
    assert.deepEqual(offsetsOf([event]), [2]);
    assert.equal((await nextEvent(tail)).kind, 'idle');
    assert.equal(waits(), 2, 'a new wait once records came');
    await tail.return();
  });

  test('ends when its signal aborts, while waiting or between events', async () => {
    const wal = await openWal();
    await fill(wal, 2);
    const controller = new AbortController();
    const tail = wal.openTail(0, { signal: controller.signal });
    await untilIdle(tail);
    const waiting = tail.next();
    controller.abort();
    assert.deepEqual(await waiting, { done: true, value: undefined });

    const other = new AbortController();
    const between = wal.openTail(0, { signal: other.signal, maxRecords: 1 });
    assert.equal((await nextEvent(between)).kind, 'records');
    other.abort();
    assert.deepEqual(await between.next(), { done: true, value: undefined }, 'no read after the abort');
    assert.equal(wal.openTail(0, { signal: AbortSignal.abort() }).nextOffset, 0);
    assert.deepEqual(await wal.openTail(0, { signal: AbortSignal.abort() }).next(), { done: true, value: undefined });
  });

  test('throws WAL_CLOSED when the log closes under a waiting tail', async () => {
    const wal = await openWal();
    await fill(wal, 1);
    const tail = wal.openTail(0, { idleMs: 60_000 });
    await untilIdle(tail);
    const ended = assert.rejects(tail.next(), (e) => isWalError(e, 'WAL_CLOSED'));
    await wal.close();
    await ended;
  });

  test('throws WAL_OFFSET_COMPACTED when compaction removes what it has still to read', async () => {
    const wal = await openWal(4096);
    await fill(wal, 100);
    const tail = wal.openTail(0, { maxRecords: 5 });
    assert.deepEqual(offsetsOf([await nextEvent(tail)]), [0, 1, 2, 3, 4]);
    assert.ok((await wal.deleteSegmentsBefore(60)) > 0);
    await assert.rejects(tail.next(), (e) => isWalError(e, 'WAL_OFFSET_COMPACTED'));
  });

  test('a start outside the log throws at open', async () => {
    const wal = await openWal(4096);
    await fill(wal, 100);
    assert.throws(() => wal.openTail(101), (e) => isWalError(e, 'WAL_OFFSET_OUT_OF_RANGE'));
    assert.ok((await wal.deleteSegmentsBefore(60)) > 0);
    assert.throws(() => wal.openTail(0), (e) => isWalError(e, 'WAL_OFFSET_COMPACTED'));
    assert.throws(() => wal.openTail(-1), RangeError);
    assert.throws(() => wal.openTail(wal.firstOffset, { idleMs: 0 }), RangeError);
  });
});

/** A grant that records whether it was given back. */
class Grant implements TailAdmission {
  released = 0;
  constructor(readonly nextOffset: number, readonly bytes: number) {}
  release(): void {
    this.released++;
  }
}

describe('LogTail admit hook', () => {
  test('admits each read with maxBytes, hands the grant over with the batch, and is never asked while idle', async () => {
    const wal = await openWal();
    await fill(wal, 6);
    const grants: Grant[] = [];
    const tail = wal.openTail(0, {
      maxRecords: 2,
      maxBytes: 10_000,
      idleMs: 2,
      admit: async (nextOffset, bytes) => {
        const grant = new Grant(nextOffset, bytes);
        grants.push(grant);
        return grant;
      },
    });
    const events = await untilIdle(tail);
    for (let i = 0; i < 5; i++) assert.equal((await nextEvent(tail)).kind, 'idle');
    assert.deepEqual(grants.map((g) => [g.nextOffset, g.bytes]), [[0, 10_000], [2, 10_000], [4, 10_000]], 'one admission per read, none while idle');
    const handed = events.flatMap((e) => (e.kind === 'records' ? [e.admission] : []));
    assert.deepEqual(handed, grants, 'each batch carries its own grant');
    assert.ok(grants.every((g) => g.released === 0), 'handed-over grants are the consumer’s to give back');
    await tail.return();
  });

  test('a record larger than the grant is dropped, the grant given back, and read again under a grant of its size', async () => {
    const wal = await openWal();
    await fill(wal, 3, (i) => (i === 1 ? 5000 : 10));
    const bigBytes = recordSizeBytes((await wal.read(1, { limit: 1 }))[0]!);
    const grants: Grant[] = [];
    const tail = wal.openTail(0, {
      maxBytes: 1000,
      admit: async (nextOffset, bytes) => {
        const grant = new Grant(nextOffset, bytes);
        grants.push(grant);
        return grant;
      },
    });
    const events = await untilIdle(tail);
    assert.deepEqual(
      events.map((e) => (e.kind === 'records' ? e.records.map((r) => r.offset) : 'idle')),
      [[0], [1], [2], 'idle'],
    );
    assert.deepEqual(grants.map((g) => [g.nextOffset, g.bytes, g.released]), [
      [0, 1000, 0],
      [1, 1000, 1],
      [1, bigBytes, 0],
      [2, 1000, 0],
    ]);
    const big = events[1]!;
    assert.ok(big.kind === 'records' && big.admission === grants[2] && big.sizeBytes === bigBytes);
    await tail.return();
  });

  test('admit resolving undefined ends the tail; a grant given as the signal aborts is given back', async () => {
    const wal = await openWal();
    await fill(wal, 3);
    const refused = wal.openTail(0, { admit: async () => undefined });
    assert.deepEqual(await refused.next(), { done: true, value: undefined });

    const controller = new AbortController();
    const grant = new Grant(0, 0);
    const aborted = wal.openTail(0, {
      signal: controller.signal,
      admit: async () => {
        controller.abort();
        return grant;
      },
    });
    assert.deepEqual(await aborted.next(), { done: true, value: undefined });
    assert.equal(grant.released, 1);
  });

  test('a failed read gives the grant back and ends the tail with the error', async () => {
    const disk = new MemDisk();
    // Without the recent frames, so that the tail reads the file the fault is injected into.
    const { wal } = await Wal.open({ dir: '/data', storage: disk.mount(), preallocate: false, maxOpenSegmentFiles: 1, tailCacheBytes: 0 });
    opened.push(wal);
    await fill(wal, 3);
    const grants: Grant[] = [];
    const tail = wal.openTail(0, {
      admit: async (nextOffset, bytes) => {
        const grant = new Grant(nextOffset, bytes);
        grants.push(grant);
        return grant;
      },
    });
    disk.inject({ op: 'read', code: 'EIO', path: /\.seg$/, times: 1000 });
    await assert.rejects(tail.next(), (e) => isWalError(e, 'WAL_IO_ERROR'));
    disk.clearFaults();
    assert.equal(grants.length, 1);
    assert.equal(grants[0]!.released, 1);
  });
});
