/**
 * What a dying process, a failed unlink or a clock that steps back must not do to the log.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../src/engine/wal.js';
import type { WalOptions } from '../../src/engine/wal-options.js';
import { encodeEpochHistory } from '../../src/codec/epoch-history-file.js';
import { isWalError } from '../../src/errors.js';
import { MemDisk } from '../support/mem-disk.js';
import { FakeClock } from '../support/fake-clock.js';

const DIR = '/data';
const v = (s: string): { value: Buffer } => ({ value: Buffer.from(s.padEnd(100, '.')) });

async function open(disk: MemDisk, extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 4096, preallocate: false, ...extra });
  return wal;
}

describe('the directory entry of the active segment', () => {
  test('a segment a dead process renamed but never dir-synced is made durable before anything is acknowledged in it', async () => {
    const disk = new MemDisk();
    // The first process dies between the rename of its first segment and the directory fsync.
    disk.killWhen('syncDir', /^\/data$/);
    await assert.rejects(open(disk), (e) => e instanceof Error);
    // The next process finds the segment (the page cache kept the rename) and acknowledges into it.
    // It cannot create its recovery-point file, whose directory sync would hide a missing one.
    disk.inject({ op: 'create', path: /RECOVERY\.tmp$/, code: 'ENOSPC', times: 10 });
    const wal = await open(disk, { onWarning: () => {} });
    const acked = await wal.append([v('acknowledged')]);
    // A power cut: directory entries never synced are gone.
    disk.crash();
    const reopened = await open(disk);
    assert.deepEqual((await reopened.read(acked.firstOffset)).map((r) => r.value.toString().trimEnd().replace(/\.+$/, '')), ['acknowledged']);
    await reopened.close();
  });
});

describe('the data directory', () => {
  test('a new data directory is made durable in its parent before the log is used', async () => {
    const disk = new MemDisk();
    disk.inject({ op: 'syncDir', path: /^\/$/, code: 'EIO' });
    await assert.rejects(open(disk), (e) => isWalError(e, 'WAL_IO_ERROR'), 'the parent directory is synced');
    const wal = await open(disk);
    await wal.close();
  });
});

describe('compaction', () => {
  test('a failed unlink keeps the segment in the log, readable, and the next compaction deletes it', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    for (let i = 0; i < 120; i++) await wal.append([v(`r${i}`)]);
    const segments = wal.stats().segmentCount;
    assert.ok(segments >= 3);
    disk.inject({ op: 'unlink', path: /\.seg$/, code: 'EIO' });
    await assert.rejects(wal.deleteSegmentsBefore(wal.nextOffset), (e) => isWalError(e, 'WAL_IO_ERROR'));
    assert.equal(wal.firstOffset, 0, 'the segment whose unlink failed is still the first');
    assert.equal((await wal.read(0, { limit: 1 }))[0]?.value.toString().startsWith('r0'), true);
    assert.equal(await wal.deleteSegmentsBefore(wal.nextOffset), segments - 1);
    assert.equal(wal.stats().segmentCount, 1);
    await wal.close();
  });
});

describe('the recovery point', () => {
  test('is written at once after the clock steps back, not an interval of the new clock later', { timeout: 10_000 }, async () => {
    const disk = new MemDisk();
    const clock = new FakeClock(10_000_000);
    const wal = await open(disk, { clock: clock.now, recoveryPointIntervalMs: 1000 });
    const first = disk.whenSynced(/RECOVERY$/);
    await wal.append([v('a')]);
    await first;
    clock.nowMs -= 3_600_000;
    const second = disk.whenSynced(/RECOVERY$/);
    await wal.append([v('b')]);
    await second;
    await wal.close();
  });
});

describe('timestamps', () => {
  test('never go backwards across a restart when the clock steps back, with an empty active segment or none sealed', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock(1_000_000);
    const wal = await open(disk, { clock: clock.now, syncPolicy: 'none' });
    const stamps: number[] = [];
    while (wal.stats().segmentCount === 1) {
      clock.advance(1);
      stamps.push((await wal.append([v('x')])).timestamp);
    }
    // A power cut: the new segment's only frame was never synced, so the active segment is empty
    // at the restart, and the last timestamp given out lives in the sealed segment.
    disk.crash();
    await wal.close().catch(() => undefined);
    const last = stamps[stamps.length - 2]!;
    clock.nowMs = 5; // the clock stepped back
    const reopened = await open(disk, { clock: clock.now });
    const after = await reopened.append([v('after')]);
    assert.ok(after.timestamp >= last, `timestamp ${after.timestamp} after ${last}`);
    await reopened.close();
    const third = await open(disk, { clock: clock.now });
    await third.deleteSegmentsBefore(third.nextOffset);
    await third.close();
    const fourth = await open(disk, { clock: clock.now });
    assert.ok((await fourth.append([v('later')])).timestamp >= last, 'also once every sealed segment is compacted away');
    await fourth.close();
  });
});

describe('a failed open', () => {
  test('under interval leaves no timer behind: a process whose log cannot open exits', async () => {
    const disk = new MemDisk();
    const options: WalOptions = { dir: '/data', syncPolicy: 'interval', preallocate: false };
    const { wal } = await Wal.open({ ...options, storage: disk.mount() });
    await wal.append([{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
    await wal.close();
    // As a crash under `interval` leaves it: an epoch entry whose frames were lost (it starts past
    // the end), which the open rewrites EPOCHS to drop; that write fails.
    const storage = disk.mount();
    const file = storage.open('/data/EPOCHS', 'create-new');
    file.writev([encodeEpochHistory({ entries: [{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 10 }], isReplicated: true })], 0);
    file.datasync();
    file.close();
    storage.syncDir('/data');
    disk.kill();
    disk.inject({ op: 'create', path: /EPOCHS\.tmp$/, code: 'ENOSPC' });
    const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
    const before = timers();
    await assert.rejects(Wal.open({ ...options, storage: disk.mount() }), (error) => isWalError(error, 'WAL_NO_SPACE'));
    assert.equal(timers(), before, 'no interval sync timer is left running');
    assert.equal(disk.openFiles, 0, 'no file left open');
  });
});
