import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import type { TailStream } from '../../src/server/tail-stream.js';
import { rpcErrorOf, startServer, StreamReader, values } from './support/harness.js';

/** Reads messages until one has records, skipping heartbeats (at most `limit` messages). */
async function nextBatch(reader: StreamReader<TailWalResponse>, limit = 1000): Promise<TailWalResponse> {
  for (let i = 0; i < limit; i++) {
    const message = await reader.next();
    if (message.records.length > 0) {
      return message;
    }
  }
  throw new Error(`no records within ${limit} messages`);
}

/** Reads messages until one is a heartbeat (empty batch), returning the records seen before it. */
async function untilHeartbeat(reader: StreamReader<TailWalResponse>, limit = 1000): Promise<{ offsets: bigint[]; heartbeat: TailWalResponse }> {
  const offsets: bigint[] = [];
  for (let i = 0; i < limit; i++) {
    const message = await reader.next();
    if (message.records.length === 0) {
      return { offsets, heartbeat: message };
    }
    offsets.push(...message.records.map((r) => r.offset));
  }
  throw new Error(`no heartbeat within ${limit} messages`);
}

describe('TailWal', { timeout: 120_000 }, () => {
  test('catches up from disk, signals it has caught up, then follows new appends live', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: values(3) });
      await h.client.append({ records: values(2) });
      const reader = new StreamReader(h.client.tail({ start: { $case: 'fromOffset', value: 1n } }));
      const caughtUp = await untilHeartbeat(reader);
      assert.deepEqual(caughtUp.offsets, [1n, 2n, 3n, 4n]);
      assert.equal(caughtUp.heartbeat.highWatermark, 4n);
      assert.equal(caughtUp.heartbeat.nextOffset, 5n);
      assert.equal(caughtUp.heartbeat.firstOffset, 0n);

      await h.client.append({ records: [{ key: Buffer.from('k'), value: Buffer.from('live') }] });
      const live = await nextBatch(reader);
      assert.equal(live.records[0]!.offset, 5n);
      assert.deepEqual(live.records[0]!.value, Buffer.from('live'));
      assert.deepEqual(live.records[0]!.key, Buffer.from('k'));
      assert.equal(live.highWatermark, 5n);
      assert.equal(live.nextOffset, 6n);
    } finally {
      await h.close();
    }
  });

  test('an unset start tails from the first retained offset; from_end only delivers new records', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: values(2) });
      const all = new StreamReader(h.client.tail({}));
      assert.deepEqual((await untilHeartbeat(all)).offsets, [0n, 1n]);
      const fromEnd = new StreamReader(h.client.tail({ start: { $case: 'fromEnd', value: true } }));
      const first = await fromEnd.next();
      assert.deepEqual(first.records, [], 'the first message says: caught up');
      assert.equal(first.nextOffset, 2n);
      await h.client.append({ records: values(1, 'new') });
      const batch = await nextBatch(fromEnd);
      assert.deepEqual(batch.records.map((r) => r.offset), [2n]);
    } finally {
      await h.close();
    }
  });

  test('from_timestamp starts at the first record at or after the timestamp', async () => {
    let nowMs = 1_700_000_000_000;
    const h = await startServer({ wal: { clock: () => nowMs } });
    try {
      await h.client.append({ records: values(3, 'old') });
      nowMs += 10_000;
      const newer = await h.client.append({ records: values(2, 'new') });
      assert.equal(newer.timestamp, BigInt(nowMs));
      const reader = new StreamReader(h.client.tail({ start: { $case: 'fromTimestamp', value: BigInt(nowMs - 5000) } }));
      assert.deepEqual((await untilHeartbeat(reader)).offsets, [3n, 4n]);
      const future = new StreamReader(h.client.tail({ start: { $case: 'fromTimestamp', value: BigInt(nowMs + 60_000) } }));
      const heartbeat = await future.next();
      assert.deepEqual(heartbeat.records, []);
      assert.equal(heartbeat.nextOffset, 5n, 'after every record: the end');
    } finally {
      await h.close();
    }
  });

  test('batches are bounded by max_records and by bytes', async () => {
    const h = await startServer({ server: { maxTailBatchRecords: 4 } });
    try {
      await h.client.append({ records: values(10) });
      const byCount = new StreamReader(h.client.tail({ start: { $case: 'fromOffset', value: 0n }, maxRecords: 100 }));
      const first = await byCount.next();
      assert.equal(first.records.length, 4, 'capped at the server limit');
      const byBytes = new StreamReader(h.client.tail({ start: { $case: 'fromOffset', value: 0n }, maxBytes: 1 }));
      const single = await byBytes.next();
      assert.equal(single.records.length, 1, 'one record even above max_bytes');
      const all = await untilHeartbeat(byBytes);
      assert.deepEqual(all.offsets, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]);
    } finally {
      await h.close();
    }
  });

  test('sends heartbeats carrying the high watermark while idle', async () => {
    const h = await startServer({ server: { tailHeartbeatIntervalMs: 20 } });
    try {
      await h.client.append({ records: values(1) });
      const opened = once(h.server.tails, 'open') as Promise<[TailStream]>;
      const reader = new StreamReader(h.client.tail({ start: { $case: 'fromOffset', value: 1n } }));
      const [stream] = await opened;
      const caughtUp = await reader.next();
      assert.deepEqual(caughtUp.records, []);
      for (let i = 0; i < 3; i++) {
        const heartbeat = await reader.next();
        assert.deepEqual(heartbeat.records, []);
        assert.equal(heartbeat.highWatermark, 0n);
        assert.equal(heartbeat.nextOffset, 1n);
      }
      assert.ok(stream.counters().heartbeatsSent >= 4);
    } finally {
      await h.close();
    }
  });

  test('a start outside the log ends the stream with OUT_OF_RANGE and details', async () => {
    const h = await startServer({ wal: { segmentSizeBytes: 4096 } });
    try {
      await h.client.append({ records: values(3) });
      const beyond = rpcErrorOf(await new StreamReader(h.client.tail({ start: { $case: 'fromOffset', value: 4n } })).end());
      assert.equal(beyond.code, status.OUT_OF_RANGE);
      assert.equal(beyond.reason, 'WAL_OFFSET_OUT_OF_RANGE');
      assert.equal(beyond.metadata['fromOffset'], '4');
      assert.equal(beyond.metadata['highWatermark'], '2');

      for (let i = 0; i < 20; i++) {
        await h.client.append({ records: [{ value: Buffer.alloc(1000) }] });
      }
      assert.ok((await h.server.wal.deleteSegmentsBefore(10)) > 0);
      const firstOffset = h.server.wal.firstOffset;
      const compacted = rpcErrorOf(await new StreamReader(h.client.tail({ start: { $case: 'fromOffset', value: 0n } })).end());
      assert.equal(compacted.code, status.OUT_OF_RANGE);
      assert.equal(compacted.reason, 'WAL_OFFSET_COMPACTED');
      assert.equal(compacted.metadata['firstOffset'], String(firstOffset));

      const bad = rpcErrorOf(await new StreamReader(h.client.tail({ start: { $case: 'fromOffset', value: 2n ** 62n } })).end());
      assert.equal(bad.code, status.INVALID_ARGUMENT);
      assert.equal(bad.metadata['field'], 'from_offset');
      const falseEnd = rpcErrorOf(await new StreamReader(h.client.tail({ start: { $case: 'fromEnd', value: false } })).end());
      assert.equal(falseEnd.metadata['field'], 'from_end');
    } finally {
      await h.close();
    }
  });

  test('a client cancel ends the stream on the server and frees its slot', async () => {
    const h = await startServer();
    try {
      const opened = once(h.server.tails, 'open') as Promise<[TailStream]>;
      const call = h.client.tail({});
      const reader = new StreamReader(call);
      const [stream] = await opened;
      await reader.next();
      assert.equal((await h.client.getStats()).tailStreamCount, 1);
      const closed = once(h.server.tails, 'close');
      const done = once(stream, 'done');
      call.cancel();
      await Promise.all([closed, done]);
      assert.equal(h.server.tails.size, 0);
      assert.equal((await h.client.getStats()).tailStreamCount, 0);
      const error = await reader.end();
      assert.equal((error as { code?: number }).code, status.CANCELLED);
    } finally {
      await h.close();
    }
  });

  test('more tails than max_tail_streams get RESOURCE_EXHAUSTED WAL_TOO_MANY_STREAMS', async () => {
    const h = await startServer({ server: { maxTailStreams: 1 } });
    try {
      const first = new StreamReader(h.client.tail({}));
      await first.next();
      const second = rpcErrorOf(await new StreamReader(h.client.tail({})).end());
      assert.equal(second.code, status.RESOURCE_EXHAUSTED);
      assert.equal(second.reason, 'WAL_TOO_MANY_STREAMS');
      assert.equal(second.metadata['limit'], '1');
      assert.equal(second.metadata['configKey'], 'max_tail_streams');
      await h.client.append({ records: values(1) });
      assert.deepEqual((await nextBatch(first)).records.map((r) => r.offset), [0n], 'the first tail is unaffected');
    } finally {
      await h.close();
    }
  });

  test('a stuck consumer holds the server to a bounded queue, and resumes losing nothing', async (t) => {
    const recordCount = 4000;
    const maxTailQueueBytes = 256 * 1024;
    const h = await startServer({
      wal: { syncPolicy: 'none' },
      server: { maxTailBatchRecords: 10, maxTailQueueBytes, tailHeartbeatIntervalMs: 60_000 },
    });
    try {
      const opened = once(h.server.tails, 'open') as Promise<[TailStream]>;
      const call = h.client.tail({ start: { $case: 'fromOffset', value: 0n } });
      const [stream] = await opened;
      // Read one message, then stop reading (grpc-js pauses its HTTP/2 stream only after a first
      // read). The pause happens inside the handler so that no further message is emitted unread.
      const firstMessage = await new Promise<TailWalResponse>((resolve) => {
        const onData = (message: TailWalResponse): void => {
          call.pause();
          call.off('data', onData);
          resolve(message);
        };
        call.on('data', onData);
      });
      assert.deepEqual(firstMessage.records, []);

      const value = Buffer.alloc(1024, 7);
      for (let i = 0; i < recordCount / 100; i++) {
        await h.client.append({ records: Array.from({ length: 100 }, () => ({ value })) });
      }
      if (!stream.counters().isWaitingForClient) {
        await once(stream, 'blocked');
      }
      const blocked = stream.counters();
      t.diagnostic(`while stuck: ${JSON.stringify(blocked)}`);
      assert.ok(blocked.isWaitingForClient);
      assert.ok(blocked.recordsSent < recordCount / 4, `sent ${blocked.recordsSent} of ${recordCount} to a client that reads nothing`);
      assert.ok(blocked.maxQueuedMessages <= blocked.queueLimitMessages, `queued ${blocked.maxQueuedMessages} messages`);
      const messageBytes = 10 * (1024 + 64);
      assert.ok(blocked.maxQueuedBytes <= maxTailQueueBytes + messageBytes, `queued ${blocked.maxQueuedBytes} bytes`);

      // The consumer wakes up: it gets every record, in order, exactly once.
      const reader = new StreamReader(call);
      let expected = 0n;
      for (let i = 0; i < recordCount && expected < BigInt(recordCount); i++) {
        const message = await reader.next();
        for (const record of message.records) {
          assert.equal(record.offset, expected);
          expected++;
        }
      }
      assert.equal(expected, BigInt(recordCount));
      const after = stream.counters();
      assert.ok(after.maxQueuedMessages <= after.queueLimitMessages);
      assert.ok(after.maxQueuedBytes <= maxTailQueueBytes + messageBytes);
      call.cancel();
      await reader.end();
    } finally {
      await h.close();
    }
  });

  test('shutdown with a consumer that reads nothing cancels it after the grace period and still closes the log', async () => {
    const h = await startServer({
      wal: { syncPolicy: 'none' },
      server: { maxTailBatchRecords: 10, shutdownGraceMs: 100, tailHeartbeatIntervalMs: 60_000 },
    });
    try {
      const opened = once(h.server.tails, 'open') as Promise<[TailStream]>;
      const call = h.client.tail({});
      const [stream] = await opened;
      await new Promise<void>((resolve) => {
        const onData = (): void => {
          call.pause();
          call.off('data', onData);
          resolve();
        };
        call.on('data', onData);
      });
      const ended = new Promise<unknown>((resolve) => call.on('error', resolve));
      const value = Buffer.alloc(1024);
      for (let i = 0; i < 20; i++) {
        await h.client.append({ records: Array.from({ length: 100 }, () => ({ value })) });
      }
      if (!stream.counters().isWaitingForClient) {
        await once(stream, 'blocked');
      }
      await h.server.stop();
      assert.equal(h.server.status, 'stopped');
      assert.equal(h.server.wal.status, 'closed');
      assert.ok(h.logLines.some((line) => line['msg'] === 'calls still open after the grace period: cancelling them'));
      call.resume();
      assert.ok((await ended) instanceof Error, 'the stuck stream ends with an error');
    } finally {
      await h.close();
    }
  });

  test('shutdown ends open tails with UNAVAILABLE WAL_SHUTTING_DOWN', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: values(2) });
      const readers = [new StreamReader(h.client.tail({})), new StreamReader(h.client.tail({ start: { $case: 'fromEnd', value: true } }))];
      for (const reader of readers) {
        await untilHeartbeat(reader);
      }
      const stopping = h.server.stop();
      for (const reader of readers) {
        const failure = rpcErrorOf(await reader.end());
        assert.equal(failure.code, status.UNAVAILABLE);
        assert.equal(failure.reason, 'WAL_SHUTTING_DOWN');
      }
      await stopping;
      assert.equal(h.server.status, 'stopped');
      await assert.rejects(h.client.getStats(), (error: unknown) => (error as { code?: number }).code === status.UNAVAILABLE);
    } finally {
      await h.close();
    }
  });
});
