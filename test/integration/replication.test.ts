/**
 * A leader, its follower and a follower of that follower, each a real `wald serve` child on
 * 127.0.0.1: appends on the leader appear on both followers with the leader's offsets; after a
 * sync the segment files are byte-identical over their used bytes; Read and Get on the followers
 * answer as the leader does; HashRange agrees on all three, over the whole log and over ranges
 * that start and end inside it; a follower refuses writes with WAL_NOT_LEADER naming its leader,
 * reports the write service NOT_SERVING, and says it is a follower in GetStats.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { WalClient } from '../../src/client/wal-client.js';
import { WalClientError } from '../../src/client/wal-client-error.js';
import type { HashRangeResponse } from '../../src/gen/wald/v1/replication.js';
import { ReplicationRole, type GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { makeTempDir } from '../support/temp-dir.js';
import { HEALTH, healthStatus, rawClient, readAll, segmentUsedBytes, startServe, unary, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';

const BATCHES = 60;
const RECORDS_PER_BATCH = 50;

describe('a leader, a follower and a chained follower', { timeout: 180_000 }, () => {
  test('appends reach both followers byte for byte; reads and gets match; followers refuse writes naming their leader', async () => {
    const temp = makeTempDir('wald-replication-');
    const children: ServeChild[] = [];
    const clients: WalClient[] = [];
    try {
      // Small segments, so that the followers start several segments from the leader's headers.
      const leader = await startServe(join(temp.dir, 'leader'), ['--segment-size-bytes', String(64 * 1024)]);
      children.push(leader);
      const follower = await startServe(join(temp.dir, 'follower'), ['--follow', leader.address, '--follower-id', 'f1']);
      children.push(follower);
      const chained = await startServe(join(temp.dir, 'chained'), ['--follow', follower.address, '--follower-id', 'f2']);
      children.push(chained);

      const writer = new WalClient(leader.address);
      clients.push(writer);
      for (let batch = 0; batch < BATCHES; batch++) {
        await writer.append(
          Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({ key: Buffer.from(`k${i % 37}`), value: Buffer.from(`b${batch}-r${i}-${'x'.repeat(i * 7)}`) })),
        );
      }
      const total = BATCHES * RECORDS_PER_BATCH;
      await waitForNextOffset(follower.address, total);
      await waitForNextOffset(chained.address, total);

      // Frame boundaries are every RECORDS_PER_BATCH offsets; a range counts the frames starting in it.
      for (const [from, to] of [[0, total], [RECORDS_PER_BATCH * 7, RECORDS_PER_BATCH * 41 + 3]] as const) {
        const hashes = await Promise.all([leader, follower, chained].map(async (child) => {
          const raw = rawClient(child.address);
          try {
            return await unary<HashRangeResponse>((callback) => raw.hashRange({ fromOffset: BigInt(from), toOffset: BigInt(to) }, callback));
          } finally {
            raw.close();
          }
        }));
        assert.equal(Number(hashes[0]!.frameCount), Math.ceil((to - from) / RECORDS_PER_BATCH), `HashRange [${from}, ${to}) counts the leader's frames`);
        assert.deepEqual(hashes[1], hashes[0], `HashRange [${from}, ${to}): the follower agrees with the leader`);
        assert.deepEqual(hashes[2], hashes[0], `HashRange [${from}, ${to}): the chained follower agrees with the leader`);
      }

      assert.equal(await healthStatus(leader.address, 'wald.v1.WalService.Write'), HEALTH.SERVING, 'the leader serves writes');
      const expected = await readAll(leader.address);
      assert.equal(expected.length, total);
      assert.deepEqual(await readAll(follower.address), expected, 'the follower holds the leader records, offsets included');
      assert.deepEqual(await readAll(chained.address), expected, 'the chained follower too');

      for (const address of [follower.address, chained.address]) {
        const reader = new WalClient(address);
        clients.push(reader);
        for (let k = 0; k < 37; k++) {
          const key = Buffer.from(`k${k}`);
          const [fromLeader, fromFollower] = await Promise.all([writer.get(key), reader.get(key)]);
          assert.deepEqual(fromFollower?.value, fromLeader?.value, `Get k${k} on ${address}`);
        }
        const refused = await reader.append([{ value: Buffer.from('nope') }]).then(
          () => assert.fail('a follower took an append'),
          (error: unknown) => error as WalClientError,
        );
        assert.ok(refused instanceof WalClientError);
        assert.equal(refused.code, status.FAILED_PRECONDITION);
        assert.equal(refused.reason, 'WAL_NOT_LEADER');
        assert.equal(refused.metadata['leader'], address === follower.address ? leader.address : follower.address);

        const raw = rawClient(address);
        const stats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
        raw.close();
        assert.equal(stats.role, ReplicationRole.REPLICATION_ROLE_FOLLOWER);
        assert.equal(stats.leaderAddress, address === follower.address ? leader.address : follower.address);
        // Caught up: it holds the high watermark its upstream last reported, and lags by nothing.
        assert.equal(stats.leaderHighWatermark, stats.highWatermark, 'the upstream\'s high watermark, as its last message said');
        assert.deepEqual([stats.replicationLagRecords, stats.replicationLagMs], [0n, 0n]);
        assert.equal(await healthStatus(address, 'wald.v1.WalService.Write'), HEALTH.NOT_SERVING, 'a follower does not serve writes');
        assert.equal(await healthStatus(address, 'wald.v1.WalService'), HEALTH.SERVING, 'a follower serves reads');
      }

      // Stopped (SIGTERM: each syncs and closes its log), the three logs are compared file by file.
      for (const child of children.reverse().splice(0)) {
        const run = await child.stop();
        assert.equal(run.code, 0, run.stderr);
      }
      const leaderSegments = segmentUsedBytes(join(temp.dir, 'leader'));
      assert.ok(leaderSegments.size >= 3, `the leader rolled segments (${leaderSegments.size})`);
      for (const copy of ['follower', 'chained']) {
        const segments = segmentUsedBytes(join(temp.dir, copy));
        assert.deepEqual([...segments.keys()], [...leaderSegments.keys()], `${copy}: the same segment files`);
        for (const [name, bytes] of leaderSegments) {
          assert.ok(bytes.equals(segments.get(name)!), `${copy}/${name} is byte-identical to the leader's over its used bytes`);
        }
      }
    } finally {
      for (const client of clients) await client.close();
      for (const child of children) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });
});
