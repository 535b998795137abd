/**
 * Wal.segmentHeaderOf: the stored header of the segment holding an offset, which a frames-mode
 * tail starting inside a segment sends first (a follower after a snapshot install takes the frame
 * seed from it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSegmentHeader } from '../../../src/codec/segment-header.js';
import { Wal } from '../../../src/engine/wal.js';
import { MemDisk } from '../../support/mem-disk.js';

describe('Wal.segmentHeaderOf', () => {
  test('answers the header of the segment holding the offset, as stored', async () => {
    const { wal } = await Wal.open({ dir: '/data', storage: new MemDisk().mount(), preallocate: false, segmentSizeBytes: 4096 });
    try {
      for (let i = 0; i < 40; i++) await wal.append([{ value: Buffer.alloc(200, i) }]);
      const segments = wal.listSegments();
      assert.ok(segments.length >= 3, `segments rolled (${segments.length})`);
      for (const segment of segments.filter((s) => s.nextOffset > s.baseOffset)) {
        const decoded = decodeSegmentHeader(await wal.segmentHeaderOf(segment.nextOffset - 1));
        assert.ok(decoded.ok);
        assert.equal(decoded.header.baseOffset, segment.baseOffset);
        assert.equal(decoded.header.frameSeed, wal.frameSeed);
      }
      const run = await wal.readFrames(segments[1]!.baseOffset, 1 << 20);
      assert.ok(run.segmentHeader !== undefined && run.segmentHeader.equals(await wal.segmentHeaderOf(segments[1]!.baseOffset)), 'the same bytes readFrames sends at a segment start');
    } finally {
      await wal.close();
    }
  });
});
