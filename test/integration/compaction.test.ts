/**
 * Compaction through a real server and client: Compact (and a dry run that changes nothing),
 * GetStats' reclaimable bytes and first offset, Read and TailWal below the new first offset
 * failing with OUT_OF_RANGE whose ErrorInfo names the snapshot to install (a live tail that
 * falls behind too), appends and a tail going on while compactions run, DeleteSegmentsBefore
 * refused without a covering snapshot and done with force, and automatic compaction on each
 * threshold, within the minimum interval and retention (an injected clock; checks run by hand).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import { FakeClock } from '../support/fake-clock.js';
import { failureOf, rpcErrorOf, startServer, type Harness } from './support/harness.js';

const HOUR_MS = 60 * 60 * 1000;

async function appendMany(h: Harness, count: number, valueBytes = 100, keys = 10): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    await h.client.append({
      records: Array.from({ length: Math.min(10, count - i) }, (_, j) => ({ key: Buffer.from(`key-${(i + j) % keys}`), value: Buffer.alloc(valueBytes, `v${i + j}`) })),
    });
  }
}

/** Reads a tail until it ends; resolves with the offsets received and the error it ended with. */
function drainTail(stream: ReturnType<Harness['client']['tail']>, until?: number): Promise<{ offsets: number[]; error: unknown }> {
  const offsets: number[] = [];
  return new Promise((resolve) => {
    stream.on('data', (response: TailWalResponse) => {
      for (const record of response.records) offsets.push(Number(record.offset));
      if (until !== undefined && offsets.at(-1) !== undefined && offsets.at(-1)! >= until) {
        stream.cancel();
      }
    });
    stream.on('error', (error) => resolve({ offsets, error }));
    stream.on('end', () => resolve({ offsets, error: undefined }));
  });
}

describe('Compact', { timeout: 120_000 }, () => {
  test('a dry run changes nothing; Compact deletes the covered segments, and reads and tails below name the snapshot to install', async () => {
    const h = await startServer({ wal: { segmentSizeBytes: 8192 }, server: { state: { compaction: { retentionMs: 0 } } } });
    try {
      await appendMany(h, 400);
      const before = await h.client.getStats();
      assert.ok(before.segmentCount > 3n);
      assert.ok(before.reclaimableBytes > 0n, 'GetStats: the sealed segments could be reclaimed');
      const dry = await h.client.compact({ dryRun: true });
      assert.equal(dry.dryRun, true);
      assert.equal(dry.snapshotsCreated, 1);
      assert.equal(dry.bytesReclaimed, before.reclaimableBytes);
      assert.equal(BigInt(dry.segmentsDeleted), before.segmentCount - 1n);
      assert.ok(dry.redundancyRatio !== undefined && dry.redundancyRatio > 0.9, `redundancy ${dry.redundancyRatio}`);
      const unchanged = await h.client.getStats();
      assert.deepEqual(
        [unchanged.segmentCount, unchanged.firstOffset, unchanged.nextOffset, unchanged.snapshotCount],
        [before.segmentCount, 0n, before.nextOffset, 0],
        'the dry run changed nothing',
      );

      const done = await h.client.compact();
      assert.equal(done.dryRun, false);
      assert.equal(done.snapshotsCreated, 1);
      assert.equal(done.snapshotOffset, before.nextOffset);
      assert.equal(done.checkpointOffset, before.nextOffset);
      assert.equal(done.redundancyRatio, undefined);
      assert.ok(done.segmentsDeleted >= dry.segmentsDeleted);
      const after = await h.client.getStats();
      assert.equal(after.firstOffset, done.firstOffset, 'GetStats: the first retained offset');
      assert.ok(after.firstOffset > 0n);
      assert.equal(after.reclaimableBytes, 0n);
      assert.equal(after.lastSnapshotId, done.snapshotId);
      const [checkpoint] = (await h.client.read({ fromOffset: done.checkpointOffset! })).records;
      assert.equal(checkpoint?.value.toString(), done.snapshotId, 'the checkpoint record names the snapshot');

      const read = await failureOf(h.client.read({ fromOffset: 0n }));
      assert.equal(read.statusCode, status.OUT_OF_RANGE);
      assert.equal(read.reason, 'WAL_OFFSET_COMPACTED');
      assert.equal(read.metadata['snapshotId'], done.snapshotId);
      assert.equal(read.metadata['snapshotOffset'], String(done.snapshotOffset));
      assert.equal(read.metadata['firstOffset'], String(done.firstOffset));

      const tail = await drainTail(h.client.tail({ start: { $case: 'fromOffset', value: 1n } }));
      const tailError = rpcErrorOf(tail.error);
      assert.equal(tailError.statusCode, status.OUT_OF_RANGE);
      assert.equal(tailError.reason, 'WAL_OFFSET_COMPACTED');
      assert.equal(tailError.metadata['snapshotId'], done.snapshotId);
      assert.equal(tailError.metadata['snapshotOffset'], String(done.snapshotOffset));
    } finally {
      await h.close();
    }
  });

  test('appends and a tail go on while compactions run; a paused tail left below the new first offset ends naming the snapshot', async () => {
    // 400 records of 10 KB fill three 1 MiB segments and most of a fourth; the 300 small appends
    // below fit in that fourth one, so a live tail of them reads the active segment only.
    const h = await startServer({ wal: { segmentSizeBytes: 1 << 20 }, server: { state: { compaction: { retentionMs: 0 } } } });
    try {
      await appendMany(h, 400, 10_000);
      const initial = await h.client.getStats();
      assert.equal(initial.segmentCount, 4n);
      // A tail that keeps up: from the end of the initial records, live through the compactions.
      const live = drainTail(h.client.tail({ start: { $case: 'fromOffset', value: 400n } }), 400 + 300 - 1);
      // A tail that falls behind: it takes one message and stops reading (flow control holds the server back).
      const paused = h.client.tail({ start: { $case: 'fromOffset', value: 0n }, maxRecords: 1 });
      const pausedOffsets: number[] = [];
      const pausedEnd = new Promise<unknown>((resolve) => {
        paused.on('error', resolve);
        paused.on('end', () => resolve(undefined));
      });
      // Paused after each message until the compactions are done, then read on freely: how far the
      // server got before flow control held it depends on how fast it read, so the error may come
      // only after the messages it had queued.
      let isDraining = false;
      paused.on('data', (response: TailWalResponse) => {
        for (const record of response.records) pausedOffsets.push(Number(record.offset));
        if (!isDraining) paused.pause();
      });
      const appends = appendMany(h, 300, 20);
      const compactions = (async () => {
        const results = [];
        for (let i = 0; i < 3; i++) results.push(await h.client.compact());
        return results;
      })();
      await appends;
      const results = await compactions;
      assert.equal(results[0]!.segmentsDeleted, 3, 'the first compaction deleted the sealed segments');
      const stats = await h.client.getStats();
      assert.equal(stats.segmentCount, 1n, 'the small appends stayed in the active segment');
      const checkpoints = results.filter((r) => r.checkpointOffset !== undefined).length;
      assert.equal(stats.nextOffset, BigInt(700 + checkpoints), 'every append and checkpoint landed');
      const followed = await live;
      assert.deepEqual(
        followed.offsets,
        [...followed.offsets].sort((a, b) => a - b).filter((offset, i, all) => all.indexOf(offset) === i),
        'the live tail is in order, without repeats',
      );
      assert.equal(followed.offsets[0], 400);
      assert.ok(followed.offsets.at(-1)! >= 699, 'the live tail reached the last append');
      assert.equal(followed.offsets.length, followed.offsets.at(-1)! - 400 + 1, 'without gaps');

      assert.ok(pausedOffsets.length < 100, `the paused tail is behind (${pausedOffsets.length} records)`);
      isDraining = true;
      paused.resume();
      const ended = rpcErrorOf(await pausedEnd);
      assert.equal(ended.statusCode, status.OUT_OF_RANGE);
      assert.equal(ended.reason, 'WAL_OFFSET_COMPACTED');
      // The snapshot newest when the tail failed: one of the compactions'.
      assert.ok(results.some((r) => r.snapshotId === ended.metadata['snapshotId']), `names a compaction's snapshot: ${ended.metadata['snapshotId']}`);
      assert.ok(Number(ended.metadata['snapshotOffset']) >= Number(ended.metadata['firstOffset']), 'from which the log goes on');
      assert.deepEqual(pausedOffsets, Array.from({ length: pausedOffsets.length }, (_, i) => i), 'what it got was in order');
    } finally {
      await h.close();
    }
  });

  test('DeleteSegmentsBefore is refused without a covering snapshot, works with force, and only moves forward', async () => {
    const h = await startServer({ wal: { segmentSizeBytes: 8192 } });
    try {
      await appendMany(h, 300);
      const refused = await failureOf(h.client.deleteSegmentsBefore({ offset: 200n }));
      assert.equal(refused.statusCode, status.FAILED_PRECONDITION);
      assert.equal(refused.reason, 'WAL_NOT_COVERED');
      assert.equal(refused.metadata['offset'], '200');
      assert.equal((await h.client.getStats()).firstOffset, 0n, 'nothing deleted');
      const bad = await failureOf(h.client.deleteSegmentsBefore({ offset: 1n << 60n }));
      assert.equal(bad.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(bad.metadata['field'], 'offset');
      const forced = await h.client.deleteSegmentsBefore({ offset: 200n, force: true });
      assert.ok(forced.segmentsDeleted > 0 && forced.bytesReclaimed > 0n);
      assert.ok(forced.firstOffset > 0n && forced.firstOffset <= 200n);
      assert.equal((await h.client.getStats()).firstOffset, forced.firstOffset);
      const backwards = await h.client.deleteSegmentsBefore({ offset: 0n });
      assert.equal(backwards.segmentsDeleted, 0);
      assert.equal(backwards.firstOffset, forced.firstOffset);
    } finally {
      await h.close();
    }
  });
});

describe('Compact with aggressive (key compaction)', { timeout: 120_000 }, () => {
  test('rewrites the sealed segments retention keeps to the latest record per key: offsets stay, reads and tails skip the gaps, Get answers the same', async () => {
    // Retention (24 h by default) keeps every segment: only the key compaction frees anything.
    const h = await startServer({ wal: { segmentSizeBytes: 8192 } });
    try {
      for (let i = 0; i < 20; i++) await h.client.append({ records: [{ key: Buffer.from(`once-${i}`), value: Buffer.from(`only-${i}`) }] });
      await appendMany(h, 400);
      const keys = [...Array.from({ length: 20 }, (_, i) => `once-${i}`), ...Array.from({ length: 10 }, (_, i) => `key-${i}`)];
      const answers = async (): Promise<string[]> =>
        Promise.all(keys.map(async (key) => {
          const entry = await h.client.get({ key: Buffer.from(key) });
          return `${key}=${entry.value.toString()}@${entry.offset}`;
        }));
      const before = await answers();
      const beforeStats = await h.client.getStats();

      const dry = await h.client.compact({ dryRun: true, aggressive: true });
      assert.ok(dry.keyCompaction !== undefined && dry.keyCompaction.segmentsRewritten >= 2, `dry run: ${JSON.stringify(dry.keyCompaction, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      assert.ok(dry.keyCompaction.freedBytes > 0n);
      assert.equal((await h.client.getStats()).totalSizeBytes, beforeStats.totalSizeBytes, 'the dry run rewrote nothing');

      const done = await h.client.compact({ aggressive: true, thresholdPercent: 20 });
      const report = done.keyCompaction!;
      assert.equal(done.segmentsDeleted, 0, 'retention kept every segment');
      assert.equal(report.segmentsRewritten, dry.keyCompaction.segmentsRewritten);
      assert.equal(report.freedBytes, dry.keyCompaction.freedBytes);
      assert.equal(report.freedBytes, report.beforeSizeBytes - report.afterSizeBytes);
      assert.ok(report.reductionPercent > 50, `reduction ${report.reductionPercent}%`);
      assert.deepEqual(await answers(), before, 'Get answers the same for every key');

      const read = await h.client.read({ fromOffset: 0n, limit: 1000 });
      const offsets = read.records.map((record) => Number(record.offset));
      assert.ok(offsets.length < 420, `${offsets.length} records left`);
      assert.ok(offsets.every((offset, i) => i === 0 || offset > offsets[i - 1]!), 'offsets only increase');
      for (let i = 0; i < 20; i++) assert.ok(read.records.some((record) => record.key?.toString() === `once-${i}`), `once-${i} kept`);
      assert.equal(read.nextOffset, beforeStats.nextOffset + 1n, 'next_offset past the checkpoint');
      const tail = await drainTail(h.client.tail({ start: { $case: 'fromOffset', value: 0n } }), offsets.at(-1));
      assert.deepEqual(tail.offsets, offsets, 'a tail from 0 delivers the same records, across the gaps');

      const appended = await h.client.append({ records: [{ key: Buffer.from('after'), value: Buffer.from('x') }] });
      assert.equal(appended.firstOffset, read.nextOffset, 'the next append gets the next offset');
    } finally {
      await h.close();
    }
  });

  test('threshold_percent above 100, or without aggressive, is INVALID_ARGUMENT naming the field', async () => {
    const h = await startServer();
    try {
      for (const request of [{ aggressive: true, thresholdPercent: 101 }, { thresholdPercent: 10 }]) {
        const failure = await failureOf(h.client.compact(request));
        assert.equal(failure.statusCode, status.INVALID_ARGUMENT);
        assert.equal(failure.metadata['field'], 'threshold_percent');
      }
    } finally {
      await h.close();
    }
  });
});

describe('automatic compaction', { timeout: 120_000 }, () => {
  test('runs when records since the snapshot reach events_threshold, not again within min_interval_ms, and logs each run', async () => {
    const clock = new FakeClock();
    const h = await startServer({
      wal: { segmentSizeBytes: 8192, clock: clock.now },
      server: {
        state: { compaction: { enabled: true, eventsThreshold: 200, sizeThresholdBytes: 0, minIntervalMs: 60_000, retentionMs: 0, checkIntervalMs: 3_600_000 } },
      },
    });
    try {
      const scheduler = h.server.compactionScheduler;
      await appendMany(h, 150);
      assert.equal(await scheduler.check(), undefined, 'below the threshold');
      await appendMany(h, 50);
      const run = await scheduler.check();
      assert.equal(run?.trigger, 'events');
      assert.equal(run.recordsSinceSnapshot, 200);
      assert.ok(run.result.segmentsDeleted > 0);
      const logged = h.logLines.find((line) => line['msg'] === 'automatic compaction');
      assert.equal(logged?.['trigger'], 'events');
      assert.equal(logged?.['segmentsDeleted'], run.result.segmentsDeleted);
      assert.equal(logged?.['bytesReclaimed'], run.result.bytesReclaimed);

      await appendMany(h, 300);
      clock.advance(59_999);
      assert.equal(await scheduler.check(), undefined, 'within the minimum interval');
      clock.advance(1);
      assert.equal((await scheduler.check())?.trigger, 'events', 'once the interval has passed');
    } finally {
      await h.close();
    }
  });

  test('runs when the log reaches size_threshold_bytes only once retention lets it delete something', async () => {
    const clock = new FakeClock();
    const h = await startServer({
      wal: { segmentSizeBytes: 8192, clock: clock.now },
      server: {
        state: { compaction: { enabled: true, eventsThreshold: 0, sizeThresholdBytes: 20_000, minIntervalMs: 0, retentionMs: HOUR_MS, checkIntervalMs: 3_600_000 } },
      },
    });
    try {
      const scheduler = h.server.compactionScheduler;
      await appendMany(h, 400);
      assert.ok((await h.client.getStats()).totalSizeBytes >= 20_000n);
      assert.equal(await scheduler.check(), undefined, 'retention keeps every segment: nothing to reclaim');
      clock.advance(2 * HOUR_MS);
      const run = await scheduler.check();
      assert.equal(run?.trigger, 'size');
      assert.ok(run.result.segmentsDeleted > 0);
      await appendMany(h, 10);
      assert.equal(await scheduler.check(), undefined, 'what is left is young or below the threshold');
    } finally {
      await h.close();
    }
  });

  test('the server checks on its timer when enabled, and stops at shutdown', async () => {
    const h = await startServer({
      wal: { segmentSizeBytes: 8192 },
      server: { state: { compaction: { enabled: true, eventsThreshold: 100, minIntervalMs: 0, retentionMs: 0, checkIntervalMs: 10 } } },
    });
    try {
      const ran = once(h.server.compactionScheduler, 'compacted');
      await appendMany(h, 200);
      const [run] = (await ran) as [{ trigger: string }];
      assert.equal(run.trigger, 'events');
    } finally {
      await h.close();
    }
    assert.equal(await h.server.compactionScheduler.check(), undefined, 'stopped');
  });
});
