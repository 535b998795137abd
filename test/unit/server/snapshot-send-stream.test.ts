/**
 * SnapshotSendStream against a stand-in for the grpc-js call whose transport takes messages only
 * when the test says so: it never has more than two messages queued (flow control: the file is
 * read only as the client takes it), sends the info then every byte of the file, and ends with
 * the shutdown status or quietly on a cancel.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { Wal } from '../../../src/engine/wal.js';
import type { GetSnapshotRequest, GetSnapshotResponse } from '../../../src/gen/wald/v1/snapshot.js';
import { GET_SNAPSHOT_CHUNK_BYTES, MAX_QUEUED_MESSAGES, SnapshotSendStream, type SnapshotCall } from '../../../src/server/snapshot-send-stream.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { MemDisk } from '../../support/mem-disk.js';

/**
 * What SnapshotSendStream uses of a grpc-js server call: `write` queues until `take`; `end` and an
 * `'error'` send the status behind the queued messages, then `'cancelled'` says the call is over;
 * `cancel` ends it at once.
 */
class FakeCall extends EventEmitter {
  readonly pending: { readonly message: GetSnapshotResponse; readonly callback: () => void }[] = [];
  readonly sent: GetSnapshotResponse[] = [];
  mostQueued = 0;
  failure: (Error & { code?: number }) | undefined;
  isEnded = false;
  private isOver = false;

  constructor(readonly request: GetSnapshotRequest) {
    super();
    this.on('error', (error: Error & { code?: number }) => {
      this.failure = error;
      this.overIfDrained();
    });
  }

  write(message: GetSnapshotResponse, callback: () => void): boolean {
    this.pending.push({ message, callback });
    this.mostQueued = Math.max(this.mostQueued, this.pending.length);
    return true;
  }

  end(): void {
    this.isEnded = true;
    this.overIfDrained();
  }

  /** The transport takes the oldest queued message. */
  take(): void {
    const next = this.pending.shift();
    assert.ok(next !== undefined, 'nothing queued');
    this.sent.push(next.message);
    next.callback();
    this.overIfDrained();
  }

  cancel(): void {
    this.pending.splice(0);
    this.over();
  }

  private overIfDrained(): void {
    if ((this.isEnded || this.failure !== undefined) && this.pending.length === 0) this.over();
  }

  private over(): void {
    if (this.isOver) return;
    this.isOver = true;
    setImmediate(() => this.emit('cancelled'));
  }
}

/** A state of about 2 MB on a MemDisk with a full snapshot of it: the snapshot's id and bytes. */
async function fixture(): Promise<{ state: StateKeeper; id: string; bytes: Buffer; close: () => Promise<void> }> {
  const storage = new MemDisk().mount();
  const { wal } = await Wal.open({ dir: '/data', storage, preallocate: false });
  const { keeper: state } = await StateKeeper.open({ wal, storage });
  await wal.append(Array.from({ length: 2000 }, (_, i) => ({ key: Buffer.from(`key-${i}`), value: Buffer.alloc(1000, i) })));
  const created = await state.createSnapshot();
  return {
    state,
    id: created.id,
    bytes: storage.readFile(created.path),
    async close() {
      await state.close();
      await wal.close();
    },
  };
}

function streamOf(call: FakeCall, state: StateKeeper): SnapshotSendStream {
  return new SnapshotSendStream(call as unknown as SnapshotCall, state, pino({ level: 'silent' }));
}

describe('SnapshotSendStream', () => {
  test('reads the file only as the transport takes it: never more than two messages queued; the info, then every byte', async () => {
    const f = await fixture();
    try {
      const call = new FakeCall({ snapshotId: f.id });
      const stream = streamOf(call, f.state);
      const blocked = once(stream, 'blocked');
      const run = stream.run();
      await blocked;
      assert.equal(call.pending.length, MAX_QUEUED_MESSAGES);
      assert.equal(stream.counters().bytesSent, GET_SNAPSHOT_CHUNK_BYTES, 'one chunk read while the transport took nothing');
      const chunks = Math.ceil(f.bytes.length / GET_SNAPSHOT_CHUNK_BYTES);
      assert.ok(chunks >= 6, `${chunks} chunks`);
      // One message taken at a time: each time the stream reads one more chunk and waits again.
      for (let taken = 0; taken < chunks + 1; taken++) {
        const next = once(stream, 'blocked');
        call.take();
        if (taken < chunks - 1) {
          await next;
          assert.equal(call.pending.length, MAX_QUEUED_MESSAGES);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      await run;
      assert.equal(call.mostQueued, MAX_QUEUED_MESSAGES);
      assert.equal(call.isEnded, true);
      assert.equal(call.failure, undefined);
      const [first, ...rest] = call.sent;
      assert.equal(first?.content?.$case, 'info');
      assert.equal(first.content.$case === 'info' ? first.content.value.sizeBytes : 0n, BigInt(f.bytes.length));
      const received = Buffer.concat(rest.map((message) => (message.content?.$case === 'chunk' ? message.content.value : Buffer.alloc(0))));
      assert.equal(rest.length, chunks);
      assert.ok(received.equals(f.bytes));
    } finally {
      await f.close();
    }
  });

  test('shutdown while blocked ends the call with UNAVAILABLE WAL_SHUTTING_DOWN; a cancel ends it with no status', async () => {
    const f = await fixture();
    try {
      const call = new FakeCall({ snapshotId: f.id });
      const stream = streamOf(call, f.state);
      const blocked = once(stream, 'blocked');
      const run = stream.run();
      await blocked;
      const stopped = stream.shutdown();
      await new Promise((resolve) => setImmediate(resolve));
      while (call.pending.length > 0) call.take();
      await stopped;
      await run;
      assert.equal(call.failure?.code, status.UNAVAILABLE);
      assert.match(call.failure?.message ?? '', /shutting down/);
      assert.equal(call.isEnded, false);

      const cancelled = new FakeCall({ snapshotId: f.id });
      const other = streamOf(cancelled, f.state);
      const otherBlocked = once(other, 'blocked');
      const otherRun = other.run();
      await otherBlocked;
      cancelled.cancel();
      await otherRun;
      assert.equal(cancelled.failure, undefined);
      assert.equal(cancelled.isEnded, false);
      assert.ok(other.counters().messagesSent <= MAX_QUEUED_MESSAGES + 1);
    } finally {
      await f.close();
    }
  });
});
