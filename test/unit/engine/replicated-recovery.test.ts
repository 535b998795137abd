/**
 * A follower's frames carry its leader's sync lags. Once a log took frames through appendFrames it
 * is marked `replicated`, and recovery (and `wald verify`, offline) believe no frame's claim: a
 * frame lost before a surviving one, past the follower's own recovery point, is a torn tail (cut
 * and kept), where the same bytes in the leader's own log are corruption.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { verifyLog } from '../../../src/offline/log-verifier.js';
import { copyFrames } from '../../support/frame-copy.js';
import { MemDisk } from '../../support/mem-disk.js';
import { segmentFrames } from '../../support/segment-frames.js';

const v = (s: string): { value: Buffer } => ({ value: Buffer.from(s) });

/** Zeroes the 6th frame of the log's one segment: what a power cut may leave. */
function loseSixthFrame(disk: MemDisk, dir: string): number {
  const storage = disk.mount();
  const path = join(dir, '00000000000000000000.seg');
  const bytes = storage.readFile(path);
  const frame = segmentFrames(bytes)[5]!;
  const file = storage.open(path, 'read-write');
  file.writev([Buffer.alloc(frame.alignedLength)], frame.position);
  file.datasync();
  file.close();
  // A power cut leaves neither a recovery point this far, nor a clean-shutdown marker, nor an index of the active segment.
  storage.unlink(join(dir, 'RECOVERY'));
  storage.unlink(join(dir, 'CLEAN'));
  storage.unlink(join(dir, '00000000000000000000.idx'));
  storage.syncDir(dir);
  return frame.baseOffset;
}

describe('recovery of a replicated log', () => {
  test('a frame lost before a surviving one is a torn tail on the follower, corruption on the leader', async () => {
    const disk = new MemDisk();
    const { wal: leader } = await Wal.open({ dir: '/leader', storage: disk.mount(), preallocate: false });
    const { wal: follower } = await Wal.open({ dir: '/follower', storage: disk.mount(), preallocate: false });
    // Under `always` every frame claims that everything before it was durable.
    for (let i = 0; i < 12; i++) await leader.append([v(`r${i}`.padEnd(100, '.'))]);
    await copyFrames(leader, follower, 1 << 20);
    await leader.close();
    await follower.close();

    const lost = loseSixthFrame(disk, '/follower');
    const followerReport = await verifyLog(disk.mount(), '/follower');
    assert.deepEqual(followerReport.faults.map((f) => f.kind), ['torn-tail'], 'wald verify classifies it as open will');
    const { wal: reopened, report } = await Wal.open({ dir: '/follower', storage: disk.mount(), preallocate: false });
    try {
      assert.equal(report.faults.filter((f) => f.kind === 'torn-tail').length, 1);
      assert.equal(reopened.nextOffset, lost, 'cut back to the last whole frame');
    } finally {
      await reopened.close();
    }

    loseSixthFrame(disk, '/leader');
    assert.deepEqual((await verifyLog(disk.mount(), '/leader')).faults.map((f) => f.kind), ['corruption']);
    await assert.rejects(Wal.open({ dir: '/leader', storage: disk.mount(), preallocate: false }), (e) => isWalError(e, 'WAL_CORRUPTION'));
  });
});
