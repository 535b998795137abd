import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelayMs } from '../../../src/client/backoff.js';
import { ProducerLanes } from '../../../src/client/producer-lanes.js';
import { resolveWalClientOptions, WAL_CLIENT_DEFAULTS } from '../../../src/client/wal-client-options.js';

test('WalClient options default, and a bad one is refused naming it', () => {
  assert.equal(resolveWalClientOptions().maxInFlightMessages, WAL_CLIENT_DEFAULTS.maxInFlightMessages);
  assert.throws(() => resolveWalClientOptions({ maxInFlightMessages: 0 }), /maxInFlightMessages must be at least 1/);
  assert.throws(() => resolveWalClientOptions({ lingerMs: 1.5 }), (e: unknown) => e instanceof TypeError && /lingerMs/.test(e.message));
  assert.throws(() => resolveWalClientOptions({ initialBackoffMs: 100, maxBackoffMs: 10 }), /maxBackoffMs/);
});

test('backoff doubles up to its cap, with jitter between half the step and all of it', () => {
  assert.equal(backoffDelayMs(0, 50, 1000, () => 1), 50);
  assert.equal(backoffDelayMs(3, 50, 1000, () => 1), 400);
  assert.equal(backoffDelayMs(30, 50, 1000, () => 1), 1000);
  assert.equal(backoffDelayMs(3, 50, 1000, () => 0), 200);
});

test('producer lanes: one per unsettled append, reused most recently released first', () => {
  const lanes = new ProducerLanes();
  const a = lanes.acquire();
  const b = lanes.acquire();
  assert.notEqual(a.producerId, b.producerId);
  assert.ok(a.producerId.startsWith(lanes.clientId));
  lanes.release(b);
  assert.equal(lanes.acquire(), b);
  assert.equal(lanes.size, 2);
  assert.notEqual(new ProducerLanes().clientId, lanes.clientId, 'each client draws its own id');
});
