/**
 * A server opened as a follower appends nothing on its own: with `txn_timeout_ms` passed for an
 * in-doubt transaction and automatic compaction due at every check, its log stays as its leader
 * wrote it (an ABORT or CHECKPOINT of its own would take an offset the leader's frames must fill);
 * once promoted, the timer aborts the transaction and compaction runs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Wal } from '../../src/engine/wal.js';
import { ReplicationState } from '../../src/server/replication-state.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import { MemDisk } from '../support/mem-disk.js';

const silent = pino({ level: 'silent' });
const txnId = Buffer.from('slow');

describe('a follower server', { timeout: 60_000 }, () => {
  test('runs neither the txn_timeout_ms timer nor automatic compaction until it is promoted', async () => {
    const storage = new MemDisk().mount();
    const walOptions = { dir: '/data', storage, preallocate: false } as const;
    {
      const { wal } = await Wal.open(walOptions);
      const { keeper } = await StateKeeper.open({ wal, storage });
      await keeper.append([{ type: 'put', key: Buffer.from('k'), value: Buffer.from('v') }]);
      await keeper.prepare(txnId, [{ op: 'put', key: Buffer.from('t'), value: Buffer.from('1') }]);
      await keeper.close();
      await wal.close();
    }
    let promoted = false;
    const replication = new ReplicationState({
      leaderAddress: '127.0.0.1:1',
      stop: async () => {
        promoted = true;
      },
    });
    const state = { txnTimeoutMs: 10, compaction: { enabled: true, eventsThreshold: 1, minIntervalMs: 0, checkIntervalMs: 10 } };
    const { server } = await WaldServer.open(walOptions, { listen: '127.0.0.1:0', state }, silent, replication);
    try {
      await server.start();
      const end = server.wal.highWatermark;
      // Many timer periods of both: each would have appended by now on a leader.
      await sleep(300);
      await server.state.caughtUp();
      assert.equal(server.wal.highWatermark, end, 'the follower appended nothing of its own');
      assert.equal(server.state.txnState(txnId), 'in_doubt');
      assert.equal(server.compactor.lastStartedMs, undefined, 'no compaction ran on the follower');

      await replication.promote(server.wal, undefined);
      assert.ok(promoted);
      /** The types of the durable records after `end` (a read may stop at a segment's end: read on). */
      const typesAfterEnd = async (): Promise<string[]> => {
        const types: string[] = [];
        for (let next = end + 1; next <= server.wal.highWatermark && types.length < 100; ) {
          const records = await server.wal.read(next, { limit: 100 });
          if (records.length === 0) break;
          types.push(...records.map((record) => record.type));
          next = records[records.length - 1]!.offset + 1;
        }
        return types;
      };
      let types = await typesAfterEnd();
      for (let i = 0; i < 500 && (!types.includes('abort') || server.compactor.lastStartedMs === undefined); i++) {
        await sleep(10);
        types = await typesAfterEnd();
      }
      assert.ok(types.includes('abort'), `the promoted server appended an ABORT (after ${end}: ${types.join(', ')})`);
      assert.equal(server.state.txnState(txnId), 'aborted', 'the promoted server aborted the timed-out transaction');
      assert.notEqual(server.compactor.lastStartedMs, undefined, 'the promoted server compacts');
    } finally {
      await server.stop();
    }
  });
});
