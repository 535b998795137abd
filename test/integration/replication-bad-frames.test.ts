/**
 * A follower (`wald serve --follow`, a real child) of a crafted leader: a test gRPC server whose
 * TailWal frames mode hands out one good frame and then a bad one (a flipped payload byte under
 * the stored checksum, a frame after a gap, a frame that overlaps the one before). The follower
 * appends the good frame, stops with a clear error at the bad one (WAL_FRAME_REJECTED and its
 * reason in the log, exit status 1), and never writes it: its log, opened afterwards, ends after
 * the good frame.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { encodedRecordBytes, encodeFrame, stampFrame } from '../../src/codec/frame.js';
import { encodeSegmentHeader, SEGMENT_FORMAT_VERSION } from '../../src/codec/segment-header.js';
import { Wal } from '../../src/engine/wal.js';
import type { RawFrame } from '../../src/gen/wald/v1/replication.js';
import type { TailWalRequest, TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import { WalServiceService } from '../../src/gen/wald/v1/wal_service.js';
import { ChildOutput, parseLog, spawnWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

const SEED = 0x5eed_1234;

/** A frame of `count` records `value-<offset>` at `baseOffset`, stamped and checksummed with {@link SEED}. */
function frameAt(baseOffset: number, count: number): Buffer {
  const records = Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`value-${baseOffset + i}`) }));
  const frame = encodeFrame(records, records.reduce((sum, record) => sum + encodedRecordBytes(record), 0));
  stampFrame(frame, baseOffset, 1_700_000_000_000, 0, 0, SEED);
  return frame;
}

function raw(frame: Buffer): RawFrame {
  return { frame, baseOffset: frame.readBigUInt64LE(16), recordCount: frame.readUInt32LE(12), epoch: 0n, crc32c: frame.readUInt32LE(4) };
}

/** The bad second message of each case; the first is always a good frame of offsets 0..4. */
const BAD: Readonly<Record<string, { readonly frames: () => RawFrame[]; readonly reason: string }>> = {
  'a bad checksum': {
    reason: 'checksum',
    frames: () => {
      const frame = frameAt(5, 5);
      frame[frame.length - 12] = frame[frame.length - 12]! ^ 0xff;
      return [raw(frame)];
    },
  },
  'a gap': { reason: 'gap', frames: () => [raw(frameAt(7, 5))] },
  'an overlap': { reason: 'overlap', frames: () => [raw(frameAt(3, 5))] },
};

/** A crafted leader: TailWal in frames mode sends the segment header with a good frame, then `bad`. */
async function craftedLeader(bad: () => RawFrame[]): Promise<{ address: string; close: () => void }> {
  const server = new Server();
  const header = encodeSegmentHeader({ formatVersion: SEGMENT_FORMAT_VERSION, baseOffset: 0, segmentId: randomBytes(16).toString('hex'), createdAtMs: Date.now(), frameSeed: SEED });
  const position = (nextOffset: number): Pick<TailWalResponse, 'highWatermark' | 'firstOffset' | 'nextOffset' | 'epoch' | 'records'> => ({
    highWatermark: 14n,
    firstOffset: 0n,
    nextOffset: BigInt(nextOffset),
    epoch: 0n,
    records: [],
  });
  server.addService(WalServiceService, {
    tailWal: (call: ServerWritableStream<TailWalRequest, TailWalResponse>) => {
      call.on('error', () => {});
      call.write({ ...position(5), frames: [raw(frameAt(0, 5))], segmentHeader: header });
      call.write({ ...position(10), frames: bad(), segmentHeader: Buffer.alloc(0) });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
  );
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

describe('a follower handed bad frames', { timeout: 120_000 }, () => {
  for (const [name, bad] of Object.entries(BAD)) {
    test(`stops with a clear error at a frame with ${name} and never writes it`, async () => {
      const temp = makeTempDir('wald-bad-frames-');
      const leader = await craftedLeader(bad.frames);
      const dataDir = join(temp.dir, 'follower');
      try {
        const child = spawnWald(['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--no-preallocate', '--follow', leader.address, '--replication-initial-backoff-ms', '20']);
        const output = new ChildOutput(child);
        child.stdin.end();
        const run = await output.exited;
        assert.equal(run.code, 1, `the follower exits with status 1; stderr: ${run.stderr}`);
        const stopped = output.lines.map(parseLog).find((line) => line?.['msg']?.toString().startsWith('replication stopped'));
        assert.ok(stopped !== undefined, `a 'replication stopped' line; stdout: ${run.stdout}`);
        const err = stopped['err'] as { code?: string; details?: { reason?: string } } | undefined;
        assert.equal(err?.code, 'WAL_FRAME_REJECTED');
        assert.equal(err?.details?.reason, bad.reason);
        assert.match(run.stderr, /replication from .* stopped/);

        const { wal } = await Wal.open({ dir: dataDir, preallocate: false });
        try {
          assert.equal(wal.nextOffset, 5, 'the good frame is in the log, nothing after it');
          const records = await wal.read(0, { limit: 100 });
          assert.deepEqual(records.map((record) => record.value.toString()), ['value-0', 'value-1', 'value-2', 'value-3', 'value-4']);
        } finally {
          await wal.close();
        }
      } finally {
        leader.close();
        temp.remove();
      }
    });
  }
});
