import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../src/engine/wal.js';
import type { WalOptions } from '../../src/engine/wal-options.js';
import { isWalError } from '../../src/errors.js';
import { MemDisk } from '../support/mem-disk.js';
import { FakeClock } from '../support/fake-clock.js';

const DIR = '/data';
const v = (s: string): { value: Buffer } => ({ value: Buffer.from(s) });

async function open(disk: MemDisk, extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 64 * 1024, preallocate: false, ...extra });
  return wal;
}

async function values(wal: Wal): Promise<string[]> {
  const out: string[] = [];
  for await (const r of wal.range(wal.firstOffset)) out.push(r.value.toString());
  return out;
}

describe('write failures', () => {
  test('an EIO on write rejects the batch, rolls it back, and the log goes on', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([v('a'), v('b')]);
    disk.inject({ op: 'writev', code: 'EIO' });
    await assert.rejects(wal.append([v('lost-1'), v('lost-2')]), (e) => isWalError(e, 'WAL_IO_ERROR'));
    assert.equal(wal.stats().writeState, 'writable');
    const next = await wal.append([v('c')]);
    assert.equal(next.firstOffset, 2, 'the failed batch did not consume offsets');
    assert.deepEqual(await values(wal), ['a', 'b', 'c']);
    await wal.close();
    const reopened = await open(disk);
    assert.deepEqual(await values(reopened), ['a', 'b', 'c']);
    await reopened.close();
  });

  test('a short write that hits ENOSPC leaves no partial frame behind', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await open(disk, { clock: clock.now, diskFullProbeIntervalMs: 1000 });
    await wal.append([v('a')]);
    disk.capacityBytes = disk.usedBytes() + 100; // room for part of the next frame only
    await assert.rejects(wal.append([v('x'.repeat(500))]), (e) => isWalError(e, 'WAL_NO_SPACE'));
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    await wal.close();
    disk.crash();
    const reopened = await open(disk);
    assert.deepEqual(await values(reopened), ['a']);
    assert.deepEqual((await reopened.append([v('b')])).firstOffset, 1);
    await reopened.close();
  });
});

describe('disk-full mode', () => {
  test('ENOSPC rejects appends until space returns; reads and tails keep working', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await open(disk, { clock: clock.now, diskFullProbeIntervalMs: 1000, maxBatchBytes: 64 * 1024 });
    await wal.append([v('before')]);
    const controller = new AbortController();
    const tailed: string[] = [];
    const tail = (async () => {
      for await (const r of wal.tail(0, { signal: controller.signal })) {
        tailed.push(r.value.toString());
        if (tailed.length === 2) controller.abort();
      }
    })();

    disk.capacityBytes = disk.usedBytes() + 10;
    await assert.rejects(wal.append([v('x'.repeat(200))]), (e) => isWalError(e, 'WAL_NO_SPACE'));
    assert.equal(wal.stats().writeState, 'disk-full');
    // While full, appends are refused at once, without touching the disk.
    const opsBefore = disk.ops;
    await assert.rejects(async () => wal.append([v('refused')]), (e) => isWalError(e, 'WAL_NO_SPACE'));
    assert.equal(disk.ops, opsBefore);
    assert.deepEqual(await values(wal), ['before'], 'reads work while the disk is full');

    // Space returns; the next append after the probe interval probes, finds it, and goes through.
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    clock.advance(1000);
    const after = await wal.append([v('after')]);
    assert.equal(after.firstOffset, 1);
    assert.equal(wal.stats().writeState, 'writable');
    await tail;
    assert.deepEqual(tailed, ['before', 'after'], 'the tail saw records from before and after the full disk');
    await wal.close();
  });

  test('ENOSPC while creating the next segment acknowledges what fit and refuses the rest', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await open(disk, { segmentSizeBytes: 4096, clock: clock.now });
    disk.inject({ op: 'create', path: /\.seg\.tmp$/, code: 'ENOSPC' });
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => wal.append([v(`r${i}`.padEnd(100, '.'))])));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    assert.ok(ok > 0 && ok < 60, `some appends fit the first segment (${ok})`);
    for (const r of results.slice(ok)) assert.ok(r.status === 'rejected' && isWalError(r.reason, 'WAL_NO_SPACE'));
    assert.equal(wal.stats().writeState, 'disk-full');
    clock.advance(60_000);
    const next = await wal.append([v('resumed'.padEnd(3000, '.'))]);
    assert.equal(next.firstOffset, ok, 'offsets stay dense across the full disk');
    assert.equal(wal.stats().segmentCount, 2, 'the next segment was created once space returned');
    await wal.close();
    const reopened = await open(disk, { segmentSizeBytes: 4096 });
    const all = await values(reopened);
    assert.equal(all.length, ok + 1);
    assert.ok(all[ok]!.startsWith('resumed'));
    await reopened.close();
  });
});

describe('fsync failures', () => {
  for (const code of ['EIO', 'ENOSPC']) {
    test(`always: a failed fdatasync (${code}) rejects the batch waiting on it, keeps every acknowledged one, and makes the log read-only`, async () => {
      const disk = new MemDisk();
      const wal = await open(disk);
      await wal.append([v('durable-1')]);
      await wal.append([v('durable-2'), v('durable-3')]);
      disk.inject({ op: 'datasync', code, path: /\.seg$/ });
      await assert.rejects(wal.append([v('not acknowledged')]), (e) => isWalError(e, 'WAL_IO_ERROR'));
      assert.equal(wal.stats().writeState, 'read-only');
      await assert.rejects(async () => wal.append([v('refused')]), (e) => isWalError(e, 'WAL_READ_ONLY'));
      assert.deepEqual(await values(wal), ['durable-1', 'durable-2', 'durable-3'], 'reads up to the high watermark keep working');
      await wal.close();
      disk.crash();
      const reopened = await open(disk);
      assert.equal(reopened.stats().writeState, 'writable');
      assert.deepEqual(await values(reopened), ['durable-1', 'durable-2', 'durable-3'], 'after a power cut: every acknowledged record, and not the rejected one');
      assert.equal((await reopened.append([v('again')])).firstOffset, 3);
      await reopened.close();
    });
  }

  /**
   * Under `interval` and `none` a batch is acknowledged once written, before any sync: a sync that
   * fails later must not take it back. Each way a sync can be asked for, and each policy.
   */
  const triggers = {
    'an append with sync: true': async (wal: Wal) => {
      await assert.rejects(wal.append([v('z')], { sync: true }), (e) => isWalError(e, 'WAL_IO_ERROR'));
    },
    'wal.sync()': async (wal: Wal) => {
      await assert.rejects(wal.sync(), (e) => isWalError(e, 'WAL_IO_ERROR'));
    },
    'the final sync of close()': async (wal: Wal) => {
      await wal.close();
    },
  } as const;
  for (const syncPolicy of ['none', 'interval'] as const) {
    for (const [trigger, failSync] of Object.entries(triggers)) {
      test(`${syncPolicy}: a failed fdatasync in ${trigger} keeps the acknowledged records and never hands their offsets out again`, async () => {
        const disk = new MemDisk();
        const warnings: string[] = [];
        const wal = await open(disk, { syncPolicy, syncIntervalMs: 3_600_000, onWarning: (message) => warnings.push(message) });
        await wal.append([v('a')]);
        await wal.append([v('b'), v('c')]);
        disk.inject({ op: 'datasync', code: 'EIO', path: /\.seg$/ });
        await failSync(wal);
        if (wal.status === 'open') {
          assert.equal(wal.stats().writeState, 'read-only');
          await assert.rejects(async () => wal.append([v('refused')]), (e) => isWalError(e, 'WAL_READ_ONLY'));
          // Under `none` readers saw the acknowledged records already; they keep seeing them. Under
          // `interval` readers only ever see what is durable, and none of this is.
          assert.deepEqual(await values(wal), syncPolicy === 'none' ? ['a', 'b', 'c'] : []);
          await wal.close();
        } else {
          assert.match(warnings.join('\n'), /clean-shutdown state failed/);
        }
        // The process ends without a power cut: the page cache keeps what was written.
        disk.kill();
        const reopened = await open(disk, { syncPolicy });
        assert.deepEqual(await values(reopened), ['a', 'b', 'c'], 'every acknowledged record is still in the log');
        assert.equal((await reopened.append([v('next')])).firstOffset, 3, 'acknowledged offsets are not handed out again');
        await reopened.close();
      });
    }
  }

  test('interval: a failed fdatasync of the timer makes the log read-only and is reported, keeping the acknowledged records', async () => {
    const disk = new MemDisk();
    let warned: (message: string) => void = () => {};
    const warning = new Promise<string>((resolve) => (warned = resolve));
    const wal = await open(disk, { syncPolicy: 'interval', syncIntervalMs: 1, onWarning: (message) => warned(message) });
    disk.inject({ op: 'datasync', code: 'EIO', path: /\.seg$/ });
    await wal.append([v('written, never synced')]);
    // Nothing else syncs: only the timer can have failed.
    assert.match(await warning, /interval fdatasync failed/);
    assert.equal(wal.stats().writeState, 'read-only');
    await wal.close();
    disk.kill();
    const reopened = await open(disk);
    assert.deepEqual(await values(reopened), ['written, never synced']);
    await reopened.close();
  });
});

describe('a failed directory fsync at rotation', () => {
  for (const preallocate of [false, true]) {
    test(`preallocate ${preallocate}: the new segment is in place, so the log goes read-only and reopens with every acknowledged record`, async () => {
      const disk = new MemDisk();
      const wal = await open(disk, { preallocate, segmentSizeBytes: 4096 });
      const acknowledged: string[] = [];
      for (let i = 0; i < 20; i++) {
        await wal.append([v(`r${i}`.padEnd(100, '.'))]);
        acknowledged.push(`r${i}`.padEnd(100, '.'));
      }
      const segments = wal.stats().segmentCount;
      // The next batch does not fit: the rotation syncs the directory after renaming the new segment in.
      disk.inject({ op: 'syncDir', code: 'EIO', path: /^\/data$/ });
      const big = Array.from({ length: 20 }, (_, i) => v(`big${i}`.padEnd(100, '.')));
      await assert.rejects(wal.append(big), (e) => isWalError(e, 'WAL_IO_ERROR'));
      assert.equal(wal.stats().writeState, 'read-only');
      // Written into the old segment after the new one, it would leave a log that does not reopen.
      await assert.rejects(async () => wal.append([v('after')]), (e) => isWalError(e, 'WAL_READ_ONLY'));
      await wal.close();
      for (const crashed of [false, true]) {
        if (crashed) disk.crash();
        const reopened = await open(disk, { preallocate, segmentSizeBytes: 4096 });
        assert.deepEqual(await values(reopened), acknowledged, crashed ? 'after a power cut' : 'after a close');
        assert.ok(reopened.stats().segmentCount >= segments);
        await reopened.append([v('next')]);
        acknowledged.push('next');
        assert.deepEqual(await values(reopened), acknowledged);
        await reopened.close();
      }
    });
  }
});

describe('a queue facing a failed sync', () => {
  test("interval: a batch queued when the timer's sync fails is rejected with WAL_READ_ONLY and never written", async () => {
    // The timer's sync has to fail while a batch waits in the queue: the batch is appended in a
    // setImmediate callback that then blocks past the sync interval, so that the next loop turn
    // runs the writer's timer (timers phase) before the flush (check phase).
    const syncIntervalMs = 50;
    let exercised = false;
    for (let attempt = 0; attempt < 5 && !exercised; attempt++) {
      const disk = new MemDisk();
      const warnings: string[] = [];
      const wal = await open(disk, { syncPolicy: 'interval', syncIntervalMs, onWarning: (message) => warnings.push(message) });
      await wal.append([v('a')]);
      disk.inject({ op: 'datasync', code: 'EIO', path: /\.seg$/ });
      const queued = await new Promise<{ readonly b: Promise<unknown> } | 'timer first'>((resolve) => {
        setImmediate(() => {
          if (wal.stats().writeState !== 'writable') return resolve('timer first');
          const b = wal.append([v('b')]);
          const until = Date.now() + 2 * syncIntervalMs;
          while (Date.now() < until); // blocks the loop past the next interval sync
          resolve({ b });
        });
      });
      if (queued !== 'timer first') {
        exercised = true;
        await assert.rejects(queued.b, (e) => isWalError(e, 'WAL_READ_ONLY'));
        assert.match(warnings.join('\n'), /interval fdatasync failed/);
      }
      await wal.close();
      disk.kill();
      const reopened = await open(disk);
      assert.deepEqual(await values(reopened), ['a'], 'the rejected batch never reached the file');
      await reopened.close();
    }
    assert.ok(exercised, 'in one of five attempts a batch was queued when the timer synced');
  });
});

describe('read failures', () => {
  test('an EIO on read fails that read with WAL_IO_ERROR; the log and later reads are unharmed', async () => {
    const disk = new MemDisk();
    // Without the recent frames, so that the read of what was just written goes to the file.
    const wal = await open(disk, { tailCacheBytes: 0 });
    await wal.append([v('a'), v('b')]);
    disk.inject({ op: 'read', code: 'EIO', path: /\.seg$/ });
    await assert.rejects(wal.read(0), (e) => isWalError(e, 'WAL_IO_ERROR') && e.details['errno'] === 'EIO');
    assert.deepEqual(await values(wal), ['a', 'b']);
    assert.equal((await wal.append([v('c')])).firstOffset, 2);
    await wal.close();
  });

  test('a read in flight when close() starts finishes with its records; reads after it get WAL_CLOSED', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([v('a'), v('b')]);
    const reading = wal.read(0);
    const closing = wal.close();
    // The segment's file stays open until the read is done (a closed MemFile fails with EBADF).
    assert.deepEqual((await reading).map((r) => r.value.toString()), ['a', 'b']);
    await closing;
    await assert.rejects(wal.read(0), (e) => isWalError(e, 'WAL_CLOSED'));
    assert.equal(disk.openFiles, 0, 'every file is closed once the read finished');
  });
});

describe('background failures', () => {
  test('a failed background preallocation is reported as a warning and the log goes on without it', async () => {
    const disk = new MemDisk();
    disk.inject({ op: 'fillZeros', code: 'ENOSPC', times: 100 });
    let warned: (message: string) => void = () => {};
    const warning = new Promise<string>((resolve) => (warned = resolve));
    const wal = await open(disk, { preallocate: true, segmentSizeBytes: 4096, onWarning: (message) => warned(message) });
    assert.match(await warning, /preallocating the next segment failed/);
    for (let i = 0; i < 100; i++) await wal.append([v(`r${i}`.padEnd(100, '.'))]);
    assert.ok(wal.stats().segmentCount > 1, 'segments rotate without preallocation');
    assert.equal((await values(wal)).length, 100);
    await wal.close();
  });
});
