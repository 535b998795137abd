/**
 * The memory of a real `wald serve` child with tails whose clients never read: measured as the
 * child's resident set (/proc/<pid>/status), not by the server's own counters, so that whatever
 * holds the bytes (our queue, grpc-js, Node's HTTP/2 buffers) is counted. Once with record tails,
 * once with frames-mode tails (followers that stop reading).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { AppendRequest } from '../../src/gen/wald/v1/append.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { TailWalRequest } from '../../src/gen/wald/v1/tail.js';
import { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import { memoryOf, mib, MiB } from '../support/child-memory.js';
import { ChildOutput, parseLog, spawnWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

/** Tails whose clients never read. */
const STUCK_TAILS = 24;
/** Each tail's own cap: without a server-wide cap the stuck tails pin 24 x 16 MiB = 384 MiB. */
const PER_TAIL_CAP_BYTES = 16 * MiB;
/** The server-wide cap under test. `WALD_TEST_TAIL_MEMORY_CAP_BYTES=1099511627776` replays without it. */
const TOTAL_CAP_BYTES = Number(process.env['WALD_TEST_TAIL_MEMORY_CAP_BYTES'] ?? 16 * MiB);
/** The load: 100 appends of 500 records of 4 KiB, about 200 MB, one after the other. */
const BATCHES = 100;
const RECORDS_PER_BATCH = 500;
const VALUE_BYTES = 4096;
/**
 * What the child may grow by, over its RSS once the tails are open: the cap (16 MiB), plus 150 MiB
 * for what the load costs with no tail at all (V8 heap growth and allocator retention from 200 MB
 * passing through gRPC receive buffers and the engine's write path: about 45 MiB measured here),
 * the tails' reads and encodes, and room for slower GC on a busier machine. Measured here with the
 * cap: 55-75 MiB. Without it the stuck tails pin 24 x (16 MiB + one 3 MiB message) and the child
 * grows by about 550 MiB, failing the bound more than three times over.
 */
const MAX_GROWTH_BYTES = 16 * MiB + 150 * MiB;

/** A gRPC message frame: uncompressed flag, 4-byte big-endian length, the message. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * Opens a TailWal call from offset 0 whose client never reads: the stream is never consumed, so
 * Node's HTTP/2 client grants no window beyond the first 64 KiB and the server must keep what it
 * writes. Resolves once the server has answered (its tail is open and has written).
 */
async function openStuckTail(session: ClientHttp2Session, frames: boolean): Promise<ClientHttp2Stream> {
  const stream = session.request({
    ':method': 'POST',
    ':path': '/wald.v1.WalService/TailWal',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.on('error', () => {});
  stream.end(grpcFrame(TailWalRequest.encode(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n }, frames, followerId: frames ? 'stuck' : '' })).finish()));
  await new Promise<void>((resolve, reject) => {
    stream.once('response', () => resolve());
    stream.once('close', () => reject(new Error('the tail closed before the server answered')));
  });
  return stream;
}

function unary<T>(start: (callback: (error: Error | null, response: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, response) => (error === null ? resolve(response) : reject(error))));
}

describe('tail memory of a wald serve child', { timeout: 120_000 }, () => {
  // Records (a consumer) and frames mode (a follower that stops reading): the same bounds.
  for (const frames of [false, true]) {
    test(`wald serve's memory stays bounded by maxTotalTailQueueBytes while stuck ${frames ? 'frames-mode (follower) ' : ''}tails face a 200 MB load`, async (t) => {
      if (!existsSync('/proc/self/status')) {
        t.skip('needs /proc (Linux) to read the child RSS');
        return;
      }
      const temp = makeTempDir('wald-tail-memory-');
      const child = spawnWald([
        'serve',
        '--listen', '127.0.0.1:0',
        '--data-dir', join(temp.dir, 'data'),
        '--sync-policy', 'none',
        '--no-preallocate',
        '--max-tail-queue-bytes', String(PER_TAIL_CAP_BYTES),
        '--max-total-tail-queue-bytes', String(TOTAL_CAP_BYTES),
        '--tail-heartbeat-interval-ms', '60000',
        '--shutdown-grace-ms', '100',
      ]);
      const output = new ChildOutput(child);
      child.stdin.end();
      let session: ClientHttp2Session | undefined;
      let client: WalServiceClient | undefined;
      try {
        const address = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'))?.address;
        assert.equal(typeof address, 'string');
        const pid = child.pid!;
        session = connect(`http://${address as string}`);
        session.on('error', () => {});
        for (let i = 0; i < STUCK_TAILS; i++) {
          await openStuckTail(session, frames);
        }
        // The load goes over a connection of its own, which the stuck tails' windows do not hold up.
        client = new WalServiceClient(address as string, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
        const stats = (): Promise<GetStatsResponse> => unary((callback) => client!.getStats({}, callback));
        assert.equal((await stats()).tailStreamCount, STUCK_TAILS);
        const before = memoryOf(pid);

        let maxSampledRssBytes = before.rssBytes;
        for (let batch = 0; batch < BATCHES; batch++) {
          const value = Buffer.alloc(VALUE_BYTES, batch);
          const request = AppendRequest.fromPartial({ records: Array.from({ length: RECORDS_PER_BATCH }, () => ({ value })) });
          await unary((callback) => client!.append(request, callback));
          maxSampledRssBytes = Math.max(maxSampledRssBytes, memoryOf(pid).rssBytes);
        }
        const after = await stats();
        const end = memoryOf(pid);
        const growthBytes = Math.max(end.peakRssBytes, maxSampledRssBytes) - before.rssBytes;
        t.diagnostic(
          `RSS before load ${mib(before.rssBytes)}, max during ${mib(maxSampledRssBytes)}, peak ${mib(end.peakRssBytes)}, ` +
            `after ${mib(end.rssBytes)}; growth ${mib(growthBytes)} (bound ${mib(MAX_GROWTH_BYTES)}); ` +
            `server reports ${mib(Number(after.tailQueueBytes))} queued on ${after.tailStreamCount} tails`,
        );
        assert.equal(after.entryCount, BigInt(BATCHES * RECORDS_PER_BATCH));
        assert.equal(after.tailStreamCount, STUCK_TAILS, 'no tail was ended by the cap');
        assert.ok(growthBytes < MAX_GROWTH_BYTES, `the child grew by ${mib(growthBytes)}, more than ${mib(MAX_GROWTH_BYTES)}`);
      } finally {
        session?.destroy();
        client?.close();
        child.kill('SIGTERM');
        const run = await output.exited;
        temp.remove();
        assert.equal(run.code, 0, run.stderr);
      }
    });
  }
});
