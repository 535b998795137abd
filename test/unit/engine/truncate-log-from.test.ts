/**
 * truncateLogFrom: cuts a closed log at a frame boundary, keeps the removed frames in a side file,
 * cuts the epoch history, lowers the recovery point and the producer table, refuses what is not a
 * boundary, and after a power cut at any of its disk operations leaves a log that opens as a
 * prefix (at least the asked length) whose run again finishes the cut. An old leader that comes
 * back as a follower converges this way.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { truncateLogFrom } from '../../../src/engine/truncate-log-from.js';
import { verifyLog } from '../../../src/offline/log-verifier.js';
import { compactKeys } from '../../../src/state/key-compaction.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { Wal } from '../../../src/engine/wal.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import { isWalError } from '../../../src/errors.js';
import { copyFrames } from '../../support/frame-copy.js';
import { MemDisk } from '../../support/mem-disk.js';

const DIR = '/data';
const v = (s: string): { value: Buffer } => ({ value: Buffer.from(s) });
const CLOCK = (): number => Date.UTC(2026, 11, 1, 18, 0, 0, 123);

async function open(disk: MemDisk, dir = DIR, extra: Partial<WalOptions> = {}): Promise<Wal> {
  return (await Wal.open({ dir, storage: disk.mount(), preallocate: false, segmentSizeBytes: 4096, ...extra })).wal;
}

/** 90 records in frames of 1..3, epochs 0 / 2 (from 30) / 5 (from 60), producer p on every tenth batch; several segments. */
async function buildLog(disk: MemDisk): Promise<void> {
  const wal = await open(disk);
  let batch = 0;
  const fill = async (to: number): Promise<void> => {
    while (wal.nextOffset < to) {
      const count = Math.min(1 + (batch % 3), to - wal.nextOffset);
      const options = batch % 10 === 0 ? { producerId: 'p', sequence: batch } : {};
      await wal.append(Array.from({ length: count }, (_, r) => v(`b${batch}.${r}`.padEnd(120, '.'))), options);
      batch++;
    }
  };
  await fill(30);
  await wal.beginEpoch(2);
  await fill(60);
  await wal.beginEpoch(5);
  await fill(90);
  await wal.close();
}

/** The stored frames from `from` to the end, concatenated. */
async function framesFrom(wal: Wal, from: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let next = from, n = 0; next <= wal.highWatermark && n < 1000; n++) {
    const run = await wal.readFrames(next, 1 << 20);
    parts.push(...run.frames.map((f) => f.bytes));
    next = run.nextOffset;
  }
  return Buffer.concat(parts);
}

/** Frame base offsets of the log (a boundary list). */
async function boundaries(wal: Wal): Promise<number[]> {
  const out: number[] = [];
  for (let next = wal.firstOffset, n = 0; next <= wal.highWatermark && n < 1000; n++) {
    const run = await wal.readFrames(next, 1 << 20);
    out.push(...run.frames.map((f) => f.baseOffset));
    next = run.nextOffset;
  }
  return out;
}

/** Every frame's epoch is the history's epoch at its base offset. */
async function checkEpochsAgree(wal: Wal, label: string): Promise<void> {
  const history = wal.epochHistory();
  for (let next = wal.firstOffset, n = 0; next <= wal.highWatermark && n < 1000; n++) {
    const run = await wal.readFrames(next, 1 << 20);
    for (const frame of run.frames) {
      const epoch = history.findLast((entry) => entry.startOffset <= frame.baseOffset)?.epoch ?? 0;
      assert.equal(frame.epoch, epoch, `${label}: frame ${frame.baseOffset} carries the history's epoch`);
    }
    next = run.nextOffset;
  }
}

describe('truncateLogFrom', () => {
  test('cuts at a frame boundary, keeps the frames in a side file, cuts the history, and the log goes on from there', async () => {
    const disk = new MemDisk();
    await buildLog(disk);
    const before = await open(disk);
    const bounds = await boundaries(before);
    const cut = bounds.find((b) => b >= 45)!;
    const removedBytes = await framesFrom(before, cut);
    const sequences = (await before.read(0, { limit: 1000 })).length;
    await before.close();
    assert.equal(sequences, 90);

    const result = truncateLogFrom(disk.mount(), DIR, cut, { clock: CLOCK });
    assert.equal(result.removedRecords, 90 - cut);
    assert.equal(result.sideFile, `truncated/${String(cut).padStart(20, '0')}.20261201T180000123Z.frames`);
    assert.ok(disk.mount().readFile(join(DIR, result.sideFile)).equals(removedBytes), 'the side file holds the removed frames as stored');

    const after = await open(disk);
    try {
      assert.equal(after.nextOffset, cut);
      assert.deepEqual(after.epochHistory(), [{ epoch: 2, startOffset: 30 }], 'the entry of epoch 5 (from 60) is cut');
      assert.equal(after.epoch, 2);
      await checkEpochsAgree(after, 'after the cut');
      const records = await after.read(0, { limit: 1000 });
      assert.equal(records.length, cut);
      // A producer whose last append was cut is not answered from the table.
      const retry = await after.append([v('retry')], { producerId: 'p', sequence: 60 });
      assert.equal(retry.duplicate, false);
      assert.equal(retry.firstOffset, cut);
    } finally {
      await after.close();
    }
  });

  test('at the end it only cuts the history; inside a frame, beyond the end, below the start and on an open log it refuses', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([v('a'), v('b')]);
    await wal.beginEpoch(4);
    await wal.close();
    assert.deepEqual(truncateLogFrom(disk.mount(), DIR, 2), { removedRecords: 0, sideFile: undefined });
    const reopened = await open(disk);
    assert.deepEqual(reopened.epochHistory(), [], 'the entry at 2 had no frames: gone, so frames of any epoch can follow');
    assert.throws(() => truncateLogFrom(disk.mount(), DIR, 1), (e) => isWalError(e, 'WAL_LOCKED'));
    await reopened.close();
    assert.throws(() => truncateLogFrom(disk.mount(), DIR, 1), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'offset');
    assert.throws(() => truncateLogFrom(disk.mount(), DIR, 3), (e) => isWalError(e, 'WAL_OFFSET_OUT_OF_RANGE'));
    assert.throws(() => truncateLogFrom(disk.mount(), DIR, -1), RangeError);
    const compacted = await open(disk, '/compacted');
    for (let i = 0; i < 60; i++) await compacted.append([v(`x${i}`.padEnd(200, '.'))]);
    const second = compacted.listSegments()[1]!.baseOffset;
    await compacted.deleteSegmentsBefore(second);
    await compacted.close();
    assert.throws(() => truncateLogFrom(disk.mount(), '/compacted', 0), (e) => isWalError(e, 'WAL_OFFSET_COMPACTED'));
  });

  test('an old leader with unreplicated records converges with the new leader after the cut at its epoch end there', async () => {
    const disk = new MemDisk();
    const oldLeader = await open(disk, '/a');
    const follower = await open(disk, '/b');
    await oldLeader.beginEpoch(1);
    for (let i = 0; i < 20; i++) await oldLeader.append([v(`a${i}`.padEnd(150, '.'))]);
    await copyFrames(oldLeader, follower, 1000);
    // Cut off: the old leader goes on alone, the follower is promoted and writes its own.
    for (let i = 20; i < 30; i++) await oldLeader.append([v(`lost${i}`)]);
    await follower.beginEpoch(2);
    for (let i = 20; i < 25; i++) await follower.append([v(`new${i}`)]);
    // The old leader comes back as a follower: where does its own last epoch end on the new leader?
    const end = follower.epochEnd(oldLeader.epoch);
    assert.deepEqual(end, { epoch: 1, endOffset: 20 });
    await oldLeader.close();
    const cut = truncateLogFrom(disk.mount(), '/a', end.endOffset);
    assert.equal(cut.removedRecords, 10);
    const rejoined = await open(disk, '/a');
    try {
      await copyFrames(follower, rejoined, 1000);
      assert.deepEqual(rejoined.epochHistory(), follower.epochHistory());
      assert.deepEqual(await rejoined.hashRange(0), await follower.hashRange(0));
    } finally {
      await rejoined.close();
      await follower.close();
    }
  });

  test('a power cut at any disk operation of the cut leaves a log that opens as a prefix; running it again finishes', async () => {
    const reference = new MemDisk();
    await buildLog(reference);
    const cutAt = (await (async () => {
      const wal = await open(reference);
      try {
        return (await boundaries(wal)).find((b) => b >= 45)!;
      } finally {
        await wal.close();
      }
    })());
    const opsBefore = reference.ops;
    truncateLogFrom(reference.mount(), DIR, cutAt, { clock: CLOCK });
    const totalOps = reference.ops - opsBefore;
    assert.ok(totalOps > 5, `the cut takes several disk operations (${totalOps})`);
    for (let op = 1; op <= totalOps; op++) {
      const disk = new MemDisk();
      await buildLog(disk);
      disk.crashAt(op);
      try {
        truncateLogFrom(disk.mount(), DIR, cutAt, { clock: CLOCK });
      } catch {
        // The power cut.
      }
      disk.crash();
      const label = `crash at operation ${op}/${totalOps}`;
      const wal = await open(disk);
      try {
        assert.ok(wal.nextOffset >= cutAt && wal.nextOffset <= 90, `${label}: a prefix at least ${cutAt} long (${wal.nextOffset})`);
        const records = await wal.read(0, { limit: 1000 });
        assert.equal(records.length, wal.nextOffset, `${label}: dense`);
        await checkEpochsAgree(wal, label);
      } finally {
        await wal.close();
      }
      truncateLogFrom(disk.mount(), DIR, cutAt, { clock: CLOCK });
      const finished = await open(disk);
      try {
        assert.equal(finished.nextOffset, cutAt, `${label}: the second run finishes the cut`);
        assert.deepEqual(finished.epochHistory(), [{ epoch: 2, startOffset: 30 }], `${label}: history cut`);
      } finally {
        await finished.close();
      }
    }
  });

  test('cut back to a key-compacted segment\'s end, the log takes appends there, rotates, and reopens; verify agrees', async () => {
    const disk = new MemDisk();
    const open = async (): Promise<{ wal: Wal; keeper: StateKeeper }> => {
      const storage = disk.mount();
      const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096 });
      const { keeper } = await StateKeeper.open({ wal, storage, options: { tombstoneRetentionMs: 0 } });
      return { wal, keeper };
    };
    let { wal, keeper } = await open();
    for (let i = 0; i < 60; i++) await keeper.append([{ key: Buffer.from(`k${i % 3}`), value: Buffer.alloc(100, i) }]);
    await keeper.caughtUp();
    assert.ok((await compactKeys(keeper, wal, { thresholdPercent: 0 })).segmentsRewritten > 0);
    const bases = disk.mount().list(DIR).filter((name) => name.endsWith('.seg')).sort().map((name) => Number(name.slice(0, 20)));
    await keeper.close();
    await wal.close();
    // Cut at the second segment's start: the first, key-compacted, is the last segment now.
    truncateLogFrom(disk.mount(), DIR, bases[1]!);
    ({ wal, keeper } = await open());
    assert.equal(wal.nextOffset, bases[1]);
    for (let i = 0; i < 80; i++) await keeper.append([{ key: Buffer.from(`n${i}`), value: Buffer.alloc(100, 1) }]);
    assert.ok(wal.stats().segmentCount > 1, 'the compacted segment was sealed with appends past its compacted end');
    const end = wal.nextOffset;
    await keeper.close();
    await wal.close();
    ({ wal, keeper } = await open());
    try {
      assert.equal(wal.nextOffset, end, 'the log reopens whole');
      assert.equal((await keeper.get(Buffer.from('n0')))?.value.length, 100);
    } finally {
      await keeper.close();
      await wal.close();
    }
    const verified = await verifyLog(disk.mount(), DIR);
    assert.deepEqual(verified.faults, [], 'the offline verifier reads it as the engine does');
  });

  test('cut at the start of a key-compacted first segment, the log goes on at that offset, not at the compacted end', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096 });
    const { keeper } = await StateKeeper.open({ wal, storage, options: { tombstoneRetentionMs: 0 } });
    for (let i = 0; i < 60; i++) await keeper.append([{ key: Buffer.from(`k${i % 3}`), value: Buffer.alloc(100, i) }]);
    await keeper.caughtUp();
    assert.ok((await compactKeys(keeper, wal, { thresholdPercent: 0 })).segmentsRewritten > 0);
    await keeper.close();
    await wal.close();
    assert.equal(truncateLogFrom(disk.mount(), DIR, 0).removedRecords, 60);
    for (const crashed of [false, true]) {
      if (crashed) disk.crash();
      const { wal: reopened } = await Wal.open({ dir: DIR, storage: disk.mount(), preallocate: false, segmentSizeBytes: 4096 });
      try {
        assert.equal(reopened.nextOffset, crashed ? 1 : 0, crashed ? 'the append before the power cut is there' : 'the log goes on at 0');
        if (!crashed) assert.equal((await reopened.append([{ value: Buffer.from('again') }])).firstOffset, 0);
      } finally {
        await reopened.close();
      }
    }
  });
});
