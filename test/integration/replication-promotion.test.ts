/**
 * Promotion and divergence with real `wald serve` children: the leader is stopped, its follower
 * promoted (`wald promote`) and appended to; the old leader, which holds records the follower never
 * got, comes back as a follower of the new leader: it truncates them (into a side file, reported in
 * its log) and converges on the new leader's log. An Append fenced with the old epoch is refused.
 * A promoted server restarted with `follow` still naming its old leader (whose epoch is older)
 * refuses to follow it and cuts nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { WalClient } from '../../src/client/wal-client.js';
import { AppendRequest, type AppendResponse } from '../../src/gen/wald/v1/append.js';
import { ReplicationRole, type GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { rpcErrorOf } from './support/harness.js';
import { runWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { HEALTH, healthStatus, rawClient, readAll, startServe, unary, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';

async function appendValues(address: string, prefix: string, count: number): Promise<void> {
  const client = new WalClient(address);
  try {
    for (let i = 0; i < count; i += 10) {
      await client.append(Array.from({ length: 10 }, (_, j) => ({ key: Buffer.from(`k${(i + j) % 7}`), value: Buffer.from(`${prefix}${i + j}`) })));
    }
  } finally {
    await client.close();
  }
}

describe('promotion', { timeout: 180_000 }, () => {
  test('a promoted follower leads in a new epoch; the old leader comes back as its follower, truncates what it alone held, and converges', async () => {
    const temp = makeTempDir('wald-promotion-');
    const running = new Set<ServeChild>();
    const leaderDir = join(temp.dir, 'a');
    const followerDir = join(temp.dir, 'b');
    try {
      let leader = await startServe(leaderDir);
      running.add(leader);
      let follower = await startServe(followerDir, ['--follow', leader.address]);
      running.add(follower);
      await appendValues(leader.address, 'first-', 100);
      await waitForNextOffset(follower.address, 100);

      // The follower stops; the leader goes on alone, then stops too: 20 records only it holds.
      running.delete(follower);
      assert.equal((await follower.stop()).code, 0);
      await appendValues(leader.address, 'lost-', 20);
      running.delete(leader);
      assert.equal((await leader.stop()).code, 0);

      follower = await startServe(followerDir, ['--follow', leader.address], follower.port);
      running.add(follower);
      const promoted = await runWald(['promote', '--server', follower.address, '--json']);
      assert.equal(promoted.code, 0, promoted.stderr);
      assert.deepEqual(JSON.parse(promoted.stdout), { epoch: 1, start_offset: 100 });
      const again = await runWald(['promote', '--server', follower.address, '--epoch', '1']);
      assert.notEqual(again.code, 0, 'a promotion to an epoch not above the current one is refused');
      assert.match(again.stderr, /WAL_EPOCH_MISMATCH/);
      assert.equal(await healthStatus(follower.address, 'wald.v1.WalService.Write'), HEALTH.SERVING, 'the promoted server serves writes');
      await appendValues(follower.address, 'second-', 30);

      const raw = rawClient(follower.address);
      try {
        const fenced = await unary<AppendResponse>((callback) =>
          raw.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('stale') }], expectedEpoch: 0n }), callback),
        ).then(
          () => assert.fail('an append fenced with the old epoch was taken'),
          (error: unknown) => rpcErrorOf(error),
        );
        assert.equal(fenced.code, status.FAILED_PRECONDITION);
        assert.equal(fenced.reason, 'WAL_EPOCH_MISMATCH');
        await unary<AppendResponse>((callback) => raw.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('fenced-ok') }], expectedEpoch: 1n }), callback));
        const stats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
        assert.equal(stats.role, ReplicationRole.REPLICATION_ROLE_LEADER);
        assert.equal(stats.epoch, 1n);
        assert.deepEqual(stats.epochHistory.map((e) => [Number(e.epoch), Number(e.startOffset)]), [[1, 100]]);
      } finally {
        raw.close();
      }

      leader = await startServe(leaderDir, ['--follow', follower.address]);
      running.add(leader);
      const truncated = await leader.waitForLog((line) => line['msg'] === 'replication: truncated records the leader does not hold (kept in the side file)');
      assert.equal(truncated['offset'], 100);
      assert.equal(truncated['removedRecords'], 20);
      assert.equal(typeof truncated['sideFile'], 'string');
      assert.ok(existsSync(truncated['sideFile'] as string), 'the truncated frames are kept in the side file');
      await waitForNextOffset(leader.address, 131);
      const expected = await readAll(follower.address);
      assert.equal(expected.length, 131);
      assert.deepEqual(await readAll(leader.address), expected, 'the old leader converged on the new leader');
      assert.ok(!(await readAll(leader.address)).some((record) => record.value.startsWith('lost-')), 'nothing of what only the old leader held remains');
      const oldLeader = new WalClient(leader.address);
      try {
        for (let k = 0; k < 7; k++) {
          const newLeader = new WalClient(follower.address);
          const [a, b] = await Promise.all([oldLeader.get(Buffer.from(`k${k}`)), newLeader.get(Buffer.from(`k${k}`))]);
          await newLeader.close();
          assert.deepEqual(a?.value, b?.value, `Get k${k} on the old leader matches the new one`);
        }
      } finally {
        await oldLeader.close();
      }
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });

  test('a promoted server restarted with follow naming its stale old leader refuses to follow it and keeps every record it acknowledged', async () => {
    const temp = makeTempDir('wald-promotion-restart-');
    const running = new Set<ServeChild>();
    const leaderDir = join(temp.dir, 'a');
    const followerDir = join(temp.dir, 'b');
    try {
      let leader = await startServe(leaderDir);
      running.add(leader);
      let follower = await startServe(followerDir, ['--follow', leader.address]);
      running.add(follower);
      await appendValues(leader.address, 'first-', 50);
      await waitForNextOffset(follower.address, 50);
      running.delete(leader);
      assert.equal((await leader.stop()).code, 0);

      const promoted = await runWald(['promote', '--server', follower.address, '--json']);
      assert.equal(promoted.code, 0, promoted.stderr);
      assert.deepEqual(JSON.parse(promoted.stdout), { epoch: 1, start_offset: 50 });
      // Acknowledged by the promoted server, in epoch 1: these must survive whatever comes next.
      await appendValues(follower.address, 'second-', 30);
      const acknowledged = await readAll(follower.address);
      assert.equal(acknowledged.length, 80);
      running.delete(follower);
      assert.equal((await follower.stop()).code, 0);

      // The old leader comes back on its own (still in epoch 0), and the promoted server is
      // restarted with its configuration unchanged: follow naming the old leader.
      leader = await startServe(leaderDir, [], leader.port);
      running.add(leader);
      follower = await startServe(followerDir, ['--follow', leader.address], follower.port);
      running.add(follower);
      const restarted = follower;
      // Bounded: it exits, or it follows (or truncates), which fails the test at once.
      const outcome = await Promise.race([
        restarted.output.exited.then((run) => ({ run })),
        restarted.waitForLog((line) => line['msg'] === 'replication: following' || String(line['msg']).startsWith('replication: truncated')).then((line) => ({ line })),
      ]);
      assert.ok('run' in outcome, `it followed the stale leader instead of refusing: ${JSON.stringify('line' in outcome ? outcome.line : undefined)}`);
      const stopped = outcome.run;
      running.delete(follower);
      assert.equal(stopped.code, 1, 'it refuses to follow a leader of an older epoch');
      const refusal = stopped.stdout.split('\n').filter((line) => line.includes('stale leader'));
      assert.equal(refusal.length > 0, true, `the log names the reason: ${stopped.stdout}`);
      assert.match(refusal[0]!, /WAL_EPOCH_MISMATCH/);
      assert.match(refusal[0]!, /epoch 1, newer than epoch 0/);

      // Nothing was cut: started without follow, it still holds what it acknowledged, in epoch 1.
      follower = await startServe(followerDir, [], follower.port);
      running.add(follower);
      assert.deepEqual(await readAll(follower.address), acknowledged);
      const raw = rawClient(follower.address);
      try {
        const stats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
        assert.equal(stats.epoch, 1n);
        assert.equal(stats.role, ReplicationRole.REPLICATION_ROLE_LEADER);
      } finally {
        raw.close();
      }
      assert.ok(!existsSync(join(followerDir, 'truncated')), 'no side file: nothing was truncated');

      // An upstream that is itself a follower, still in epoch 0 (it follows the old leader), is not
      // judged stale: the promoted server waits for it to reach its epoch, retrying, and cuts nothing.
      const chained = await startServe(join(temp.dir, 'c'), ['--follow', leader.address]);
      running.add(chained);
      await waitForNextOffset(chained.address, 50);
      running.delete(follower);
      assert.equal((await follower.stop()).code, 0);
      follower = await startServe(followerDir, ['--follow', chained.address], follower.port);
      running.add(follower);
      const waiting = follower;
      // The second retry's line: it waited, reconnected and waited again, without exiting.
      let retries = 0;
      const line = await Promise.race([
        waiting.output.exited.then((run) => assert.fail(`it exited instead of waiting for the chained upstream: ${run.stdout}`)),
        waiting.waitForLog((entry) => entry['msg'] === 'replication: lost the leader; reconnecting' && JSON.stringify(entry['err']).includes('is a follower in epoch 0') && ++retries === 2),
      ]);
      assert.match(JSON.stringify(line['err']), /behind this log's epoch 1/);
      running.delete(follower);
      assert.equal((await follower.stop()).code, 0, 'still running, and stops cleanly');
      follower = await startServe(followerDir, [], follower.port);
      running.add(follower);
      assert.deepEqual(await readAll(follower.address), acknowledged, 'nothing was cut while it waited');
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });
});
