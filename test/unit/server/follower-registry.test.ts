/**
 * FollowerRegistry over a real log on a MemDisk with a fake clock: what reports and tails make of
 * a follower (address, offsets, lag in records, bytes and ms, connected), the bounds (expiry, cap,
 * eviction), the leases, and the wait of appends for replicas (woken by reports, never early,
 * counted only as far as the follower's epoch agrees with the log's history).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../../src/engine/wal.js';
import { WalError } from '../../../src/errors.js';
import { FollowerRegistry } from '../../../src/server/followers/follower-registry.js';
import { followerLagBytes } from '../../../src/server/followers/follower-lag.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';

async function openLog(clock: FakeClock): Promise<Wal> {
  const { wal } = await Wal.open({ dir: '/data', storage: new MemDisk().mount(), preallocate: false, clock: clock.now });
  return wal;
}

/** Appends `count` one-record batches, the clock moving `stepMs` before each. */
async function appendRecords(wal: Wal, clock: FakeClock, count: number, stepMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    clock.advance(stepMs);
    await wal.append([{ value: Buffer.alloc(100, i) }]);
  }
}

const report = (durableNextOffset: number, address = '') => ({ durableNextOffset, address, epoch: 0 });

describe('FollowerRegistry', () => {
  test('lists a follower with its reported address (else its peer), offsets and lag in records, bytes and ms', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      await appendRecords(wal, clock, 10, 1000);
      const registry = new FollowerRegistry(wal, { maxFollowers: 4, followerExpiryMs: 60_000, clock: clock.now });
      registry.reportOpened('b', 'ipv4:127.0.0.1:5000');
      registry.report('b', report(10));
      registry.reportOpened('a', 'ipv4:127.0.0.1:5001');
      registry.report('a', report(4, 'replica-a:7070'));
      clock.advance(500);
      const [a, b] = await registry.list();
      assert.equal(a?.followerId, 'a', 'sorted by id');
      assert.equal(a?.address, 'replica-a:7070');
      assert.equal(a?.durableNextOffset, 4);
      assert.equal(a?.lagRecords, 6);
      // Record 4 was stamped 5 s after the start; 10 s and 500 ms have passed since.
      assert.equal(a?.lagMs, 10_500 - 5000);
      assert.equal(a?.lagBytes, followerLagBytes(wal.listSegments(), 4));
      assert.ok((a?.lagBytes ?? 0) >= 6 * 100, 'six records of 100 bytes at least');
      assert.equal(a?.isConnected, false, 'no frames tail is open');
      assert.equal(b?.address, 'ipv4:127.0.0.1:5000', 'no address reported: the peer');
      assert.deepEqual([b?.lagRecords, b?.lagBytes, b?.lagMs], [0, 0, 0], 'a follower with everything lags by nothing');
    } finally {
      await wal.close();
    }
  });

  test('a follower counts as connected while a frames tail of its id is open, and since its first connection', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      const registry = new FollowerRegistry(wal, { maxFollowers: 4, followerExpiryMs: 60_000, clock: clock.now });
      const opened = clock.nowMs;
      assert.equal(registry.tailOpened('f', 'peer-1'), true);
      clock.advance(100);
      registry.reportOpened('f', 'peer-1');
      let [f] = await registry.list();
      assert.equal(f?.isConnected, true);
      assert.equal(f?.connectedSinceMs, opened, 'the report stream joined an open connection');
      registry.tailClosed('f');
      [f] = await registry.list();
      assert.equal(f?.isConnected, false);
    } finally {
      await wal.close();
    }
  });

  test('forgets a follower with nothing open after follower_expiry_ms, never one with a stream open', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      const registry = new FollowerRegistry(wal, { maxFollowers: 4, followerExpiryMs: 1000, clock: clock.now });
      registry.reportOpened('gone', 'p');
      registry.report('gone', report(0));
      registry.reportClosed('gone');
      registry.reportOpened('here', 'p');
      clock.advance(1000);
      assert.equal(registry.size, 2, 'not yet: exactly the expiry');
      clock.advance(1);
      assert.deepEqual((await registry.list()).map((f) => f.followerId), ['here']);
      assert.deepEqual(registry.leases().map((lease) => lease.holder), ['here']);
    } finally {
      await wal.close();
    }
  });

  test('at the cap a new follower replaces the one disconnected longest; with all connected it is refused', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      const registry = new FollowerRegistry(wal, { maxFollowers: 2, followerExpiryMs: 3_600_000, clock: clock.now });
      registry.reportOpened('old', 'p');
      registry.reportClosed('old');
      clock.advance(10);
      registry.reportOpened('newer', 'p');
      registry.reportClosed('newer');
      registry.reportOpened('third', 'p');
      assert.deepEqual((await registry.list()).map((f) => f.followerId), ['newer', 'third']);
      registry.reportOpened('newer', 'p');
      assert.throws(
        () => registry.reportOpened('fourth', 'p'),
        (error: unknown) => error instanceof WalError && error.code === 'WAL_TOO_MANY_STREAMS' && error.details['configKey'] === 'replication.max_followers',
      );
      assert.equal(registry.tailOpened('fourth', 'p'), false, 'a tail is served but not tracked');
      assert.equal(registry.size, 2);
    } finally {
      await wal.close();
    }
  });

  test('only a connected follower holds a retention lease, from its durable next offset', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      const registry = new FollowerRegistry(wal, { maxFollowers: 4, followerExpiryMs: 60_000, clock: clock.now });
      registry.reportOpened('reporting', 'p');
      registry.report('reporting', report(7));
      registry.tailOpened('tailing', 'p');
      registry.reportOpened('gone', 'p');
      registry.report('gone', report(3));
      registry.reportClosed('gone');
      assert.deepEqual(registry.leases(), [
        { holder: 'reporting', fromOffset: 7 },
        { holder: 'tailing', fromOffset: 0 },
      ]);
      registry.tailClosed('tailing');
      assert.deepEqual(registry.leases().map((lease) => lease.holder), ['reporting']);
      assert.equal(registry.size, 3, 'the followers gone are still listed');
    } finally {
      await wal.close();
    }
  });

  test('an append waiting for replicas is woken by the report that completes it, and not by one that does not', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      const registry = new FollowerRegistry(wal, { maxFollowers: 4, followerExpiryMs: 60_000, clock: clock.now });
      registry.reportOpened('a', 'p');
      registry.reportOpened('b', 'p');
      const events: string[] = [];
      const waiting = registry.waitForReplicas(9, 2, new AbortController().signal).then((count) => events.push(`acked with ${count}`));
      registry.report('a', report(10));
      registry.report('b', report(9));
      await Promise.resolve();
      events.push('b reported 9');
      registry.report('b', report(10));
      await waiting;
      assert.deepEqual(events, ['b reported 9', 'acked with 2']);
      assert.equal(registry.waitingAppends, 0);
    } finally {
      await wal.close();
    }
  });

  test('a wait aborted resolves with the followers that had the batch; a lower report takes a replica back', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      const registry = new FollowerRegistry(wal, { maxFollowers: 4, followerExpiryMs: 60_000, clock: clock.now });
      registry.reportOpened('a', 'p');
      const stop = new AbortController();
      const waiting = registry.waitForReplicas(4, 2, stop.signal);
      registry.report('a', report(5));
      registry.report('a', report(3));
      registry.report('a', report(5));
      stop.abort();
      assert.equal(await waiting, 1);
      assert.equal(registry.replicasOf(4), 1);
      assert.equal(registry.replicasOf(5), 0);
    } finally {
      await wal.close();
    }
  });

  test('min_replicas counts a follower only for the records its epoch shares with the log: not an old epoch beyond its end, nor an epoch the log never had', async () => {
    const clock = new FakeClock();
    const wal = await openLog(clock);
    try {
      await appendRecords(wal, clock, 10, 1);
      await wal.beginEpoch(2);
      await appendRecords(wal, clock, 10, 1);
      await wal.beginEpoch(5);
      await appendRecords(wal, clock, 10, 1);
      // Epochs here: 0 for 0..9, 2 for 10..19, 5 for 20..29.
      const registry = new FollowerRegistry(wal, { maxFollowers: 4, followerExpiryMs: 60_000, clock: clock.now });
      registry.reportOpened('f', 'peer');
      const stop = new AbortController();
      const waiting = registry.waitForReplicas(29, 1, stop.signal);
      // Offset 30 of epoch 2: a follower that kept records of an old leader of epoch 2 past where
      // epoch 2 ended here (20); it holds none of epoch 5's records.
      registry.report('f', { durableNextOffset: 30, address: '', epoch: 2 });
      assert.equal(registry.replicasOf(29), 0, 'an old epoch counts no further than its end here');
      assert.equal(registry.replicasOf(19), 1, 'but up to it');
      assert.equal(registry.replicasOf(20), 0);
      registry.report('f', { durableNextOffset: 30, address: '', epoch: 3 });
      assert.equal(registry.replicasOf(0), 0, 'an epoch this log never had counts for nothing');
      registry.report('f', { durableNextOffset: 30, address: '', epoch: 6 });
      assert.equal(registry.replicasOf(0), 0, 'nor a newer leader\'s epoch: a stale leader is not acknowledged by its successor\'s followers');
      registry.report('f', { durableNextOffset: 30, address: '', epoch: 5 });
      assert.equal(await waiting, 1, 'the current epoch counts for all it reported, and wakes the append');
      registry.report('f', { durableNextOffset: 30, address: '', epoch: 2 });
      assert.equal(registry.replicasOf(29), 0, 'and a report of an older epoch takes the count back');
      stop.abort();
    } finally {
      await wal.close();
    }
  });
});

describe('followerLagBytes', () => {
  const seg = (baseOffset: number, nextOffset: number, dataBytes: number, isActive = false) => ({ baseOffset, nextOffset, sizeBytes: dataBytes * 2, dataBytes, lastTimestamp: 0, isActive });

  test('counts the frames after the offset: whole segments after it, its own in proportion', () => {
    const segments = [seg(0, 10, 64 + 1000), seg(10, 20, 64 + 2000), seg(20, 25, 64 + 500, true)];
    assert.equal(followerLagBytes(segments, 25), 0);
    assert.equal(followerLagBytes(segments, 20), 500);
    assert.equal(followerLagBytes(segments, 15), 1000 + 500);
    assert.equal(followerLagBytes(segments, 0), 3500);
  });
});
