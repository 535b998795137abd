/**
 * Raw frames out (readFrames) and in (appendFrames): a follower fed a leader's runs holds
 * byte-identical segment files, epochs and records; readFrames ships whole durable frames of one
 * segment, with the segment header at a segment's first frame, in buffers the caller owns;
 * appendFrames checks every frame of a call before writing any and refuses bad checksums, gaps,
 * overlaps, older epochs, misaligned lengths, bad and compacted segment headers, writing nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeSegmentHeader } from '../../../src/codec/segment-header.js';
import { createEmptyLog } from '../../../src/engine/empty-log.js';
import { Wal } from '../../../src/engine/wal.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import { isWalError } from '../../../src/errors.js';
import { NodeStorage } from '../../../src/storage/node-storage.js';
import { copyFrames, handFrame, usedSegmentBytes } from '../../support/frame-copy.js';
import { MemDisk } from '../../support/mem-disk.js';
import { makeTempDir } from '../../support/temp-dir.js';

const v = (s: string): { value: Buffer } => ({ value: Buffer.from(s) });

async function open(disk: MemDisk, dir: string, extra: Partial<WalOptions> = {}): Promise<Wal> {
  return (await Wal.open({ dir, storage: disk.mount(), preallocate: false, ...extra })).wal;
}

async function values(wal: Wal): Promise<string[]> {
  const out: string[] = [];
  for await (const r of wal.range(wal.firstOffset)) out.push(`${r.offset}:${r.value.toString()}`);
  return out;
}

/** A leader with several segments, producers, and two epochs. */
async function fillLeader(leader: Wal): Promise<void> {
  for (let i = 0; i < 40; i++) await leader.append(Array.from({ length: 1 + (i % 3) }, (_, r) => v(`a${i}.${r}`.padEnd(100 + 5 * i, '.'))));
  await leader.beginEpoch(3);
  for (let i = 0; i < 20; i++) await leader.append([v(`b${i}`)], { producerId: 'p', sequence: i });
  await leader.beginEpoch(2 ** 40);
  await leader.append([{ key: Buffer.from('k'), value: Buffer.from('x'.repeat(3000)), headers: { h: Buffer.from('1') } }]);
  for (let i = 0; i < 10; i++) await leader.append([v(`c${i}`)]);
}

describe('readFrames and appendFrames', () => {
  test('a follower fed the leader frame runs has byte-identical segment files, the same epochs, records and range hash', async () => {
    const leaderDir = makeTempDir();
    const followerDir = makeTempDir();
    const storage = new NodeStorage();
    try {
      const { wal: leader } = await Wal.open({ dir: leaderDir.dir, segmentSizeBytes: 8192, preallocate: false });
      // The follower's own segment size (smaller here) and preallocation do not matter: the leader's segments do.
      const { wal: follower } = await Wal.open({ dir: followerDir.dir, segmentSizeBytes: 4096, preallocate: true });
      await fillLeader(leader);
      assert.ok(leader.listSegments().length > 2, 'the leader rotated several times');
      await copyFrames(leader, follower, 1500);
      assert.equal(follower.nextOffset, leader.nextOffset);
      assert.deepEqual(follower.epochHistory(), leader.epochHistory());
      assert.equal(follower.epoch, 2 ** 40);
      assert.equal(follower.frameSeed, leader.frameSeed, 'the follower took the seed from the leader first segment header');
      assert.deepEqual(await values(follower), await values(leader));
      assert.deepEqual(await follower.hashRange(0), await leader.hashRange(0));
      await leader.close();
      await follower.close();
      const leaderFiles = usedSegmentBytes(storage, leaderDir.dir);
      const followerFiles = usedSegmentBytes(storage, followerDir.dir);
      assert.deepEqual(
        followerFiles.map((f) => f.name),
        leaderFiles.map((f) => f.name),
      );
      for (let i = 0; i < leaderFiles.length; i++) assert.ok(followerFiles[i]!.bytes.equals(leaderFiles[i]!.bytes), `${leaderFiles[i]!.name} is byte-identical`);

      // Reopened, the follower goes on from its next offset, and promoted it appends on its own.
      const { wal: again } = await Wal.open({ dir: followerDir.dir, segmentSizeBytes: 1 << 20 });
      try {
        assert.deepEqual(again.epochHistory(), [
          { epoch: 3, startOffset: 79 },
          { epoch: 2 ** 40, startOffset: 99 },
        ]);
        await again.beginEpoch(2 ** 40 + 1);
        const appended = await again.append([v('promoted')], { producerId: 'p', sequence: 19 });
        assert.equal(appended.duplicate, true, 'the producer table came with the frames');
        assert.equal((await again.append([v('promoted')])).firstOffset, 110);
      } finally {
        await again.close();
      }
    } finally {
      leaderDir.remove();
      followerDir.remove();
    }
  });

  test('readFrames: whole durable frames of one segment, the header with a segment first frame, maxBytes, and its refusals', async () => {
    const disk = new MemDisk();
    const leader = await open(disk, '/leader', { segmentSizeBytes: 4096 });
    try {
      for (let i = 0; i < 30; i++) await leader.append([v(`r${i}`.padEnd(200, '.')), v(`s${i}`)]);
      const [first, second] = leader.listSegments();
      const all = await leader.readFrames(0, 1 << 20);
      assert.ok(all.segmentHeader !== undefined && all.segmentHeader.length === 64, 'offset 0 starts segment 0: its header comes along');
      assert.equal(all.nextOffset, first!.nextOffset, 'a run never crosses into the next segment');
      assert.ok(all.frames.every((f, i) => f.baseOffset === 2 * i && f.recordCount === 2 && f.bytes.length % 8 === 0 && f.epoch === 0));
      const next = await leader.readFrames(all.nextOffset, 1 << 20);
      assert.equal(next.frames[0]!.baseOffset, second!.baseOffset);
      assert.ok(next.segmentHeader !== undefined);
      const middle = await leader.readFrames(2, 1);
      assert.equal(middle.frames.length, 1, 'a frame larger than maxBytes comes alone');
      assert.equal(middle.segmentHeader, undefined, 'not a segment first frame: no header');
      assert.equal(middle.nextOffset, 4);
      assert.equal(middle.frames[0]!.crc32c, middle.frames[0]!.bytes.readUInt32LE(4));
      const two = await leader.readFrames(2, middle.frames[0]!.bytes.length * 2);
      assert.equal(two.frames.length, 2);
      await assert.rejects(leader.readFrames(3, 100), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'fromOffset', 'inside a frame');
      await assert.rejects(leader.readFrames(61, 100), (e) => isWalError(e, 'WAL_OFFSET_OUT_OF_RANGE'));
      assert.deepEqual(await leader.readFrames(60, 100), { frames: [], nextOffset: 60 });
      await leader.deleteSegmentsBefore(second!.baseOffset);
      await assert.rejects(leader.readFrames(0, 100), (e) => isWalError(e, 'WAL_OFFSET_COMPACTED'));
    } finally {
      await leader.close();
    }
  });

  test('readFrames ships only durable frames, and its buffers stay intact after the segment is deleted', async () => {
    const disk = new MemDisk();
    const leader = await open(disk, '/leader', { segmentSizeBytes: 4096, syncPolicy: 'interval', syncIntervalMs: 3_600_000 });
    try {
      for (let i = 0; i < 20; i++) await leader.append([v(`r${i}`.padEnd(400, '.'))]);
      await leader.sync();
      await leader.append([v('not yet synced')]);
      assert.equal(leader.highWatermark, 19);
      const run = await leader.readFrames(0, 1 << 20);
      const copies = run.frames.map((f) => Buffer.from(f.bytes));
      let next = run.nextOffset;
      for (let n = 0; n < 20 && next <= leader.highWatermark; n++) next = (await leader.readFrames(next, 1 << 20)).nextOffset;
      assert.equal(next, 20, 'the unsynced frame is not shipped');
      await leader.deleteSegmentsBefore(run.nextOffset);
      assert.equal(leader.firstOffset, run.nextOffset, 'the segment of the run is gone');
      run.frames.forEach((f, i) => assert.ok(f.bytes.equals(copies[i]!), 'the bytes handed out are the caller own'));
    } finally {
      await leader.close();
    }
  });

  test('appendFrames checks every frame of a call before writing any, and refuses each kind of bad run', async () => {
    const disk = new MemDisk();
    const follower = await open(disk, '/follower');
    try {
      const seed = follower.frameSeed;
      await follower.appendFrames([handFrame(0, 2, 1, seed), handFrame(2, 1, 1, seed)]);
      assert.equal(follower.nextOffset, 3);
      assert.equal(follower.epoch, 1);
      const before = usedSegmentBytes(disk.mount(), '/follower');
      const badCrc = handFrame(4, 1, 1, seed);
      badCrc[badCrc.length - 9]! ^= 1;
      const flippedInHeader = handFrame(4, 1, 1, seed);
      flippedInHeader[20] = 1; // the base offset's high half: the CRC covers it
      const cases: { name: string; frames: Buffer[]; reason: string; header?: Buffer }[] = [
        { name: 'a bad checksum in the third frame', frames: [handFrame(3, 1, 1, seed), handFrame(4, 1, 1, seed), (() => { const f = handFrame(5, 1, 1, seed); f[44]! ^= 0x10; return f; })()], reason: 'checksum' },
        { name: 'a frame of another seed', frames: [handFrame(3, 1, 1, seed ^ 1)], reason: 'checksum' },
        { name: 'a changed header byte', frames: [handFrame(3, 1, 1, seed), flippedInHeader], reason: 'checksum' },
        { name: 'a gap at the start', frames: [handFrame(4, 1, 1, seed)], reason: 'gap' },
        { name: 'a gap between frames', frames: [handFrame(3, 1, 1, seed), handFrame(5, 1, 1, seed)], reason: 'gap' },
        { name: 'an overlap', frames: [handFrame(2, 2, 1, seed)], reason: 'overlap' },
        { name: 'an older epoch', frames: [handFrame(3, 1, 1, seed), handFrame(4, 1, 0, seed)], reason: 'epoch' },
        { name: 'a frame cut short', frames: [handFrame(3, 1, 1, seed).subarray(0, 44)], reason: 'length' },
        { name: 'a frame with extra bytes', frames: [Buffer.concat([handFrame(3, 1, 1, seed), Buffer.alloc(8)])], reason: 'length' },
        { name: 'a misaligned frame', frames: [Buffer.concat([handFrame(3, 1, 1, seed), Buffer.alloc(3)])], reason: 'length' },
        {
          name: 'a segment header of another offset',
          frames: [handFrame(3, 1, 1, seed)],
          header: encodeSegmentHeader({ formatVersion: 2, baseOffset: 4, segmentId: 'ab'.repeat(16), createdAtMs: 5, frameSeed: seed }),
          reason: 'header',
        },
        { name: 'a damaged segment header', frames: [handFrame(3, 1, 1, seed)], header: Buffer.alloc(64, 1), reason: 'header' },
        {
          name: 'a key-compacted segment',
          frames: [handFrame(3, 1, 1, seed)],
          header: encodeSegmentHeader({ formatVersion: 2, baseOffset: 3, segmentId: 'cd'.repeat(16), createdAtMs: 5, frameSeed: seed, compactedNextOffset: 10 }),
          reason: 'compacted',
        },
      ];
      for (const c of cases) {
        await assert.rejects(
          follower.appendFrames(c.frames, { segmentHeader: c.header }),
          (e) => isWalError(e, 'WAL_FRAME_REJECTED') && e.details['reason'] === c.reason,
          c.name,
        );
        assert.equal(follower.nextOffset, 3, `${c.name}: nothing written`);
      }
      assert.equal(follower.epoch, 1, 'no refused run changed the epoch');
      await follower.sync();
      assert.deepEqual(usedSegmentBytes(disk.mount(), '/follower'), before, 'the segment is as it was');
      await follower.appendFrames([handFrame(3, 1, 4, seed)]);
      assert.deepEqual(follower.epochHistory(), [
        { epoch: 1, startOffset: 0 },
        { epoch: 4, startOffset: 3 },
      ]);
      assert.deepEqual(await values(follower), ['0:hand 0', '1:hand 1', '2:hand 2', '3:hand 3']);
    } finally {
      await follower.close();
    }
  });

  test('a follower bootstrapped with createEmptyLog takes the leader seed and history and goes on from the middle of a leader segment', async () => {
    const disk = new MemDisk();
    const leader = await open(disk, '/leader', { segmentSizeBytes: 1 << 20 });
    try {
      for (let i = 0; i < 10; i++) await leader.append([v(`r${i}`)]);
      await leader.beginEpoch(7);
      for (let i = 10; i < 20; i++) await leader.append([v(`r${i}`)]);
      await leader.beginEpoch(9);
      for (let i = 20; i < 30; i++) await leader.append([v(`r${i}`)]);
      // A snapshot at 15 (the state below it installed elsewhere): the log starts there.
      createEmptyLog({ dir: '/follower', storage: disk.mount(), baseOffset: 15, frameSeed: leader.frameSeed, epochHistory: leader.epochHistory() });
      const follower = await open(disk, '/follower');
      try {
        assert.deepEqual(follower.epochHistory(), [{ epoch: 7, startOffset: 10 }], 'entries after the base offset come with their frames');
        assert.equal(follower.frameSeed, leader.frameSeed);
        await copyFrames(leader, follower, 100);
        assert.deepEqual(follower.epochHistory(), leader.epochHistory());
        assert.deepEqual(await follower.hashRange(15), await leader.hashRange(15));
        assert.deepEqual((await follower.read(15, { limit: 1 }))[0]?.value.toString(), 'r15');
      } finally {
        await follower.close();
      }
      assert.throws(() => createEmptyLog({ dir: '/other', storage: disk.mount(), baseOffset: 0, epochHistory: [{ epoch: 3, startOffset: 0 }, { epoch: 3, startOffset: 1 }] }), RangeError);
      assert.throws(() => createEmptyLog({ dir: '/other', storage: disk.mount(), baseOffset: 0, frameSeed: 0 }), RangeError);
    } finally {
      await leader.close();
    }
  });
});
