import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { WalClient, WalClientError } from '../../src/client/wal-client.js';
import { FreezableProxy } from '../support/freezable-proxy.js';
import { startServer } from './support/harness.js';

const APPENDS = 20;

function records(count: number, prefix: string): { value: Buffer }[] {
  return Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`${prefix}-${i}`) }));
}

/** Resolves once the server's log holds `count` records (a tail of its own, straight to the server). */
async function waitForRecords(address: string, count: number): Promise<void> {
  const watcher = new WalClient(address);
  const abort = new AbortController();
  try {
    for await (const event of watcher.tail(0, { signal: abort.signal })) {
      if (event.nextOffset >= count) abort.abort();
    }
  } finally {
    await watcher.close();
  }
}

describe('WalClient retries', { timeout: 120_000 }, () => {
  test('appends written but unanswered when the connection broke are acknowledged as duplicates on retry, never written twice', async () => {
    const h = await startServer();
    const proxy = await FreezableProxy.start(h.address);
    const client = new WalClient(proxy.address, { maxAppendsPerMessage: 3, maxInFlightMessages: 8, initialBackoffMs: 10 });
    try {
      await client.append(records(1, 'warm-up'));
      proxy.freeze();
      const pending = Array.from({ length: APPENDS }, (_, i) => client.append(records(2, `a${i}`)));
      await waitForRecords(h.address, 1 + 2 * APPENDS);
      proxy.cutAndThaw();
      const results = await Promise.all(pending);
      assert.ok(results.every((r) => r.duplicate), 'every retry found its append already written');
      assert.deepEqual(
        results.map((r) => r.firstOffset),
        Array.from({ length: APPENDS }, (_, i) => 1 + 2 * i),
        'with the original offsets',
      );
      assert.equal(client.appendCounters().retriedAppends, APPENDS);
      assert.ok(proxy.connections >= 2, 'the client reconnected');
      const stats = await client.stats();
      assert.equal(stats.nextOffset, 1 + 2 * APPENDS, 'nothing was written twice');
    } finally {
      await client.close();
      await proxy.close();
      await h.close();
    }
  });

  test('without idempotence, appends unanswered when the connection broke fail with UNAVAILABLE instead of being retried', async () => {
    const h = await startServer();
    const proxy = await FreezableProxy.start(h.address);
    const client = new WalClient(proxy.address, { idempotent: false, initialBackoffMs: 10 });
    try {
      await client.append(records(1, 'warm-up'));
      proxy.freeze();
      const pending = Array.from({ length: 3 }, (_, i) => client.append(records(1, `n${i}`)).catch((error: unknown) => error));
      await waitForRecords(h.address, 4);
      proxy.cutAndThaw();
      for (const outcome of await Promise.all(pending)) {
        assert.ok(outcome instanceof WalClientError);
        assert.equal(outcome.code, status.UNAVAILABLE);
      }
      assert.equal((await client.append(records(1, 'after'))).firstOffset, 4, 'the client goes on on a new connection');
    } finally {
      await client.close();
      await proxy.close();
      await h.close();
    }
  });

  test('an append that cannot reach a server fails with DEADLINE_EXCEEDED once retryDeadlineMs passed', async () => {
    const h = await startServer();
    const address = h.address;
    await h.close();
    const client = new WalClient(address, { retryDeadlineMs: 300, initialBackoffMs: 10, maxBackoffMs: 50 });
    try {
      const error = await client.append(records(1, 'x')).catch((e: unknown) => e);
      assert.ok(error instanceof WalClientError);
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
      assert.ok(error.cause instanceof WalClientError && error.cause.code === status.UNAVAILABLE, 'the cause is the last failure');
    } finally {
      await client.close();
    }
  });

  test('a caller waiting for queue room is let in when the retried appends that filled the queue expire', async () => {
    const h = await startServer();
    const proxy = await FreezableProxy.start(h.address);
    // The reconnect waits 500-1000 ms: past the 300 ms deadline of the appends it would retry.
    const client = new WalClient(proxy.address, {
      maxQueuedAppends: 2,
      maxAppendsPerMessage: 1,
      maxInFlightMessages: 4,
      retryDeadlineMs: 300,
      initialBackoffMs: 1000,
      maxBackoffMs: 1000,
    });
    try {
      await client.append(records(1, 'warm-up'));
      proxy.freeze();
      const unanswered = Array.from({ length: 4 }, (_, i) => client.append(records(1, `u${i}`)).catch((e: unknown) => e));
      await waitForRecords(h.address, 5);
      // The cut puts the four back in the queue (inside their deadline): the queue is over its room.
      proxy.cutAndThaw();
      for (let i = 0; i < 500 && client.appendCounters().queuedAppends < 4; i++) await new Promise((resolve) => setTimeout(resolve, 2));
      assert.equal(client.appendCounters().queuedAppends, 4, 'the four cut appends are back in the queue of room 2');
      const waiting = client.append(records(1, 'waiting'));
      for (const error of await Promise.all(unanswered)) {
        assert.ok(error instanceof WalClientError && error.code === status.DEADLINE_EXCEEDED, `the retried appends expired: ${String(error)}`);
      }
      // Bounded: an append that waits for room nobody gives back would never settle.
      const outcome = await Promise.race([waiting, new Promise((resolve) => setTimeout(resolve, 10_000, 'still waiting'))]);
      assert.notEqual(outcome, 'still waiting', 'the waiting append got into the queue once the expired ones left it');
      assert.equal((await client.read((outcome as { firstOffset: number }).firstOffset, { limit: 1 })).records[0]!.value.toString(), 'waiting-0');
    } finally {
      await client.close();
      await proxy.close();
      await h.close();
    }
  });

  test('a tail whose signal aborts while its stream is being opened ends without opening it for good', async () => {
    const h = await startServer();
    let tokenAsked!: () => void;
    const asked = new Promise<void>((resolve) => (tokenAsked = resolve));
    // A token provider that takes its time: the tail's first open waits on it.
    const client = new WalClient(h.address, {
      token: () => {
        tokenAsked();
        return new Promise<string>((resolve) => setTimeout(resolve, 200, 'token'));
      },
    });
    try {
      const abort = new AbortController();
      let events = 0;
      const tail = (async () => {
        for await (const _event of client.tail(0, { signal: abort.signal })) events++;
      })();
      await asked;
      abort.abort();
      const outcome = await Promise.race([tail.then(() => 'ended'), new Promise((resolve) => setTimeout(resolve, 5000, 'still running'))]);
      assert.equal(outcome, 'ended', 'the tail ended on its abort');
      assert.equal(events, 0, 'and yielded nothing after it');
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('a tail whose consumer holds an event longer than retryDeadlineMs still resumes after a broken connection', async () => {
    const h = await startServer();
    const proxy = await FreezableProxy.start(h.address);
    const writer = new WalClient(h.address);
    const client = new WalClient(proxy.address, { retryDeadlineMs: 200, initialBackoffMs: 10, maxBackoffMs: 50 });
    try {
      const abort = new AbortController();
      const seen: string[] = [];
      for await (const event of client.tail(0, { signal: abort.signal })) {
        for (const record of event.records) seen.push(record.value.toString());
        // Caught up on the empty log: the record appended now comes live, with nothing behind it
        // (the next heartbeat is seconds away).
        if (seen.length === 0) await writer.append(records(1, 'first'));
        if (seen.length === 1 && event.records.length > 0) {
          // The connection breaks while the consumer works on the event for longer than the deadline.
          proxy.cutAndThaw();
          await new Promise((resolve) => setTimeout(resolve, 400));
          await writer.append(records(1, 'second'));
        }
        if (seen.length === 2) abort.abort();
      }
      assert.deepEqual(seen, ['first-0', 'second-0'], 'the tail resumed from after the first record');
      assert.ok(proxy.connections >= 2, 'over a new connection');
    } finally {
      await client.close();
      await writer.close();
      await proxy.close();
      await h.close();
    }
  });
  test('a token provider that fails: every call rejects with a WalClientError UNAUTHENTICATED, and an append sent before may be written', async () => {
    const h = await startServer();
    const proxy = await FreezableProxy.start(h.address);
    let tokenFails = false;
    const client = new WalClient(proxy.address, {
      initialBackoffMs: 10,
      token: () => (tokenFails ? Promise.reject(new Error('token service down')) : Promise.resolve('token')),
    });
    try {
      await client.append(records(1, 'warm-up'));
      proxy.freeze();
      const sent = client.append(records(1, 'sent')).catch((error: unknown) => error);
      await waitForRecords(h.address, 2);
      tokenFails = true;
      // The reconnect asks the provider for the stream's metadata, which fails.
      proxy.cutAndThaw();
      const appendFailure = await sent;
      assert.ok(appendFailure instanceof WalClientError && appendFailure.code === status.UNAUTHENTICATED, String(appendFailure));
      assert.match(appendFailure.message, /may or may not be written/, 'the append was sent, and is in the log');
      for (const call of [() => client.read(0), () => client.stats(), () => client.get(Buffer.from('k'))]) {
        const failure = await call().catch((error: unknown) => error);
        assert.ok(failure instanceof WalClientError, `a WalClientError: ${String(failure)}`);
        assert.equal(failure.code, status.UNAUTHENTICATED);
      }
      const tailFailure = await (async () => {
        for await (const _event of client.tail(0)) return 'an event';
        return 'ended';
      })().catch((error: unknown) => error);
      assert.ok(tailFailure instanceof WalClientError && tailFailure.code === status.UNAUTHENTICATED, `the tail: ${String(tailFailure)}`);
    } finally {
      await client.close();
      await proxy.close();
      await h.close();
    }
  });
  test('backpressure bounds what the client holds: with the server not answering, callers wait and the queue stays within its room', async () => {
    const h = await startServer();
    const proxy = await FreezableProxy.start(h.address);
    const client = new WalClient(proxy.address, { maxQueuedAppends: 50, maxInFlightMessages: 2, maxAppendsPerMessage: 10, initialBackoffMs: 10 });
    try {
      await client.append(records(1, 'warm-up'));
      proxy.freeze();
      const sentBefore = client.appendCounters().sentAppends;
      let settled = 0;
      const callers = Array.from({ length: 1000 }, (_, i) => client.append([{ value: Buffer.alloc(1024, i) }]).finally(() => settled++));
      // Two messages of ten go out, unanswered; fifty wait queued; the other callers wait for room.
      await waitForRecords(h.address, 21);
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      const held = client.appendCounters();
      assert.equal(held.sentAppends - sentBefore, 20, 'only the window of messages was sent');
      assert.equal(held.inFlightMessages, 2);
      assert.equal(held.queuedAppends, 50, 'the queue holds its room, no more');
      assert.equal(settled, 0);
      proxy.cutAndThaw();
      const results = await Promise.all(callers);
      assert.equal(new Set(results.map((r) => r.firstOffset)).size, 1000, 'every caller got in, once');
      assert.equal(client.appendCounters().queuedAppends, 0);
    } finally {
      await client.close();
      await proxy.close();
      await h.close();
    }
  });
});
