/**
 * CompactionScheduler over a real log on a MemDisk, checks run by hand with an injected clock: a
 * failed automatic compaction is reported as `failed` (never thrown), counts for the minimum
 * interval, and the next due check compacts; a stopped scheduler checks nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { CompactionScheduler } from '../../../src/state/compaction-scheduler.js';
import { Compactor } from '../../../src/state/compactor.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';

describe('CompactionScheduler', () => {
  test('a failed run is emitted as failed, waits out the minimum interval, and the next due check compacts', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const clock = new FakeClock();
    const { wal } = await Wal.open({ dir: '/data', storage, preallocate: false, segmentSizeBytes: 4096, clock: clock.now });
    const { keeper } = await StateKeeper.open({ wal, storage });
    const options = { ...STATE_OPTIONS.defaults.compaction, enabled: true, eventsThreshold: 50, minIntervalMs: 1000, retentionMs: 0 };
    const compactor = new Compactor({ wal, state: keeper, storage, options, clock: clock.now });
    const scheduler = new CompactionScheduler({ wal, state: keeper, compactor, options, clock: clock.now });
    const failures: unknown[] = [];
    scheduler.on('failed', (error) => failures.push(error));
    try {
      for (let i = 0; i < 60; i++) await wal.append([{ key: Buffer.from(`k${i % 5}`), value: Buffer.alloc(100, 'v') }]);
      disk.inject({ op: 'create', code: 'ENOSPC', path: /\.snap\.tmp$/ });
      assert.equal(await scheduler.check(), undefined);
      assert.equal(failures.length, 1);
      assert.ok(isWalError(failures[0], 'WAL_NO_SPACE'), String(failures[0]));
      assert.equal(wal.firstOffset, 0, 'nothing deleted');
      assert.equal(scheduler.dueTrigger(), undefined, 'the failed run counts for the minimum interval');
      clock.advance(1000);
      const run = await scheduler.check();
      assert.equal(run?.trigger, 'events');
      assert.ok(run.result.segmentsDeleted > 0);
      await scheduler.stop();
      clock.advance(1000);
      for (let i = 0; i < 60; i++) await wal.append([{ key: Buffer.from(`k${i % 5}`), value: Buffer.alloc(100, 'v') }]);
      assert.equal(scheduler.dueTrigger(), 'events');
      assert.equal(await scheduler.check(), undefined, 'a stopped scheduler runs nothing');
    } finally {
      await scheduler.stop();
      await keeper.close();
      await wal.close();
    }
  });
});
