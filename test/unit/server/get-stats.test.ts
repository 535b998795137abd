/**
 * GetStats counts what the key-value view applied of the durable log when the call arrives: a
 * PREPARE (or a COMMIT) acknowledged just before is counted, even though the view applies it
 * after the append resolved; a view that has stopped still gets an answer, with what it holds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { encodeTxnWrites } from '../../../src/codec/txn-writes.js';
import { Wal } from '../../../src/engine/wal.js';
import type { AppendStreamSession } from '../../../src/server/append-stream.js';
import { FollowerRegistry } from '../../../src/server/followers/follower-registry.js';
import { ReplicaAcks } from '../../../src/server/followers/replica-acks.js';
import type { ReportFollowerSession } from '../../../src/server/followers/report-follower-session.js';
import { ServerEvents } from '../../../src/server/metrics/server-events.js';
import { ReplicationState } from '../../../src/server/replication-state.js';
import { getStats } from '../../../src/server/rpc/get-stats.js';
import type { RpcContext } from '../../../src/server/rpc/rpc-context.js';
import { resolveServerOptions } from '../../../src/server/server-options.js';
import type { SnapshotSendStream } from '../../../src/server/snapshot-send-stream.js';
import { StreamRegistry } from '../../../src/server/stream-registry.js';
import { TailQueueBudget } from '../../../src/server/tail-queue-budget.js';
import type { TailStream } from '../../../src/server/tail-stream.js';
import { Compactor } from '../../../src/state/compactor.js';
import { PointInTimeReplays } from '../../../src/state/point-in-time-replays.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import { MemDisk } from '../../support/mem-disk.js';

const silent = pino({ level: 'silent' });

async function openContext(disk: MemDisk): Promise<{ context: RpcContext; close(): Promise<void> }> {
  const storage = disk.mount();
  // Without the recent frames: a test here makes the view's reads of the file fail.
  const { wal } = await Wal.open({ dir: '/data', storage, preallocate: false, tailCacheBytes: 0 });
  const { keeper: state } = await StateKeeper.open({ wal, storage });
  const options = resolveServerOptions({});
  const compactor = new Compactor({ wal, state, storage, options: STATE_OPTIONS.defaults.compaction });
  const followers = new FollowerRegistry(wal, { maxFollowers: options.replication.maxFollowers, followerExpiryMs: options.replication.followerExpiryMs });
  const context: RpcContext = {
    wal,
    state,
    compactor,
    pointInTime: new PointInTimeReplays({ wal, storage, snapshotDir: state.snapshotDir, maxStateBytes: state.maxStateBytes, txnMaxEnded: STATE_OPTIONS.defaults.txnMaxEnded, maxBuilds: 1, exclusive: (run) => compactor.exclusive(run) }),
    options,
    logger: silent,
    tails: new StreamRegistry<TailStream>('TailWal', options.maxTailStreams, 'max_tail_streams'),
    tailQueueBudget: new TailQueueBudget(options.maxTotalTailQueueBytes),
    appendStreams: new StreamRegistry<AppendStreamSession>('AppendStream', options.maxAppendStreams, 'max_append_streams'),
    snapshotStreams: new StreamRegistry<SnapshotSendStream>('GetSnapshot', options.maxSnapshotStreams, 'max_snapshot_streams'),
    metrics: undefined,
    events: new ServerEvents(silent, undefined),
    followers,
    replicaAcks: new ReplicaAcks(followers, options.maxMinReplicas, options.replication.minReplicasTimeoutMs),
    followerReports: new StreamRegistry<ReportFollowerSession>('ReportFollower', options.replication.maxFollowers, 'replication.max_followers'),
    replication: new ReplicationState(),
  };
  return {
    context,
    close: async () => {
      await compactor.idle();
      await state.close();
      await wal.close();
    },
  };
}

describe('GetStats', () => {
  test('counts the transactions prepared and committed just before it, once the view applied them', async () => {
    const { context, close } = await openContext(new MemDisk());
    try {
      for (let i = 0; i < 20; i++) {
        // Straight to the log: the view applies it after the append resolved, from its tail.
        await context.wal.append([{ type: 'prepare', key: Buffer.from(`t${i}`), value: encodeTxnWrites([]) }]);
        assert.equal((await getStats({}, context)).inDoubtTransactionCount, BigInt(i + 1), `after PREPARE ${i}`);
      }
      for (let i = 0; i < 20; i++) {
        await context.wal.append([{ type: 'commit', key: Buffer.from(`t${i}`), value: Buffer.alloc(0) }]);
        assert.equal((await getStats({}, context)).inDoubtTransactionCount, BigInt(19 - i), `after COMMIT ${i}`);
      }
    } finally {
      await close();
    }
  });

  test('answers with what the view holds once it has stopped', async () => {
    const disk = new MemDisk();
    const { context, close } = await openContext(disk);
    try {
      await context.wal.append([{ type: 'prepare', key: Buffer.from('t'), value: encodeTxnWrites([]) }]);
      assert.equal((await getStats({}, context)).inDoubtTransactionCount, 1n);
      disk.inject({ op: 'read', code: 'EIO', path: /\.seg$/, times: 1000 });
      await context.wal.append([{ type: 'commit', key: Buffer.from('t'), value: Buffer.alloc(0) }]);
      await assert.rejects(context.state.caughtUp(), { code: 'WAL_IO_ERROR' });
      const stats = await getStats({}, context);
      assert.equal(stats.inDoubtTransactionCount, 1n, 'the stopped view never applied the COMMIT');
      assert.equal(stats.nextOffset, 2n);
    } finally {
      disk.clearFaults();
      await close();
    }
  });
});
