/**
 * FrameTailStream (TailWal in frames mode) against a stand-in for the grpc-js call whose transport
 * takes every message at once: how many heartbeats a tail that is caught up sends.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { Wal } from '../../../src/engine/wal.js';
import { TailWalResponse, type TailWalRequest } from '../../../src/gen/wald/v1/tail.js';
import { FrameTailStream } from '../../../src/server/frame-tail-stream.js';
import { TailQueueBudget } from '../../../src/server/tail-queue-budget.js';
import { MemDisk } from '../../support/mem-disk.js';

type TailCall = ConstructorParameters<typeof FrameTailStream>[0];

const MAX_MESSAGES = 100;

/**
 * What FrameTailStream uses of a grpc-js server call; the transport takes each message on the next
 * turn, up to {@link MAX_MESSAGES}: then the call stays full, so that a stream that would write
 * without end stops (a loop of writes that never yields would starve the test's timer).
 */
class TakingCall extends EventEmitter {
  readonly writableHighWaterMark = 16;
  writableNeedDrain = false;
  readonly sent: TailWalResponse[] = [];

  constructor(readonly request: TailWalRequest) {
    super();
  }

  write(response: Buffer, callback: (error?: Error) => void): boolean {
    this.sent.push(TailWalResponse.decode(response));
    if (this.sent.length >= MAX_MESSAGES) {
      this.writableNeedDrain = true;
      return false;
    }
    setImmediate(callback);
    return true;
  }

  getPeer(): string {
    return '127.0.0.1:1';
  }

  cancel(): void {
    process.nextTick(() => this.emit('cancelled', 'cancelled'));
  }
}

const silent = pino({ level: 'silent' });

describe('FrameTailStream', () => {
  test('a tail that starts caught up says so once, then waits for records (no heartbeat loop)', async () => {
    const disk = new MemDisk();
    const { wal } = await Wal.open({ dir: '/data', storage: disk.mount(), segmentSizeBytes: 1024 * 1024, preallocate: false });
    for (let i = 0; i < 3; i++) await wal.append([{ value: Buffer.alloc(10, i) }]);
    // A follower that reconnects with everything: from_offset = high watermark + 1.
    const call = new TakingCall({ start: { $case: 'fromOffset', value: 3n }, maxRecords: 0, maxBytes: 0, frames: true, followerId: 'f' });
    const settings = { heartbeatIntervalMs: 5_000, maxRecords: 0, maxBytes: 64 * 1024, maxQueueBytes: 1024 * 1024 };
    const stream = new FrameTailStream(call as unknown as TailCall, wal, settings, new TailQueueBudget(16 * 1024 * 1024), silent);
    const done = stream.run();
    await delay(1_000);
    // One heartbeat at once, the next after 5 s: at most a few in 1 s, not one per turn of the loop.
    assert.ok(call.sent.length >= 1, 'the first heartbeat goes out at once');
    assert.ok(call.sent.length <= 3, `${call.sent.length} heartbeats within 1 s`);
    assert.deepEqual(call.sent[0]!.frames, []);
    assert.equal(call.sent[0]!.nextOffset, 3n);
    // The tail waits on the high watermark: a new record comes out as frames.
    const framed = once(stream, 'message');
    await wal.append([{ value: Buffer.from('next') }]);
    await framed;
    const last = call.sent[call.sent.length - 1]!;
    assert.equal(last.frames.length, 1);
    assert.equal(last.frames[0]!.baseOffset, 3n);
    call.cancel();
    await done;
    await wal.close();
  });
});
