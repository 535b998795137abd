/**
 * ReplicationState: what a follower refuses (WAL_NOT_LEADER naming the leader), and promotion: the
 * epoch checked before anything changes, the follow loop stopped before the new epoch is made
 * durable, writes taken only once the view caught up, `promoted` once, promotions one at a time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { ReplicationState } from '../../../src/server/replication-state.js';
import { MemDisk } from '../../support/mem-disk.js';

async function openWal(): Promise<Wal> {
  const { wal } = await Wal.open({ dir: '/data', storage: new MemDisk().mount(), preallocate: false });
  await wal.append([{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
  return wal;
}

describe('ReplicationState', () => {
  test('a leader refuses nothing; a follower refuses with WAL_NOT_LEADER naming its leader', () => {
    new ReplicationState().assertLeader('Append');
    const follower = new ReplicationState({ leaderAddress: '192.0.2.1:7070', stop: async () => {} });
    assert.equal(follower.role, 'follower');
    assert.throws(
      () => follower.assertLeader('Compact'),
      (error: unknown) => isWalError(error, 'WAL_NOT_LEADER') && error.details['leader'] === '192.0.2.1:7070' && error.details['rpc'] === 'Compact',
    );
  });

  test('promotion stops following first, then begins the epoch above the greatest seen, then takes writes', async () => {
    const wal = await openWal();
    try {
      const steps: string[] = [];
      const state = new ReplicationState({
        leaderAddress: '192.0.2.1:7070',
        stop: async () => {
          steps.push(`stop at epoch ${wal.epoch}`);
        },
      });
      state.on('promoted', () => steps.push(`promoted at epoch ${wal.epoch}`));
      state.noteLeaderEpoch(4);
      const started = await state.promote(wal, undefined);
      assert.deepEqual(started, { epoch: 5, startOffset: 2 });
      assert.deepEqual(steps, ['stop at epoch 0', 'promoted at epoch 5']);
      assert.equal(state.role, 'leader');
      state.assertLeader('Append');
      assert.equal(wal.epoch, 5);
    } finally {
      await wal.close();
    }
  });

  test('a promoted follower takes writes only once its view has applied what the log holds', async () => {
    const wal = await openWal();
    try {
      const state = new ReplicationState({ leaderAddress: '192.0.2.1:7070', stop: async () => {} });
      let applied!: () => void;
      const viewCaughtUp = new Promise<void>((resolve) => (applied = resolve));
      let isAsked = false;
      const promoting = state.promote(wal, undefined, {
        check: () => undefined,
        caughtUp: () => {
          isAsked = true;
          return viewCaughtUp;
        },
      });
      // Bounded: the promotion reaches the wait within a few turns.
      for (let i = 0; i < 100 && !isAsked; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.ok(isAsked, 'the promotion waits for the view');
      assert.equal(wal.epoch, 1, 'the epoch is durable already');
      assert.equal(state.role, 'follower', 'but writes are still refused');
      assert.throws(() => state.assertLeader('Commit'), (error: unknown) => isWalError(error, 'WAL_NOT_LEADER'));
      applied();
      assert.deepEqual(await promoting, { epoch: 1, startOffset: 2 });
      assert.equal(state.role, 'leader');
    } finally {
      await wal.close();
    }
  });

  test('a follower whose view has failed refuses the promotion before anything changes, and keeps following', async () => {
    const wal = await openWal();
    try {
      let stops = 0;
      const state = new ReplicationState({ leaderAddress: '192.0.2.1:7070', stop: async () => void stops++ });
      const failed = new Error('the view failed (test)');
      await assert.rejects(state.promote(wal, undefined, { check: () => { throw failed; }, caughtUp: async () => undefined }), failed);
      assert.equal(stops, 0, 'the follow loop was not stopped');
      assert.equal(wal.epoch, 0, 'no epoch was begun');
      assert.equal(state.role, 'follower');
    } finally {
      await wal.close();
    }
  });

  test('an epoch not above the greatest seen is refused with WAL_EPOCH_MISMATCH, and the follower keeps following', async () => {
    const wal = await openWal();
    try {
      let stops = 0;
      const state = new ReplicationState({ leaderAddress: '192.0.2.1:7070', stop: async () => void stops++ });
      state.noteLeaderEpoch(7);
      await assert.rejects(state.promote(wal, 7), (error: unknown) => isWalError(error, 'WAL_EPOCH_MISMATCH') && error.details['currentEpoch'] === 7);
      assert.equal(stops, 0, 'the follow loop was not stopped');
      assert.equal(state.role, 'follower');
      assert.equal(wal.epoch, 0);
      assert.deepEqual(await state.promote(wal, 9), { epoch: 9, startOffset: 2 });
    } finally {
      await wal.close();
    }
  });

  test('a promotion whose epoch cannot be begun after following stopped emits promotionFailed', async () => {
    const disk = new MemDisk();
    const { wal } = await Wal.open({ dir: '/data', storage: disk.mount(), preallocate: false });
    try {
      await wal.append([{ value: Buffer.from('a') }]);
      let stops = 0;
      const state = new ReplicationState({ leaderAddress: '192.0.2.1:7070', stop: async () => void stops++ });
      const failures: unknown[] = [];
      state.on('promotionFailed', (error) => failures.push(error));
      // The epoch history cannot be written: beginEpoch fails with WAL_IO_ERROR.
      disk.inject({ op: 'rename', code: 'EIO', path: /EPOCHS/, times: 2 });
      await assert.rejects(state.promote(wal, undefined), (error: unknown) => isWalError(error, 'WAL_IO_ERROR'));
      assert.equal(stops, 1, 'following was stopped');
      assert.equal(failures.length, 1, 'the owner is told the server neither follows nor leads');
      assert.ok(isWalError(failures[0], 'WAL_IO_ERROR'));
    } finally {
      await wal.close().catch(() => undefined);
    }
  });

  test('concurrent promotions run one at a time: the second goes above the first', async () => {
    const wal = await openWal();
    try {
      const state = new ReplicationState();
      const [first, second] = await Promise.all([state.promote(wal, undefined), state.promote(wal, undefined)]);
      assert.equal(first.epoch, 1);
      assert.equal(second.epoch, 2);
    } finally {
      await wal.close();
    }
  });
  test('a follower\'s lag: the records it lacks by its leader\'s last message, and ms since it last held them all', () => {
    const state = new ReplicationState({ leaderAddress: '192.0.2.1:7070', stop: async () => {} });
    const made = Date.now();
    assert.ok(state.lagOf(-1, made + 1000).lagMs >= 1000 - (Date.now() - made), 'never heard: lag counts from when the state was made');
    state.noteLeaderHighWatermark(99, 99, 1000);
    assert.deepEqual(state.lagOf(99, 1500), { leaderHighWatermark: 99, lagRecords: 0, lagMs: 0 }, 'connected and caught up');
    // The leader reports 150 at 2000 while this log is at 99; its frames then arrive bit by bit.
    state.noteLeaderHighWatermark(150, 99, 2000);
    state.noteLeaderHighWatermark(150, 120, 2300);
    assert.deepEqual(state.lagOf(120, 2500), { leaderHighWatermark: 150, lagRecords: 30, lagMs: 1500 }, 'behind since it last held everything, at 1000');
    state.noteLeaderHighWatermark(150, 150, 2600);
    assert.deepEqual(state.lagOf(150, 2700), { leaderHighWatermark: 150, lagRecords: 0, lagMs: 0 }, 'caught up again');
    // The stream ends (the leader died): holding its last report proves nothing any more.
    state.noteLeaderLost();
    assert.deepEqual(state.lagOf(150, 5600), { leaderHighWatermark: 150, lagRecords: 0, lagMs: 3000 }, 'grows while disconnected');
    state.noteLeaderHighWatermark(150, 150, 6000);
    assert.deepEqual(state.lagOf(150, 6100), { leaderHighWatermark: 150, lagRecords: 0, lagMs: 0 }, 'reconnected, nothing new');
    assert.deepEqual(new ReplicationState().lagOf(5, 1), { leaderHighWatermark: undefined, lagRecords: 0, lagMs: 0 }, 'a leader lags by nothing');
  });
});
