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
});
