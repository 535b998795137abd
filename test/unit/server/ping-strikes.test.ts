/**
 * PingStrikes, gRPC core's and grpc-go's keepalive enforcement on one connection: too-soon PINGs
 * are strikes, anything the server wrote clears them, past the limit the connection is to be
 * closed; with no call open the two-hour rule holds unless pings without calls are permitted.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IDLE_MIN_PING_INTERVAL_MS, PingStrikes, type PingPolicy } from '../../../src/server/ping-strikes.js';

const POLICY: PingPolicy = { minPingIntervalMs: 250, permitWithoutCalls: true, maxPingStrikes: 2 };

/** Feeds PINGs at the given times (ms) with nothing written between them; the index of the one that closes, or -1. */
function closingPing(strikes: PingStrikes, times: readonly number[], hasOpenCalls = true): number {
  return times.findIndex((nowMs) => strikes.received({ nowMs, hasServerWritten: false, hasOpenCalls }));
}

describe('ping strikes', () => {
  test('the third too-soon PING after the first closes the connection (max_ping_strikes 2)', () => {
    const strikes = new PingStrikes(POLICY);
    assert.equal(closingPing(strikes, [0, 1, 2, 3, 4]), 3);
    assert.equal(strikes.count, 3);
  });

  test('PINGs the interval apart are never strikes, however many', () => {
    const strikes = new PingStrikes(POLICY);
    assert.equal(closingPing(strikes, Array.from({ length: 1000 }, (_, i) => i * 250)), -1);
    assert.equal(strikes.count, 0);
  });

  test('a PING after the server wrote is not a strike and clears the strikes before it', () => {
    const strikes = new PingStrikes(POLICY);
    assert.equal(closingPing(strikes, [0, 1, 2]), -1);
    assert.equal(strikes.count, 2);
    assert.equal(strikes.received({ nowMs: 3, hasServerWritten: true, hasOpenCalls: true }), false);
    assert.equal(strikes.count, 0);
    // Pings that each follow a write (BDP probes answering a tail) are never punished.
    for (let i = 4; i < 1000; i++) assert.equal(strikes.received({ nowMs: i, hasServerWritten: true, hasOpenCalls: true }), false);
    // The PING that cleared them counts as the previous one: the third too-soon one after it closes.
    assert.equal(closingPing(strikes, [1000, 1001, 1002, 1003]), 2);
  });

  test('max_ping_strikes 0 closes at the first too-soon PING; interval 0 never closes', () => {
    assert.equal(closingPing(new PingStrikes({ ...POLICY, maxPingStrikes: 0 }), [0, 300, 301]), 2);
    assert.equal(closingPing(new PingStrikes({ ...POLICY, minPingIntervalMs: 0 }), Array.from({ length: 1000 }, () => 5)), -1);
  });

  test('with no call open, PINGs need two hours between them unless permitted without calls', () => {
    const times = [0, 1000, 2000, 3000];
    assert.equal(closingPing(new PingStrikes({ ...POLICY, permitWithoutCalls: false }), times, false), 3);
    assert.equal(closingPing(new PingStrikes({ ...POLICY, permitWithoutCalls: false }), times, true), -1, 'a call open: the interval holds');
    assert.equal(closingPing(new PingStrikes(POLICY), times, false), -1, 'permitted without calls');
    const hours = [0, IDLE_MIN_PING_INTERVAL_MS, 2 * IDLE_MIN_PING_INTERVAL_MS, 3 * IDLE_MIN_PING_INTERVAL_MS];
    assert.equal(closingPing(new PingStrikes({ ...POLICY, permitWithoutCalls: false }), hours, false), -1);
  });
});
