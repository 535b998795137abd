/**
 * Disk failures under appendFrames behave as under append: a failed write is rolled back and the
 * run rejected (the log stays writable and takes the same run again), ENOSPC enters disk-full mode
 * until space returns, a failed fdatasync rejects the run and makes the log read-only, keeping
 * what was acknowledged; and a failed epoch-history write refuses the run before any frame is
 * written.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeSegmentHeader } from '../../src/codec/segment-header.js';
import { Wal } from '../../src/engine/wal.js';
import type { WalOptions } from '../../src/engine/wal-options.js';
import { isWalError } from '../../src/errors.js';
import { FakeClock } from '../support/fake-clock.js';
import { handFrame } from '../support/frame-copy.js';
import { MemDisk } from '../support/mem-disk.js';

const DIR = '/follower';

async function open(disk: MemDisk, extra: Partial<WalOptions> = {}): Promise<Wal> {
  return (await Wal.open({ dir: DIR, storage: disk.mount(), preallocate: false, ...extra })).wal;
}

async function values(wal: Wal): Promise<string[]> {
  const out: string[] = [];
  for await (const r of wal.range(wal.firstOffset)) out.push(r.value.toString());
  return out;
}

describe('appendFrames under disk failures', () => {
  test('an EIO on write rejects the run, rolls it back, and the same run goes in afterwards', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    const seed = wal.frameSeed;
    await wal.appendFrames([handFrame(0, 2, 1, seed)]);
    disk.inject({ op: 'writev', code: 'EIO', path: /\.seg$/ });
    const run = [handFrame(2, 1, 1, seed), handFrame(3, 2, 1, seed)];
    await assert.rejects(wal.appendFrames(run), (e) => isWalError(e, 'WAL_IO_ERROR'));
    assert.equal(wal.stats().writeState, 'writable');
    assert.equal(wal.nextOffset, 2, 'nothing of the run is in the log');
    assert.deepEqual(await wal.appendFrames(run), { firstOffset: 2, lastOffset: 4, nextOffset: 5 });
    await wal.close();
    disk.crash();
    const reopened = await open(disk);
    assert.deepEqual(await values(reopened), ['hand 0', 'hand 1', 'hand 2', 'hand 3', 'hand 4']);
    await reopened.close();
  });

  test('ENOSPC enters disk-full mode: runs are refused until space returns, reads go on', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await open(disk, { clock: clock.now, diskFullProbeIntervalMs: 1000 });
    const seed = wal.frameSeed;
    await wal.appendFrames([handFrame(0, 1, 0, seed)]);
    disk.capacityBytes = disk.usedBytes() + 10;
    await assert.rejects(wal.appendFrames([handFrame(1, 5, 0, seed)]), (e) => isWalError(e, 'WAL_NO_SPACE'));
    assert.equal(wal.stats().writeState, 'disk-full');
    const opsBefore = disk.ops;
    await assert.rejects(wal.appendFrames([handFrame(1, 5, 0, seed)]), (e) => isWalError(e, 'WAL_NO_SPACE'));
    assert.equal(disk.ops, opsBefore, 'refused without touching the disk');
    assert.deepEqual(await values(wal), ['hand 0']);
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    clock.advance(1000);
    assert.equal((await wal.appendFrames([handFrame(1, 5, 0, seed)])).nextOffset, 6);
    assert.equal(wal.stats().writeState, 'writable');
    await wal.close();
  });

  for (const syncPolicy of ['always', 'none'] as const) {
    test(`${syncPolicy}: a failed fdatasync rejects the run waiting on it (or the sync asked for), keeps what was acknowledged, and makes the log read-only`, async () => {
      const disk = new MemDisk();
      const wal = await open(disk, { syncPolicy });
      const seed = wal.frameSeed;
      await wal.appendFrames([handFrame(0, 1, 2, seed)]);
      await wal.sync();
      disk.inject({ op: 'datasync', code: 'EIO', path: /\.seg$/ });
      if (syncPolicy === 'always') {
        await assert.rejects(wal.appendFrames([handFrame(1, 1, 2, seed)]), (e) => isWalError(e, 'WAL_IO_ERROR'));
      } else {
        // Acknowledged once written: the failed sync must not take it back.
        await wal.appendFrames([handFrame(1, 1, 2, seed)]);
        await assert.rejects(wal.sync(), (e) => isWalError(e, 'WAL_IO_ERROR'));
      }
      assert.equal(wal.stats().writeState, 'read-only');
      await assert.rejects(wal.appendFrames([handFrame(2, 1, 2, seed)]), (e) => isWalError(e, 'WAL_READ_ONLY'));
      const expected = syncPolicy === 'always' ? ['hand 0'] : ['hand 0', 'hand 1'];
      assert.deepEqual(await values(wal), expected);
      await wal.close();
      const reopened = await open(disk, { syncPolicy });
      assert.equal(reopened.stats().writeState, 'writable');
      assert.deepEqual(await values(reopened), expected);
      await reopened.close();
    });
  }

  test('a failed directory fsync when the leader\'s segment replaces the empty one makes the log read-only; it reopens and takes the run', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    const seed = 0x5eed;
    const header = encodeSegmentHeader({ formatVersion: 2, baseOffset: 0, segmentId: 'ef'.repeat(16), createdAtMs: 5, frameSeed: seed });
    const run = [handFrame(0, 2, 1, seed)];
    // The first directory fsync is the epoch history's (the run starts epoch 1 and marks the log a
    // copy); the second, the one after the leader's segment is renamed over the empty one.
    disk.inject({ op: 'syncDir', code: 'EIO', path: /^\/follower$/, after: 1 });
    await assert.rejects(wal.appendFrames(run, { segmentHeader: header }), (e) => isWalError(e, 'WAL_IO_ERROR'));
    assert.equal(wal.stats().writeState, 'read-only', 'the leader\'s segment is in the directory: nothing more goes into the file it replaced');
    await assert.rejects(async () => wal.append([{ value: Buffer.from('own') }]), (e) => isWalError(e, 'WAL_READ_ONLY'));
    await wal.close();
    disk.crash();
    const reopened = await open(disk);
    assert.equal(reopened.nextOffset, 0);
    assert.deepEqual(await reopened.appendFrames(run, { segmentHeader: header }), { firstOffset: 0, lastOffset: 1, nextOffset: 2 });
    assert.deepEqual(await values(reopened), ['hand 0', 'hand 1']);
    await reopened.close();
    const again = await open(disk);
    assert.deepEqual(await values(again), ['hand 0', 'hand 1']);
    await again.close();
  });

  test('a failed write of the epoch history refuses a run that starts an epoch, before any frame is written', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    const seed = wal.frameSeed;
    await wal.appendFrames([handFrame(0, 1, 1, seed)]);
    disk.inject({ op: 'create', code: 'ENOSPC', path: /EPOCHS\.tmp$/ });
    await assert.rejects(wal.appendFrames([handFrame(1, 1, 1, seed), handFrame(2, 1, 4, seed)]), (e) => isWalError(e, 'WAL_NO_SPACE'));
    assert.equal(wal.nextOffset, 1);
    assert.equal(wal.epoch, 1);
    await wal.appendFrames([handFrame(1, 1, 1, seed), handFrame(2, 1, 4, seed)]);
    assert.deepEqual(wal.epochHistory(), [
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 2 },
    ]);
    await wal.close();
  });
});
