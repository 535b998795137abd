import { join } from 'node:path';
import { encodedRecordBytes, encodeFrame, stampFrame } from '../../src/codec/frame.js';
import type { Wal } from '../../src/engine/wal.js';
import type { Storage } from '../../src/storage/storage.js';
import { segmentFrames } from './segment-frames.js';

/**
 * Copies `leader`'s durable frames into `follower` from the follower's next offset, as a follower
 * does: runs of at most `maxBytes`, each appended with its segment header when it has one.
 * Returns how many runs it copied. Bounded: one run per frame at most.
 */
export async function copyFrames(leader: Wal, follower: Wal, maxBytes = 4096): Promise<number> {
  let runs = 0;
  const limit = leader.highWatermark + 2 - follower.nextOffset;
  while (follower.nextOffset <= leader.highWatermark && runs <= limit) {
    const run = await leader.readFrames(follower.nextOffset, maxBytes);
    if (run.frames.length === 0) break;
    await follower.appendFrames(
      run.frames.map((frame) => frame.bytes),
      { segmentHeader: run.segmentHeader },
    );
    runs++;
  }
  return runs;
}

/** Each segment file of the log in `dir`: its name and its used bytes (header + frames, without a preallocated zero end). */
export function usedSegmentBytes(storage: Storage, dir: string): { name: string; bytes: Buffer }[] {
  return storage
    .list(dir)
    .filter((name) => name.endsWith('.seg'))
    .sort()
    .map((name) => {
      const bytes = storage.readFile(join(dir, name));
      const last = segmentFrames(bytes).at(-1);
      return { name, bytes: bytes.subarray(0, last === undefined ? 64 : last.position + last.alignedLength) };
    });
}

/** A frame built by hand, as another log would have stamped it: `count` records at `baseOffset`. */
export function handFrame(baseOffset: number, count: number, epoch: number, seed: number, timestamp = 1_000): Buffer {
  const records = Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`hand ${baseOffset + i}`) }));
  const payload = records.reduce((sum, record) => sum + encodedRecordBytes(record), 0);
  const frame = encodeFrame(records, payload);
  stampFrame(frame, baseOffset, timestamp, epoch, 0, seed);
  return frame;
}
