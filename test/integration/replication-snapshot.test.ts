/**
 * Snapshot bootstrap with real `wald serve` children: while its follower is stopped, the leader
 * compacts past the follower's next offset; restarted, the follower is told OUT_OF_RANGE
 * WAL_OFFSET_COMPACTED with the snapshot to install, fetches and installs it, tails on from its
 * offset, and its Get answers match the leader's. A follower that meets a segment key compaction
 * rewrote (its frames skip offsets: it cannot be copied frame by frame) installs the leader's
 * newest snapshot instead.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WalClient } from '../../src/client/wal-client.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { runWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rawClient, readAll, startServe, unary, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';

const KEYS = 20;

async function appendKeyed(address: string, round: string, count: number): Promise<void> {
  const client = new WalClient(address);
  try {
    for (let i = 0; i < count; i += 25) {
      await client.append(Array.from({ length: 25 }, (_, j) => ({ key: Buffer.from(`k${(i + j) % KEYS}`), value: Buffer.from(`${round}-${i + j}-${'y'.repeat(200)}`) })));
    }
  } finally {
    await client.close();
  }
}

async function statsOf(address: string): Promise<GetStatsResponse> {
  const raw = rawClient(address);
  try {
    return await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
  } finally {
    raw.close();
  }
}

describe('snapshot bootstrap', { timeout: 180_000 }, () => {
  test('a follower the leader compacted past installs the leader snapshot on restart and continues; Get answers match', async () => {
    const temp = makeTempDir('wald-repl-snapshot-');
    const running = new Set<ServeChild>();
    try {
      const leader = await startServe(join(temp.dir, 'leader'), ['--segment-size-bytes', String(64 * 1024), '--compaction-retention-ms', '0']);
      running.add(leader);
      const followerDir = join(temp.dir, 'follower');
      let follower = await startServe(followerDir, ['--follow', leader.address]);
      running.add(follower);
      await appendKeyed(leader.address, 'one', 200);
      await waitForNextOffset(follower.address, 200);
      running.delete(follower);
      assert.equal((await follower.stop()).code, 0);

      await appendKeyed(leader.address, 'two', 1000);
      const compacted = await runWald(['compact', '--server', leader.address, '--json']);
      assert.equal(compacted.code, 0, compacted.stderr);
      await appendKeyed(leader.address, 'three', 100);
      const leaderStats = await statsOf(leader.address);
      assert.ok(Number(leaderStats.firstOffset) > 200, `the leader compacted past the follower (first offset ${leaderStats.firstOffset})`);

      follower = await startServe(followerDir, ['--follow', leader.address], follower.port);
      running.add(follower);
      const installed = await follower.waitForLog((line) => line['msg'] === 'replication: the leader compacted past this follower: installed its snapshot');
      const snapshotOffset = installed['firstOffset'] as number;
      assert.equal(typeof installed['snapshotId'], 'string');
      await appendKeyed(leader.address, 'four', 50);
      const next = Number((await statsOf(leader.address)).nextOffset);
      // The server restarted after the install: wait on the new one (same port).
      await waitForNextOffset(follower.address, next);
      assert.deepEqual(await readAll(follower.address, snapshotOffset), await readAll(leader.address, snapshotOffset), 'the records from the snapshot on are the leader records');
      const followerStats = await statsOf(follower.address);
      assert.equal(Number(followerStats.firstOffset), snapshotOffset, 'the follower log starts at the snapshot');
      const a = new WalClient(leader.address);
      const b = new WalClient(follower.address);
      try {
        for (let k = 0; k < KEYS; k++) {
          const [fromLeader, fromFollower] = await Promise.all([a.get(Buffer.from(`k${k}`)), b.get(Buffer.from(`k${k}`))]);
          assert.deepEqual(fromFollower?.value.toString(), fromLeader?.value.toString(), `Get k${k}`);
        }
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });

  test('on an idle leader whose snapshot sits at its next offset, a follower installs it and follows without waiting for a write', async () => {
    const temp = makeTempDir('wald-repl-snapshot-idle-');
    const running = new Set<ServeChild>();
    try {
      const leader = await startServe(join(temp.dir, 'leader'), ['--segment-size-bytes', String(64 * 1024), '--compaction-retention-ms', '0']);
      running.add(leader);
      const followerDir = join(temp.dir, 'follower');
      let follower = await startServe(followerDir, ['--follow', leader.address]);
      running.add(follower);
      await appendKeyed(leader.address, 'one', 200);
      await waitForNextOffset(follower.address, 200);
      running.delete(follower);
      assert.equal((await follower.stop()).code, 0);

      await appendKeyed(leader.address, 'two', 1000);
      // A snapshot with no checkpoint after it (Compact appends one), and the segments below it deleted.
      const created = await runWald(['snapshot', 'create', '--server', leader.address]);
      assert.equal(created.code, 0, created.stderr);
      const deleted = await runWald(['delete-segments-before', '1200', '--server', leader.address]);
      assert.equal(deleted.code, 0, deleted.stderr);
      // Nothing is written from here on: the leader holds no frame at its snapshot's offset.
      const leaderStats = await statsOf(leader.address);
      const leaderNext = Number(leaderStats.nextOffset);
      assert.equal(Number(leaderStats.lastSnapshotOffset), leaderNext, 'the snapshot sits at the leader\'s next offset');
      assert.ok(Number(leaderStats.firstOffset) > 200, `the leader compacted past the follower (first offset ${leaderStats.firstOffset})`);

      follower = await startServe(followerDir, ['--follow', leader.address], follower.port);
      running.add(follower);
      // Bounded (60 s): before the fix the install waited for the leader's next write, forever here.
      await waitForNextOffset(follower.address, leaderNext);
      const installed = await follower.waitForLog((line) => line['msg'] === 'replication: the leader compacted past this follower: installed its snapshot');
      assert.equal(installed['firstOffset'], leaderNext);
      // It follows on after the install: the next write reaches it.
      await follower.waitForLog((line) => line['msg'] === 'replication: following' && line['fromOffset'] === leaderNext);
      await appendKeyed(leader.address, 'three', 50);
      await waitForNextOffset(follower.address, leaderNext + 50);
      assert.deepEqual(await readAll(follower.address, leaderNext), await readAll(leader.address, leaderNext));
      const a = new WalClient(leader.address);
      const b = new WalClient(follower.address);
      try {
        for (let k = 0; k < KEYS; k++) {
          const [fromLeader, fromFollower] = await Promise.all([a.get(Buffer.from(`k${k}`)), b.get(Buffer.from(`k${k}`))]);
          assert.deepEqual(fromFollower?.value.toString(), fromLeader?.value.toString(), `Get k${k}`);
        }
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });

  test('a new follower of a leader whose segments key compaction rewrote installs the leader snapshot instead of copying them', async () => {
    const temp = makeTempDir('wald-repl-key-compaction-');
    const running = new Set<ServeChild>();
    try {
      // Segments are kept (retention of a day), so that --aggressive rewrites them.
      const leader = await startServe(join(temp.dir, 'leader'), ['--segment-size-bytes', String(64 * 1024)]);
      running.add(leader);
      await appendKeyed(leader.address, 'one', 1500);
      const compacted = await runWald(['compact', '--server', leader.address, '--aggressive', '--threshold', '0', '--json']);
      assert.equal(compacted.code, 0, compacted.stderr);
      assert.ok((JSON.parse(compacted.stdout) as { key_compaction?: { segments_rewritten?: number } }).key_compaction?.segments_rewritten, `segments were rewritten: ${compacted.stdout}`);
      await appendKeyed(leader.address, 'two', 100);
      const follower = await startServe(join(temp.dir, 'follower'), ['--follow', leader.address]);
      running.add(follower);
      await follower.waitForLog((line) => line['msg'] === 'replication: key compaction on the leader left frames this follower cannot copy; installing its snapshot');
      await follower.waitForLog((line) => line['msg'] === 'replication: the leader compacted past this follower: installed its snapshot');
      const next = Number((await statsOf(leader.address)).nextOffset);
      await waitForNextOffset(follower.address, next);
      const a = new WalClient(leader.address);
      const b = new WalClient(follower.address);
      try {
        for (let k = 0; k < KEYS; k++) {
          const [fromLeader, fromFollower] = await Promise.all([a.get(Buffer.from(`k${k}`)), b.get(Buffer.from(`k${k}`))]);
          assert.deepEqual(fromFollower?.value.toString(), fromLeader?.value.toString(), `Get k${k}`);
        }
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });
});
