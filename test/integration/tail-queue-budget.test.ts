/**
 * The server-wide bound on TailWal memory (`maxTotalTailQueueBytes`): tails that would go over it
 * wait, never fail, and every byte comes back however a tail ends.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { status, type ClientReadableStream } from '@grpc/grpc-js';
import type { TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import type { TailQueueBudget } from '../../src/server/tail-queue-budget.js';
import type { TailStream } from '../../src/server/tail-stream.js';
import { rpcErrorOf, startServer, StreamReader, WalTestClient, type Harness } from './support/harness.js';

const KiB = 1024;
const RECORD_COUNT = 1000;
/** Room for about 7 messages of 16 KiB: one consumer that reads nothing can spend it all. */
const TOTAL_CAP_BYTES = 128 * KiB;

async function startCappedServer(extra: { shutdownGraceMs?: number } = {}): Promise<Harness> {
  const h = await startServer({
    wal: { syncPolicy: 'none' },
    server: {
      maxTotalTailQueueBytes: TOTAL_CAP_BYTES,
      maxResponseBytes: 16 * KiB,
      tailHeartbeatIntervalMs: 60_000,
      ...extra,
    },
  });
  const value = Buffer.alloc(KiB, 7);
  for (let i = 0; i < RECORD_COUNT / 100; i++) {
    await h.client.append({ records: Array.from({ length: 100 }, () => ({ value })) });
  }
  return h;
}

/** Clients of the running test, closed at its end. */
const clients = new Set<WalTestClient>();

async function closeAll(h: Harness): Promise<void> {
  for (const client of clients) {
    client.close();
  }
  clients.clear();
  await h.close();
}

interface Tail {
  readonly call: ClientReadableStream<TailWalResponse>;
  readonly stream: TailStream;
}

/**
 * Opens a tail from offset 0, on a connection of its own (so that a stuck tail cannot hold the
 * connection's HTTP/2 window against the others), and returns it with its server side.
 */
async function openTail(h: Harness): Promise<Tail> {
  const client = new WalTestClient(h.address, { 'grpc.use_local_subchannel_pool': 1 });
  clients.add(client);
  const opened = once(h.server.tails, 'open') as Promise<[TailStream]>;
  const call = client.tail({ start: { $case: 'fromOffset', value: 0n } });
  const [stream] = await opened;
  return { call, stream };
}

/** Which of `events` `emitter` emits first. */
function firstOf(emitter: TailStream, events: readonly ('throttled' | 'blocked' | 'message')[]): Promise<string> {
  return new Promise((resolve) => {
    const listeners = events.map((event) => {
      const listener = (): void => {
        events.forEach((e, i) => emitter.off(e, listeners[i]!));
        resolve(event);
      };
      emitter.on(event, listener);
      return listener;
    });
  });
}

/**
 * A tail whose client reads one message and then nothing (grpc-js pauses its HTTP/2 stream only
 * after a first read); resolves once the server has spent the whole budget on it: the tail then
 * waits for budget, before its own cap or its call's buffer would make it wait for its client.
 */
async function openStuckTail(h: Harness): Promise<Tail> {
  const tail = await openTail(h);
  const stopped = firstOf(tail.stream, ['throttled', 'blocked']);
  await new Promise<void>((resolve) => {
    const onData = (): void => {
      tail.call.pause();
      tail.call.off('data', onData);
      resolve();
    };
    tail.call.on('data', onData);
  });
  tail.call.on('error', () => {});
  assert.equal(await stopped, 'throttled', 'the stuck tail stopped on the server-wide budget');
  return tail;
}

/** A tail that finds the budget spent: it waits before sending anything. */
async function throttledTail(h: Harness): Promise<Tail> {
  const tail = await openTail(h);
  if (!tail.stream.counters().isWaitingForBudget) {
    assert.equal(await firstOf(tail.stream, ['throttled', 'message']), 'throttled', 'it waits before sending a record');
  }
  return tail;
}

/** Reads records until `count` have arrived, skipping heartbeats (at most `count` + 100 messages). */
async function readOffsets(reader: StreamReader<TailWalResponse>, count: number): Promise<bigint[]> {
  const offsets: bigint[] = [];
  for (let i = 0; i < count + 100 && offsets.length < count; i++) {
    offsets.push(...(await reader.next()).records.map((r) => r.offset));
  }
  return offsets;
}

/**
 * Waits until the budget stops moving: the transports have taken what their HTTP/2 windows let
 * them, and each grant that freed has gone to the tail first in line (at most 200 looks, 20 ms apart).
 * A tail that opened while the stuck one was between two reservations may have queued a message
 * first; once its transport takes it (on a loaded machine that can take longer than one look), the
 * bytes are the stuck tail's again. So the others must hold nothing, over two looks in a row.
 */
async function settled(budget: TailQueueBudget, others: readonly Tail[]): Promise<void> {
  let last = -1;
  for (let i = 0; i < 200; i++) {
    const now = budget.usedBytes;
    const othersHoldNothing = others.every((tail) => tail.stream.counters().budgetBytes === 0);
    if (now === last && othersHoldNothing && budget.waitingCount === 3) return;
    last = othersHoldNothing ? now : -1;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const expectedOffsets = (count: number): bigint[] => Array.from({ length: count }, (_, i) => BigInt(i));

describe('TailWal server-wide budget', { timeout: 60_000 }, () => {
  test('tails over maxTotalTailQueueBytes wait instead of failing, and all read everything once the stuck tail goes', async () => {
    const h = await startCappedServer();
    try {
      const budget = h.server.tailQueueBudget;
      const stuck = await openStuckTail(h);
      const first = await throttledTail(h);
      const second = await throttledTail(h);
      await settled(budget, [first, second]);
      assert.equal(budget.waitingCount, 3, 'the stuck tail and both others wait in line');
      assert.ok(budget.usedBytes > 0 && budget.usedBytes <= TOTAL_CAP_BYTES, `held ${budget.usedBytes}`);
      assert.equal(stuck.stream.counters().budgetBytes, budget.usedBytes, 'the stuck tail holds it all');
      const stats = await h.client.getStats();
      assert.equal(stats.tailStreamCount, 3);
      assert.equal(stats.tailQueueBytes, BigInt(budget.usedBytes));

      stuck.call.cancel();
      await once(stuck.stream, 'done');
      const readers = [new StreamReader(first.call), new StreamReader(second.call)];
      const offsets = await Promise.all(readers.map((reader) => readOffsets(reader, RECORD_COUNT)));
      for (const got of offsets) {
        assert.deepEqual(got, expectedOffsets(RECORD_COUNT), 'every record, in order, exactly once');
      }
      await h.client.append({ records: [{ value: Buffer.from('live') }] });
      for (const reader of readers) {
        assert.deepEqual(await readOffsets(reader, 1), [BigInt(RECORD_COUNT)]);
      }
      assert.ok(budget.maxUsedBytes <= TOTAL_CAP_BYTES, `at most ${budget.maxUsedBytes} held at once`);

      const done = [once(first.stream, 'done'), once(second.stream, 'done')];
      first.call.cancel();
      second.call.cancel();
      await Promise.all(done);
      for (const reader of readers) {
        assert.equal((await reader.end()) instanceof Error, true);
      }
      assert.equal(budget.usedBytes, 0);
      assert.equal(budget.waitingCount, 0);
      assert.equal((await h.client.getStats()).tailQueueBytes, 0n);
    } finally {
      await closeAll(h);
    }
  });

  test('a cancelled waiting tail leaves the line; shutdown ends waiting tails with UNAVAILABLE and no byte stays held', async () => {
    const h = await startCappedServer({ shutdownGraceMs: 100 });
    try {
      const budget = h.server.tailQueueBudget;
      const stuck = await openStuckTail(h);
      const leaving = await throttledTail(h);
      const staying = await throttledTail(h);
      assert.equal(budget.waitingCount, 3);
      const left = once(leaving.stream, 'done');
      leaving.call.on('error', () => {});
      leaving.call.cancel();
      await left;
      assert.equal(budget.waitingCount, 2);
      assert.equal(leaving.stream.counters().budgetBytes, 0);

      const ended = new StreamReader(staying.call).end();
      await h.server.stop();
      const failure = rpcErrorOf(await ended);
      assert.equal(failure.code, status.UNAVAILABLE);
      assert.equal(failure.reason, 'WAL_SHUTTING_DOWN');
      assert.equal(stuck.stream.counters().budgetBytes, 0, 'the stuck tail was cancelled after the grace period');
      assert.equal(budget.usedBytes, 0);
      assert.equal(budget.waitingCount, 0);
    } finally {
      await closeAll(h);
    }
  });
});
