/**
 * hashRange: SHA-256 over the stored frames whose base offset lies in the range, equal across a
 * leader and its follower whatever their segment boundaries, different once one byte of one
 * frame differs (a frame that still checks out), with the range and counts it covered.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { checksumFrame } from '../../../src/codec/frame.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { copyFrames } from '../../support/frame-copy.js';
import { MemDisk } from '../../support/mem-disk.js';

const v = (s: string): { value: Buffer } => ({ value: Buffer.from(s) });

describe('hashRange', () => {
  test('equal on two copies, different after one byte of one frame differs, and the range it covered', async () => {
    const disk = new MemDisk();
    const { wal: leader } = await Wal.open({ dir: '/leader', storage: disk.mount(), preallocate: false, segmentSizeBytes: 4096 });
    const { wal: follower } = await Wal.open({ dir: '/follower', storage: disk.mount(), preallocate: false });
    try {
      for (let i = 0; i < 30; i++) await leader.append([v(`r${i}`.padEnd(300, '.')), v(`s${i}`)]);
      assert.ok(leader.listSegments().length > 2);
      // All but the last frame, then the last frame with one byte of a value changed (re-checksummed, so it is a valid frame).
      let next = 0;
      while (next < 58) {
        const run = await leader.readFrames(next, 1000);
        const frames = run.frames.filter((f) => f.baseOffset < 58);
        await follower.appendFrames(frames.map((f) => f.bytes), { segmentHeader: run.segmentHeader });
        next = follower.nextOffset;
      }
      const equalPart = await leader.hashRange(0, 58);
      assert.deepEqual(await follower.hashRange(0, 58), equalPart);
      assert.equal(equalPart.frameCount, 29);
      assert.equal(equalPart.recordCount, 58);
      assert.deepEqual([equalPart.fromOffset, equalPart.toOffset], [0, 58]);
      const last = (await leader.readFrames(58, 1000)).frames[0]!;
      const changed = Buffer.from(last.bytes);
      changed[60]! ^= 1;
      checksumFrame(changed, follower.frameSeed);
      await follower.appendFrames([changed]);
      assert.notDeepEqual((await follower.hashRange(0)).sha256, (await leader.hashRange(0)).sha256);
      assert.notDeepEqual((await follower.hashRange(58)).sha256, (await leader.hashRange(58)).sha256);
      assert.deepEqual(await follower.hashRange(0, 58), equalPart, 'the range before the change still agrees');

      // The hash is SHA-256 of the frames' bytes as stored, in offset order.
      const expected = createHash('sha256');
      for (let from = 10; from < 20; ) {
        const run = await leader.readFrames(from, 1);
        expected.update(run.frames[0]!.bytes);
        from = run.nextOffset;
      }
      const middle = await leader.hashRange(9, 19);
      assert.deepEqual(middle.sha256, expected.digest(), 'a start inside a frame skips it; a frame starting below the end counts whole');
      assert.deepEqual([middle.fromOffset, middle.toOffset, middle.frameCount, middle.recordCount], [10, 20, 5, 10]);
      const empty = await leader.hashRange(60);
      assert.deepEqual([empty.fromOffset, empty.toOffset, empty.frameCount], [60, 60, 0]);
      assert.deepEqual(empty.sha256, createHash('sha256').digest());
      assert.deepEqual((await leader.hashRange(0, 1000)).toOffset, 60, 'never past the high watermark');
      await assert.rejects(leader.hashRange(10, 5), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'toOffset');
      await assert.rejects(leader.hashRange(61), (e) => isWalError(e, 'WAL_OFFSET_OUT_OF_RANGE'));
    } finally {
      await leader.close();
      await follower.close();
    }
  });

  test('agrees between a leader and a follower fed runs of any size', async () => {
    const disk = new MemDisk();
    const { wal: leader } = await Wal.open({ dir: '/leader', storage: disk.mount(), preallocate: false, segmentSizeBytes: 4096 });
    try {
      for (let i = 0; i < 50; i++) await leader.append(Array.from({ length: 1 + (i % 4) }, (_, r) => v(`x${i}.${r}`.padEnd(50 + 13 * i, '-'))));
      for (const maxBytes of [1, 500, 5000, 1 << 20]) {
        const { wal: follower } = await Wal.open({ dir: `/follower-${maxBytes}`, storage: disk.mount(), preallocate: false });
        try {
          await copyFrames(leader, follower, maxBytes);
          assert.deepEqual(await follower.hashRange(0), await leader.hashRange(0), `runs of ${maxBytes} bytes`);
        } finally {
          await follower.close();
        }
      }
    } finally {
      await leader.close();
    }
  });
});
