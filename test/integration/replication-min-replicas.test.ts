/**
 * The leader's side with a real follower: a leader and a `wald serve --follow` child on 127.0.0.1.
 * The leader lists the follower (connected: its frames tail is open), `min_replicas: 1` is
 * acknowledged only once the follower holds the batch durably (its high watermark, which moves
 * only after its own fsync, covers the batch when the answer arrives), `wald verify --against`
 * finds the two logs equal, a chained follower is listed by the follower it tails, and with the
 * follower stopped the same append times out with DEADLINE_EXCEEDED WAL_REPLICAS_TIMEOUT.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Metadata, status } from '@grpc/grpc-js';
import { AppendRequest, type AppendResponse } from '../../src/gen/wald/v1/append.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import type { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import { runWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rawClient, startServe, unary, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';
import { rpcErrorOf } from './support/harness.js';

function appendWithDeadline(client: WalServiceClient, request: Parameters<typeof AppendRequest.fromPartial>[0], deadlineMs: number): Promise<AppendResponse> {
  return new Promise((resolve, reject) => {
    client.append(AppendRequest.fromPartial(request), new Metadata(), { deadline: Date.now() + deadlineMs }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

describe('min_replicas with a real follower', { timeout: 180_000 }, () => {
  test('is acknowledged once the follower synced the batch, and times out once the follower is gone', async () => {
    const temp = makeTempDir('wald-min-replicas-');
    const children: ServeChild[] = [];
    const leaderClient: WalServiceClient[] = [];
    try {
      const leader = await startServe(join(temp.dir, 'leader'));
      children.push(leader);
      const follower = await startServe(join(temp.dir, 'follower'), ['--follow', leader.address, '--follower-id', 'f1']);
      children.push(follower);
      const client = rawClient(leader.address);
      leaderClient.push(client);
      const followerClient = rawClient(follower.address);
      leaderClient.push(followerClient);

      for (let round = 0; round < 5; round++) {
        const response = await appendWithDeadline(client, { records: Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(`r${round}-${i}`) })), minReplicas: 1 }, 30_000);
        // Asked only after the answer: the follower's high watermark moves after its own fsync.
        const followerStats = await unary<GetStatsResponse>((callback) => followerClient.getStats({}, callback));
        assert.ok(
          followerStats.highWatermark !== undefined && followerStats.highWatermark >= response.lastOffset,
          `round ${round}: the follower held offset ${response.lastOffset} durably when the append was answered (its high watermark: ${followerStats.highWatermark})`,
        );
      }

      const stats = await unary<GetStatsResponse>((callback) => client.getStats({}, callback));
      const listed = stats.followers.find((f) => f.followerId === 'f1');
      assert.ok(listed !== undefined, 'the leader lists the follower');
      assert.equal(listed.connected, true, 'its frames tail is open');
      assert.ok(listed.durableNextOffset >= 50n);

      await waitForNextOffset(follower.address, 50);
      const chained = await startServe(join(temp.dir, 'chained'), ['--follow', follower.address, '--follower-id', 'f2']);
      children.push(chained);
      await waitForNextOffset(chained.address, 50);
      // Its report may trail its high watermark by a message: GetStats polled, as waitForNextOffset does, bounded.
      let chainedListed: GetStatsResponse['followers'][number] | undefined;
      for (let polls = 0; polls < 500 && (chainedListed?.durableNextOffset ?? 0n) < 50n; polls++) {
        const upstream = await unary<GetStatsResponse>((callback) => followerClient.getStats({}, callback));
        chainedListed = upstream.followers.find((f) => f.followerId === 'f2');
        if ((chainedListed?.durableNextOffset ?? 0n) < 50n) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(chainedListed?.durableNextOffset, 50n, 'the follower lists the chained follower that reports to it');
      await children.pop()!.stop();
      const verify = await runWald(['verify', '--server', leader.address, '--against', follower.address, '--step', '16']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /ok: the logs agree/);

      followerClient.close();
      await children.pop()!.stop();
      const failure = rpcErrorOf(await appendWithDeadline(client, { records: [{ value: Buffer.from('alone') }], minReplicas: 1 }, 3000).catch((error: unknown) => error));
      assert.equal(failure.code, status.DEADLINE_EXCEEDED);
      assert.equal(failure.reason, 'WAL_REPLICAS_TIMEOUT');
      assert.equal(failure.metadata['replicas'], '0');
      assert.equal(failure.metadata['lastOffset'], '50');
    } finally {
      for (const c of leaderClient) c.close();
      for (const child of children.reverse()) await child.stop();
      temp.remove();
    }
  });
});
