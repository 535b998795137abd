/**
 * Followers and leaders killed with SIGKILL (real `wald serve` children): a follower killed during
 * sustained appends and restarted on its data directory catches up with neither a gap nor a
 * duplicate; a leader killed and restarted on its port finds its follower reconnecting by itself
 * and continuing from where it was.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WalClient } from '../../src/client/wal-client.js';
import { makeTempDir } from '../support/temp-dir.js';
import { readAll, startServe, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';

/** Appends batches of 20 numbered records to `address` until `stop()`; resolves with how many were acknowledged. */
function sustainedAppends(address: string, firstValue = 0): { stop: () => Promise<number>; acknowledged: () => number } {
  const client = new WalClient(address);
  let isStopping = false;
  let acknowledged = 0;
  const loop = (async () => {
    // Bounded: at most 5000 batches (100 000 records) however long the test runs.
    for (let batch = 0; batch < 5000 && !isStopping; batch++) {
      await client.append(Array.from({ length: 20 }, (_, i) => ({ value: Buffer.from(`v${firstValue + acknowledged + i}`) })));
      acknowledged += 20;
    }
  })();
  return {
    acknowledged: () => acknowledged,
    async stop() {
      isStopping = true;
      await loop;
      await client.close();
      return acknowledged;
    },
  };
}

/** Resolves once `count()` reaches `target`, polling every 20 ms, for at most `timeoutMs`. */
async function until(count: () => number, target: number, timeoutMs = 60_000): Promise<void> {
  for (let waited = 0; count() < target; waited += 20) {
    assert.ok(waited < timeoutMs, `${count()} of ${target} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function assertDense(records: readonly { offset: number; value: string }[], count: number): void {
  assert.equal(records.length, count);
  records.forEach((record, i) => {
    assert.equal(record.offset, i, 'no gap, no duplicate');
    assert.equal(record.value, `v${i}`);
  });
}

describe('replication across SIGKILL', { timeout: 240_000 }, () => {
  test('a follower killed during sustained appends and restarted catches up without gap or duplicate', async () => {
    const temp = makeTempDir('wald-repl-kill9-');
    const running = new Set<ServeChild>();
    try {
      const leader = await startServe(join(temp.dir, 'leader'), ['--segment-size-bytes', String(64 * 1024)]);
      running.add(leader);
      const followerDir = join(temp.dir, 'follower');
      let follower = await startServe(followerDir, ['--follow', leader.address]);
      running.add(follower);
      const writer = sustainedAppends(leader.address);
      for (let round = 1; round <= 3; round++) {
        await until(writer.acknowledged, round * 1000);
        await waitForNextOffset(follower.address, round * 1000 - 500);
        running.delete(follower);
        await follower.kill();
        follower = await startServe(followerDir, ['--follow', leader.address], follower.port);
        running.add(follower);
      }
      const total = await writer.stop();
      await waitForNextOffset(follower.address, total);
      const copy = await readAll(follower.address);
      assertDense(copy, total);
      assert.deepEqual(copy, await readAll(leader.address));
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });

  test('a leader killed and restarted: its follower reconnects and continues', async () => {
    const temp = makeTempDir('wald-repl-leader-kill9-');
    const running = new Set<ServeChild>();
    try {
      const leaderDir = join(temp.dir, 'leader');
      let leader = await startServe(leaderDir);
      running.add(leader);
      const follower = await startServe(join(temp.dir, 'follower'), ['--follow', leader.address]);
      running.add(follower);
      let writer = sustainedAppends(leader.address);
      await until(writer.acknowledged, 1000);
      let total = await writer.stop();
      await waitForNextOffset(follower.address, total);

      running.delete(leader);
      await leader.kill();
      await follower.waitForLog((line) => line['msg'] === 'replication: lost the leader; reconnecting');
      leader = await startServe(leaderDir, [], leader.port);
      running.add(leader);
      writer = sustainedAppends(leader.address, total);
      await until(writer.acknowledged, 1000);
      total += await writer.stop();
      await waitForNextOffset(follower.address, total);
      const following = follower.output.lines.filter((line) => line.includes('"replication: following"'));
      assert.ok(following.length >= 2, `the follower followed again after the restart (${following.length} connections)`);
      const copy = await readAll(follower.address);
      assertDense(copy, total);
      assert.deepEqual(copy, await readAll(leader.address));
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });
});
