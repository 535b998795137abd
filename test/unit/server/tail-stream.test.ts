/**
 * TailStream's share of the server-wide budget, against a stand-in for the grpc-js call whose
 * transport takes messages only when the test says so. Every path by which bytes come back is
 * driven here: the transport taking a message, the call ending (cancel), a failed read, shutdown.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { Wal } from '../../../src/engine/wal.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import { TailWalResponse, type TailWalRequest } from '../../../src/gen/wald/v1/tail.js';
import { TailQueueBudget } from '../../../src/server/tail-queue-budget.js';
import { TailStream, type TailSettings } from '../../../src/server/tail-stream.js';
import { MemDisk } from '../../support/mem-disk.js';

type TailCall = ConstructorParameters<typeof TailStream>[0];

/**
 * What TailStream uses of a grpc-js server call. Like grpc-js: `write` returns false at the
 * high-water mark and `'drain'` follows once the buffer empties; after an `'error'` the status goes
 * out behind the queued messages and then `'cancelled'` says the call is over; a cancel ends the
 * call at once, and the callbacks of messages still queued then come late with an error, or never.
 * `pending[0]` is the message being written, the others wait in the call's buffer.
 */
class FakeCall extends EventEmitter {
  readonly writableHighWaterMark = 16;
  writableNeedDrain = false;
  readonly pending: { readonly response: Buffer; readonly callback: (error?: Error) => void }[] = [];
  readonly sent: TailWalResponse[] = [];
  failure: unknown;
  private isOver = false;

  constructor(readonly request: TailWalRequest) {
    super();
    this.on('error', (error: unknown) => {
      this.failure = error;
      this.endIfDrained();
    });
  }

  write(response: Buffer, callback: (error?: Error) => void): boolean {
    this.pending.push({ response, callback });
    const hasRoom = this.pending.length < this.writableHighWaterMark;
    this.writableNeedDrain ||= !hasRoom;
    return hasRoom;
  }

  /** The transport takes the `count` oldest queued messages. */
  take(count = this.pending.length): void {
    for (const { response, callback } of this.pending.splice(0, count)) {
      this.sent.push(TailWalResponse.decode(response));
      callback();
    }
    if (this.pending.length === 0 && this.writableNeedDrain) {
      this.writableNeedDrain = false;
      this.emit('drain');
    }
    this.endIfDrained();
  }

  /**
   * The client cancels. As in grpc-js, the callback of the message being written never comes, and
   * those of the messages behind it come after 'cancelled', with an error.
   */
  cancel(): Promise<void> {
    this.over();
    const [, ...buffered] = this.pending.splice(0);
    return new Promise((resolve) => {
      setImmediate(() => {
        for (const { callback } of buffered) {
          callback(new Error('stream destroyed'));
        }
        resolve();
      });
    });
  }

  get queuedBytes(): number {
    return this.pending.reduce((sum, { response }) => sum + response.length, 0);
  }

  private endIfDrained(): void {
    if (this.failure !== undefined && this.pending.length === 0) {
      this.over();
    }
  }

  private over(): void {
    if (!this.isOver) {
      this.isOver = true;
      process.nextTick(() => this.emit('cancelled', 'cancelled'));
    }
  }
}

const silent = pino({ level: 'silent' });

const SETTINGS: TailSettings = { heartbeatIntervalMs: 60_000, maxRecords: 2, maxBytes: 1024 * 1024, maxQueueBytes: 8 * 1024 * 1024 };

async function openWal(disk: MemDisk, records: number, valueBytes = 100, extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open({ dir: '/data', storage: disk.mount(), segmentSizeBytes: 1024 * 1024, preallocate: false, ...extra });
  for (let i = 0; i < records; i++) {
    await wal.append([{ value: Buffer.alloc(valueBytes, i) }]);
  }
  return wal;
}

function startTail(wal: Wal, budget: TailQueueBudget, settings: Partial<TailSettings> = {}) {
  const call = new FakeCall({ start: { $case: 'fromOffset', value: 0n }, maxRecords: 0, maxBytes: 0, frames: false, followerId: '' });
  const stream = new TailStream(call as unknown as TailCall, wal, { ...SETTINGS, ...settings }, budget, silent);
  const done = stream.run();
  return { call, stream, done };
}

/** Resolves on the first `event` of `emitter` for which `matches` holds (looking at most `limit` events). */
function until<T extends unknown[]>(emitter: EventEmitter, event: string, matches: (...args: T) => boolean, limit = 1000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const listener = (...args: unknown[]): void => {
      if (matches(...(args as T))) {
        emitter.off(event, listener);
        resolve();
      } else if (++seen >= limit) {
        emitter.off(event, listener);
        reject(new Error(`no matching ${event} within ${limit} events`));
      }
    };
    emitter.on(event, listener);
  });
}

const caughtUp = (stream: TailStream): Promise<void> => until<[number]>(stream, 'message', (recordCount) => recordCount === 0);

describe('TailStream and the server-wide budget', () => {
  test('a message holds its bytes until the transport takes it; heartbeats hold none', async () => {
    const disk = new MemDisk();
    const wal = await openWal(disk, 5);
    const budget = new TailQueueBudget(16 * 1024 * 1024);
    const tail = startTail(wal, budget);
    await caughtUp(tail.stream);
    assert.equal(tail.call.pending.length, 4, 'three batches of at most 2 records, then the caught-up heartbeat');
    const recordBytes = tail.call.pending.slice(0, 3).reduce((sum, { response }) => sum + response.length, 0);
    assert.equal(budget.usedBytes, recordBytes);
    assert.equal(tail.stream.counters().budgetBytes, recordBytes);
    assert.equal(tail.stream.counters().queuedBytes, recordBytes);
    const firstBytes = tail.call.pending[0]!.response.length;
    tail.call.take(1);
    assert.equal(budget.usedBytes, recordBytes - firstBytes);
    tail.call.take();
    assert.equal(budget.usedBytes, 0);
    assert.deepEqual(
      tail.call.sent.flatMap((m) => m.records.map((r) => r.offset)),
      [0n, 1n, 2n, 3n, 4n],
    );
    void tail.call.cancel();
    await tail.done;
    assert.equal(budget.usedBytes, 0);
    await wal.close();
  });

  test('when the call ends, the bytes of messages the transport never took come back, once', async () => {
    const disk = new MemDisk();
    const wal = await openWal(disk, 6);
    const budget = new TailQueueBudget(16 * 1024 * 1024);
    const tail = startTail(wal, budget);
    await caughtUp(tail.stream);
    assert.ok(budget.usedBytes > 0);
    assert.ok(tail.call.pending.length >= 3);
    // The late callbacks (with an error) of the dropped messages must not give bytes back again.
    const lateCallbacks = tail.call.cancel();
    await tail.done;
    assert.equal(budget.usedBytes, 0);
    await lateCallbacks;
    assert.equal(budget.usedBytes, 0);
    assert.equal(tail.stream.counters().budgetBytes, 0);
    const other = (await budget.reserve(16 * 1024 * 1024, new AbortController().signal))!;
    assert.equal(budget.usedBytes, 16 * 1024 * 1024, 'the whole budget is there again, not more');
    other.release();
    await wal.close();
  });

  test('a failed read gives back its reservation; queued messages keep theirs until the call is over', async () => {
    const disk = new MemDisk();
    // Without the recent frames, so that the reads go to the file the fault is injected into.
    const wal = await openWal(disk, 6, 100, { tailCacheBytes: 0 });
    const budget = new TailQueueBudget(16 * 1024 * 1024);
    const call = new FakeCall({ start: { $case: 'fromOffset', value: 0n }, maxRecords: 0, maxBytes: 0, frames: false, followerId: '' });
    const stream = new TailStream(call as unknown as TailCall, wal, SETTINGS, budget, silent);
    // After the first message, the next read of the log fails.
    stream.once('message', () => disk.inject({ op: 'read', code: 'EIO', path: /\.seg$/, times: 1000 }));
    const failed = once(call, 'error');
    const done = stream.run();
    await failed;
    assert.equal((call.failure as { code?: number }).code, status.UNAVAILABLE, 'WAL_IO_ERROR');
    assert.equal(call.pending.length, 1);
    assert.equal(budget.usedBytes, call.queuedBytes, 'only the queued message holds bytes');
    assert.equal(budget.waitingCount, 0);
    call.take();
    await done;
    assert.equal(budget.usedBytes, 0);
    disk.clearFaults();
    await wal.close();
  });

  test('a tail over the budget waits (no error), keeps sending heartbeats, and reads on when bytes come back', async () => {
    const disk = new MemDisk();
    const wal = await openWal(disk, 20);
    // Two batches of 2 x 100-byte records fit; a read reserves maxBytes + 64 = 364 bytes.
    const budget = new TailQueueBudget(800);
    const settings = { maxBytes: 300, heartbeatIntervalMs: 10 };
    const stuck = startTail(wal, budget, settings);
    await once(stuck.stream, 'throttled');
    const held = budget.usedBytes;
    assert.ok(held > 0 && held <= 800, `held ${held}`);
    const waiting = startTail(wal, budget, settings);
    if (!waiting.stream.counters().isWaitingForBudget) {
      await once(waiting.stream, 'throttled');
    }
    assert.equal(waiting.call.pending.length, 0, 'it read nothing');
    // While it waits, it tells its client it is alive (a heartbeat at offset 0), without budget.
    await until<[number, number]>(waiting.stream, 'message', (count, next) => count === 0 && next === 0);
    assert.ok(waiting.stream.counters().isWaitingForBudget);
    assert.equal(budget.usedBytes, held);
    assert.equal(waiting.call.failure, undefined);

    // The stuck client goes away: its bytes come back and the waiting tail reads everything.
    void stuck.call.cancel();
    await stuck.done;
    for (let i = 0; i < 100 && !waiting.call.sent.some((m) => m.records.at(-1)?.offset === 19n); i++) {
      if (waiting.call.pending.length === 0) {
        await once(waiting.stream, 'message');
      }
      waiting.call.take();
    }
    const offsets = waiting.call.sent.flatMap((m) => m.records.map((r) => Number(r.offset)));
    assert.deepEqual(offsets, Array.from({ length: 20 }, (_, i) => i));
    assert.ok(budget.maxUsedBytes <= 800, `max held ${budget.maxUsedBytes}`);
    void waiting.call.cancel();
    await waiting.done;
    assert.equal(budget.usedBytes, 0);
    await wal.close();
  });

  test('shutdown of a tail waiting for budget takes it out of the line and gives back every byte', async () => {
    const disk = new MemDisk();
    const wal = await openWal(disk, 20);
    const budget = new TailQueueBudget(800);
    const settings = { maxBytes: 300 };
    const stuck = startTail(wal, budget, settings);
    await once(stuck.stream, 'throttled');
    const waiting = startTail(wal, budget, settings);
    if (!waiting.stream.counters().isWaitingForBudget) {
      await once(waiting.stream, 'throttled');
    }
    assert.equal(budget.waitingCount, 2);
    await Promise.all([waiting.stream.shutdown(), waiting.done]);
    assert.equal(budget.waitingCount, 1, 'out of the line');
    assert.equal((waiting.call.failure as { code?: number }).code, status.UNAVAILABLE);
    assert.match(String((waiting.call.failure as { details?: string }).details), /shutting down/);
    const stopping = stuck.stream.shutdown();
    await once(stuck.call, 'error');
    assert.equal(budget.waitingCount, 0);
    assert.ok(budget.usedBytes > 0, 'messages still queued hold their bytes');
    void stuck.call.cancel(); // what the server's forced shutdown does after its grace period
    await stopping;
    assert.equal(budget.usedBytes, 0);
    await wal.close();
  });

  test('a record larger than max_bytes is read again holding budget for its size; one larger than the budget goes alone', async () => {
    const disk = new MemDisk();
    const { wal } = await Wal.open({ dir: '/data', storage: disk.mount(), segmentSizeBytes: 1024 * 1024, preallocate: false });
    await wal.append([{ value: Buffer.alloc(2000, 1) }]);
    await wal.append([{ value: Buffer.alloc(6000, 2) }]);
    await wal.append([{ value: Buffer.alloc(10, 3) }]);
    const budget = new TailQueueBudget(4096);
    const tail = startTail(wal, budget, { maxBytes: 100 });
    for (let i = 0; i < 100 && tail.call.sent.filter((m) => m.records.length > 0).length < 3; i++) {
      if (tail.call.pending.length === 0) {
        await once(tail.stream, 'message');
      }
      assert.ok(budget.usedBytes <= 4096 || tail.call.pending.length <= 1, 'an oversized message goes alone');
      tail.call.take();
    }
    const values = tail.call.sent.flatMap((m) => m.records.map((r) => r.value.length));
    assert.deepEqual(values, [2000, 6000, 10]);
    assert.ok(budget.maxUsedBytes >= 6000);
    void tail.call.cancel();
    await tail.done;
    assert.equal(budget.usedBytes, 0);
    await wal.close();
  });
});
