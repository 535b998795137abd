/**
 * The leader's side of replication through a real server and real gRPC clients: a test client
 * plays the follower over ReportFollower (the real protocol), and the server lists it (GetStats,
 * `wald followers`, the follower-lag gauges), counts it for `min_replicas` (Append and
 * AppendStream: acknowledged after the report that completes the batch, not before; a timeout
 * without one; the limit), and keeps the segments it needs from compaction within the lease caps.
 * A frames tail the full registry did not list does not, when it ends, disconnect a listed one.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Metadata, status, type ClientReadableStream, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { AppendRequest, AppendStreamRequest, type AppendResponse, type AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import type { ReportFollowerRequest } from '../../src/gen/wald/v1/replication.js';
import { TailWalRequest, type TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import { runWald } from '../support/cli-process.js';
import { parseExposition, sampleValue } from '../support/prometheus-text.js';
import { failureOf, rpcErrorOf, startServer, values, type Harness } from './support/harness.js';

/** A follower played by the test: a ReportFollower stream of its own, each report awaited until the server took it in. */
class PlayedFollower {
  private readonly call: ClientWritableStream<ReportFollowerRequest>;
  readonly ended: Promise<ServiceError | null>;

  constructor(
    private readonly harness: Harness,
    readonly followerId: string,
    private readonly address = '',
  ) {
    let settle: (error: ServiceError | null) => void = () => undefined;
    this.ended = new Promise((resolve) => {
      settle = resolve;
    });
    this.call = harness.client.raw.reportFollower((error) => settle(error));
  }

  /** Sends a report and resolves once the server's registry has taken it in. */
  async report(durableNextOffset: number): Promise<void> {
    const taken = new Promise<void>((resolve) => {
      const onReport = (id: string, offset: number): void => {
        if (id !== this.followerId || offset !== durableNextOffset) return;
        this.harness.server.followers.off('report', onReport);
        resolve();
      };
      this.harness.server.followers.on('report', onReport);
    });
    this.call.write({ followerId: this.followerId, durableNextOffset: BigInt(durableNextOffset), address: this.address, epoch: 0n });
    await taken;
  }

  /** Half-closes the stream, as a follower that stops; resolves with how the server ended it. */
  end(): Promise<ServiceError | null> {
    this.call.end();
    return this.ended;
  }
}

/** An Append with its own deadline; resolves with the response or rejects with the call's error. */
function appendWithDeadline(harness: Harness, request: Parameters<typeof AppendRequest.fromPartial>[0], deadlineMs?: number): Promise<AppendResponse> {
  return new Promise((resolve, reject) => {
    const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
    harness.client.raw.append(AppendRequest.fromPartial(request), new Metadata(), options, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** Ten records of 300 bytes: a batch of about 3 KiB, so that 4 KiB segments hold one each. */
function bigRecords(batch: number): { value: Buffer }[] {
  return Array.from({ length: 10 }, () => ({ value: Buffer.alloc(300, batch) }));
}

describe('followers of a leader', { timeout: 120_000 }, () => {
  test('GetStats, wald followers and the follower-lag gauges list a follower that reports over ReportFollower', async () => {
    const h = await startServer({ server: { metricsListen: '127.0.0.1:0' } });
    try {
      await h.client.append({ records: values(10) });
      const follower = new PlayedFollower(h, 'replica-1', 'replica-1.example:7070');
      await follower.report(4);

      const stats = await h.client.getStats();
      assert.equal(stats.followers.length, 1);
      const [info] = stats.followers;
      assert.equal(info?.followerId, 'replica-1');
      assert.equal(info?.address, 'replica-1.example:7070');
      assert.equal(info?.durableNextOffset, 4n);
      assert.equal(info?.lagRecords, 6n);
      assert.ok((info?.lagBytes ?? 0n) > 0n, 'six records of frames');
      assert.ok((info?.connectedSinceMs ?? 0n) > 0n);
      assert.equal(info?.connected, false, 'no frames tail is open');

      const json = await runWald(['followers', '--server', h.address, '--json']);
      assert.equal(json.code, 0, json.stderr);
      const listed = JSON.parse(json.stdout) as { followers: Record<string, unknown>[] };
      assert.deepEqual(
        listed.followers.map((f) => [f['follower_id'], f['address'], f['durable_next_offset'], f['lag_records'], f['connected']]),
        [['replica-1', 'replica-1.example:7070', 4, 6, false]],
      );
      const text = await runWald(['followers', '--server', h.address]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^FOLLOWER\s+ADDRESS\s+DURABLE NEXT\s+LAG RECORDS/);
      assert.match(text.stdout, /\nreplica-1\s+replica-1\.example:7070\s+4\s+6\s+\d+\s+\d+\s+no\s/);
      const statsText = await runWald(['stats', '--server', h.address]);
      assert.match(statsText.stdout, /followers\s+1\n/);

      const response = await fetch(`http://127.0.0.1:${h.server.metricsPort!}/metrics`);
      const samples = parseExposition(await response.text());
      assert.equal(sampleValue(samples, 'wald_follower_lag_records', { follower_id: 'replica-1' }), 6);
      assert.ok(sampleValue(samples, 'wald_follower_lag_bytes', { follower_id: 'replica-1' }) > 0);
      assert.ok(sampleValue(samples, 'wald_follower_lag_seconds', { follower_id: 'replica-1' }) >= 0);
      assert.equal(sampleValue(samples, 'wald_follower_connected', { follower_id: 'replica-1' }), 0);

      await follower.report(10);
      const caughtUp = (await h.client.getStats()).followers[0];
      assert.deepEqual([caughtUp?.lagRecords, caughtUp?.lagBytes, caughtUp?.lagMs], [0n, 0n, 0n]);
      assert.equal(await follower.end(), null, 'a half-close ends the stream with OK');
      assert.equal((await h.client.getStats()).followers.length, 1, 'a follower that left stays listed until it expires');
    } finally {
      await h.close();
    }
  });

  test('ReportFollower refuses a message without follower_id with INVALID_ARGUMENT naming the field', async () => {
    const h = await startServer();
    try {
      let call: ClientWritableStream<ReportFollowerRequest> | undefined;
      const failed = new Promise<ServiceError | null>((resolve) => {
        call = h.client.raw.reportFollower((error) => resolve(error));
      });
      call!.write({ followerId: '', durableNextOffset: 1n, address: '', epoch: 0n });
      const error = rpcErrorOf(await failed);
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.equal(error.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(error.metadata['field'], 'follower_id');
      assert.equal((await h.client.getStats()).followers.length, 0);
    } finally {
      await h.close();
    }
  });

  test('an Append with min_replicas: 1 is acknowledged only after a follower reports the batch durable', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: values(3) });
      const follower = new PlayedFollower(h, 'f1');
      await follower.report(3);
      const events: string[] = [];
      const acked = appendWithDeadline(h, { records: values(2, 'sync'), minReplicas: 1 }, 60_000).then((response) => {
        events.push(`acked ${response.firstOffset}..${response.lastOffset}`);
        return response;
      });
      // The batch (offsets 3 and 4) is durable on the leader first.
      assert.equal(await h.server.wal.waitForHighWatermark(3), true);
      await follower.report(4);
      // A round trip on the same connection: an answer sent too early would have arrived by now.
      await h.client.getStats();
      events.push('follower holds offset 4');
      await follower.report(5);
      const response = await acked;
      assert.deepEqual(events, ['follower holds offset 4', 'acked 3..4']);
      assert.equal(response.lastOffset, 4n);
      await follower.end();
    } finally {
      await h.close();
    }
  });

  test('AppendStream appends with min_replicas wait for the follower too, answered in order', async () => {
    const h = await startServer();
    try {
      const follower = new PlayedFollower(h, 'f1');
      await follower.report(0);
      const stream = h.client.appendStream();
      const answers: AppendStreamResponse[] = [];
      const events: string[] = [];
      stream.on('data', (answer: AppendStreamResponse) => {
        answers.push(answer);
        events.push(`answered ${answer.requestId}`);
      });
      stream.write(AppendStreamRequest.fromPartial({ requestId: 1n, append: { records: values(1), minReplicas: 1 } }));
      assert.equal(await h.server.wal.waitForHighWatermark(-1), true, 'offset 0 is durable on the leader');
      await h.client.getStats();
      events.push('follower reports');
      await follower.report(1);
      stream.end();
      await once(stream, 'end');
      assert.deepEqual(events, ['follower reports', 'answered 1']);
      assert.equal(answers[0]?.result?.$case, 'appended');
      await follower.end();
    } finally {
      await h.close();
    }
  });

  test('without a follower, min_replicas fails with DEADLINE_EXCEEDED WAL_REPLICAS_TIMEOUT before the deadline; the records stay', async () => {
    const h = await startServer({ server: { replication: { minReplicasTimeoutMs: 200 } } });
    try {
      const withDeadline = rpcErrorOf(await appendWithDeadline(h, { records: values(2), minReplicas: 1 }, 3000).catch((error: unknown) => error));
      assert.equal(withDeadline.code, status.DEADLINE_EXCEEDED);
      assert.equal(withDeadline.reason, 'WAL_REPLICAS_TIMEOUT', 'the server answered before grpc-js ended the call');
      assert.deepEqual([withDeadline.metadata['minReplicas'], withDeadline.metadata['replicas'], withDeadline.metadata['lastOffset']], ['1', '0', '1']);

      const noDeadline = rpcErrorOf(await appendWithDeadline(h, { records: values(1), minReplicas: 1 }).catch((error: unknown) => error));
      assert.equal(noDeadline.reason, 'WAL_REPLICAS_TIMEOUT', 'replication.min_replicas_timeout_ms bounds a call without a deadline');
      assert.equal(noDeadline.metadata['lastOffset'], '2');

      const read = await h.client.read({ fromOffset: 0n });
      assert.equal(read.records.length, 3, 'the records of both appends are in the log');
    } finally {
      await h.close();
    }
  });

  test('min_replicas above max_min_replicas is INVALID_ARGUMENT naming the field, and writes nothing', async () => {
    const h = await startServer({ server: { maxMinReplicas: 2 } });
    try {
      const failure = await failureOf(h.client.append({ records: values(1), minReplicas: 3 }));
      assert.equal(failure.code, status.INVALID_ARGUMENT);
      assert.equal(failure.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(failure.metadata['field'], 'min_replicas');
      assert.equal(failure.metadata['limit'], '2');
      assert.equal(h.server.wal.nextOffset, 0);
    } finally {
      await h.close();
    }
  });

  test('compaction keeps the segments a follower still needs and says so; beyond lease_max_bytes they go', async () => {
    const leased = { segmentSizeBytes: 4096 };
    const h = await startServer({ wal: leased, server: { state: { compaction: { retentionMs: 0 } } } });
    try {
      for (let i = 0; i < 8; i++) await h.client.append({ records: bigRecords(i) });
      const sealed = h.server.wal.listSegments().filter((segment) => !segment.isActive);
      assert.ok(sealed.length >= 2, `several sealed segments (${sealed.length})`);
      const follower = new PlayedFollower(h, 'behind');
      // It lacks a record of the first sealed segment.
      await follower.report(sealed[0]!.nextOffset - 1);
      const kept = await h.client.compact({});
      assert.equal(kept.segmentsDeleted, 0);
      assert.equal(kept.leaseHeldSegments, sealed.length);
      assert.deepEqual(kept.leaseHolders, ['behind']);
      const listed = (await h.client.getStats()).followers[0];
      assert.ok((listed?.leaseHeldBytes ?? 0n) > 0n);
      assert.equal(listed?.leaseLapsed, false);
      const text = await runWald(['compact', '--dry-run', '--server', h.address]);
      assert.match(text.stdout, /kept for followers \(would be\)\s+\d+ segments, \d+ bytes \(retention leases of behind\)/);
    } finally {
      await h.close();
    }
    const capped = await startServer({ wal: leased, server: { state: { compaction: { retentionMs: 0 } }, replication: { leaseMaxBytes: 4096 } } });
    try {
      for (let i = 0; i < 8; i++) await capped.client.append({ records: bigRecords(i) });
      const follower = new PlayedFollower(capped, 'behind');
      await follower.report(1);
      const compacted = await capped.client.compact({});
      assert.ok(compacted.segmentsDeleted > 0, 'the lease lapsed: the segments went');
      assert.equal(compacted.leaseHeldSegments, 0);
      const listed = (await capped.client.getStats()).followers[0];
      assert.equal(listed?.leaseLapsed, true, 'the follower needs a snapshot install now');
    } finally {
      await capped.close();
    }
  });
  test('a frames tail the full registry did not take, when it ends, leaves the follower of its id connected through a tail it took later', async () => {
    const h = await startServer({ server: { replication: { maxFollowers: 1 } } });
    const calls: ClientReadableStream<TailWalResponse>[] = [];
    /** Opens a frames tail naming `followerId` and resolves once its first message came (it is registered then). */
    const openTail = async (followerId: string): Promise<ClientReadableStream<TailWalResponse>> => {
      const call = h.client.raw.tailWal(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n }, frames: true, followerId }));
      call.on('error', () => undefined);
      calls.push(call);
      await once(call, 'data');
      return call;
    };
    /** Cancels `call` and waits until the server has closed its tail. */
    const closeTail = async (call: ClientReadableStream<TailWalResponse>): Promise<void> => {
      const before = h.server.tails.size;
      call.cancel();
      for (let i = 0; i < 500 && h.server.tails.size >= before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(h.server.tails.size, before - 1);
    };
    const connected = (): string[] => h.server.followers.leases().map((lease) => lease.holder);
    try {
      await h.server.wal.append(values(1));
      const a = await openTail('a');
      const untracked = await openTail('b');
      assert.deepEqual(connected(), ['a'], 'b finds the registry full: served, not listed');
      await closeTail(a);
      await openTail('b');
      assert.deepEqual(connected(), ['b'], 'b takes the place a left');
      await closeTail(untracked);
      assert.deepEqual(connected(), ['b'], 'b is still connected: its listed tail is open');
    } finally {
      for (const call of calls) call.cancel();
      await h.close();
    }
  });
});
