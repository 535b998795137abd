import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InterceptingCall, status, type ChannelOptions, type Interceptor } from '@grpc/grpc-js';
import { WalClient, WalClientError, type AppendResult } from '../../src/client/wal-client.js';
import { ReadRequest } from '../../src/gen/wald/v1/read.js';
import { startServer } from './support/harness.js';

function records(count: number, prefix: string): { value: Buffer }[] {
  return Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`${prefix}-${i}`) }));
}

/**
 * A client interceptor that counts the Reads started, with a wait for the next one: grpc-js takes
 * client interceptors with the channel options.
 */
function readCounter(): { readonly options: ChannelOptions; readonly reads: number; nextRead(): Promise<void> } {
  const started: (() => void)[] = [];
  let reads = 0;
  const countReads: Interceptor = (options, nextCall) => {
    if (options.method_definition.path.endsWith('/Read')) {
      reads++;
      for (const wake of started.splice(0)) wake();
    }
    return new InterceptingCall(nextCall(options));
  };
  return {
    options: { interceptors: [countReads] } as ChannelOptions,
    get reads() {
      return reads;
    },
    nextRead: () => new Promise<void>((resolve) => started.push(resolve)),
  };
}

async function rejectionOf(promise: Promise<unknown>): Promise<WalClientError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof WalClientError, `a WalClientError, got ${String(error)}`);
    return error;
  }
  throw new Error('expected a rejection');
}

describe('WalClient', { timeout: 120_000 }, () => {
  test('concurrent appends share messages, and each keeps its own atomic batch and result', async () => {
    const h = await startServer();
    const client = new WalClient(h.address);
    try {
      const calls = 300;
      const sizes = Array.from({ length: calls }, (_, i) => 1 + (i % 5));
      const results = await Promise.all(sizes.map((size, i) => client.append(records(size, `c${i}`))));
      const counters = client.appendCounters();
      assert.ok(counters.sentMessages < calls / 4, `${counters.sentMessages} messages carried ${calls} appends`);
      assert.equal(counters.sentAppends, calls);
      const covered = new Set<number>();
      for (let i = 0; i < calls; i++) {
        const result = results[i]!;
        assert.equal(result.lastOffset - result.firstOffset + 1, sizes[i], `call ${i} got one offset per record`);
        for (let offset = result.firstOffset; offset <= result.lastOffset; offset++) {
          assert.ok(!covered.has(offset), `offset ${offset} given twice`);
          covered.add(offset);
        }
      }
      const total = sizes.reduce((a, b) => a + b, 0);
      assert.equal(covered.size, total);
      const page = await client.read(0, { limit: total });
      assert.equal(page.records.length, total);
      for (let i = 0; i < calls; i++) {
        const { firstOffset, lastOffset, timestamp } = results[i]!;
        const own = page.records.slice(firstOffset, lastOffset + 1);
        assert.deepEqual(
          own.map((r) => r.value.toString()),
          records(sizes[i]!, `c${i}`).map((r) => r.value.toString()),
          `call ${i}'s records are its own, consecutive, in order`,
        );
        assert.ok(own.every((r) => r.timestamp === timestamp));
      }
    } finally {
      await client.close();
      await h.close();
    }
  });

  test("each caller's appends are written in the order it made them", async () => {
    const h = await startServer();
    const client = new WalClient(h.address, { maxAppendsPerMessage: 7, maxInFlightMessages: 3 });
    try {
      const callers = 5;
      const perCaller = 60;
      const byCaller: Promise<AppendResult>[][] = Array.from({ length: callers }, () => []);
      for (let i = 0; i < perCaller; i++) {
        for (let c = 0; c < callers; c++) byCaller[c]!.push(client.append(records(1 + ((i + c) % 3), `p${c}-${i}`)));
      }
      for (let c = 0; c < callers; c++) {
        const offsets = (await Promise.all(byCaller[c]!)).map((r) => r.firstOffset);
        for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i]! > offsets[i - 1]!, `caller ${c}: append ${i} after ${i - 1}`);
      }
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('a failed append does not fail the others of its message', async () => {
    const h = await startServer();
    const client = new WalClient(h.address);
    try {
      const first = client.append(records(2, 'a'));
      const empty = client.append([]);
      const mismatch = client.append(records(1, 'b'), { expectedOffset: 1000 });
      const server = client.append([{ value: Buffer.from('x'), type: 'checkpoint' }]);
      const last = client.append(records(3, 'c'), { sync: true });
      const emptyError = await rejectionOf(empty);
      assert.equal(emptyError.code, status.INVALID_ARGUMENT);
      assert.equal(emptyError.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(emptyError.metadata['field'], 'records');
      const mismatchError = await rejectionOf(mismatch);
      assert.equal(mismatchError.code, status.ABORTED);
      assert.equal(mismatchError.reason, 'WAL_OFFSET_MISMATCH');
      assert.equal((await rejectionOf(server)).reason, 'WAL_INVALID_ARGUMENT');
      assert.deepEqual(await first, { firstOffset: 0, lastOffset: 1, timestamp: (await first).timestamp, duplicate: false });
      const lastResult = await last;
      assert.equal(lastResult.firstOffset, 2);
      assert.equal(lastResult.lastOffset, 4);
      assert.equal(client.appendCounters().sentMessages, 1, 'the five appends went in one message');
      const conditional = await client.append(records(1, 'd'), { expectedOffset: 5 });
      assert.equal(conditional.firstOffset, 5);
      assert.equal((await client.stats()).nextOffset, 6);
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('an append too large for the server is refused alone: the others of the stream it broke are written once, and later ones are refused without breaking it', async () => {
    const h = await startServer();
    const client = new WalClient(h.address);
    try {
      await client.append(records(1, 'warm-up'));
      // One turn: 20 small appends (one message), one over the server's max_receive_message_bytes
      // (alone, it breaks the stream), one more small one.
      const small = Array.from({ length: 20 }, (_, i) => client.append(records(1, `small-${i}`)));
      const big = client.append([{ value: Buffer.alloc(6 * 1024 * 1024, 1) }]);
      const after = client.append(records(1, 'after'));
      const bigError = await rejectionOf(big);
      assert.equal(bigError.code, status.RESOURCE_EXHAUSTED);
      assert.equal(bigError.reason, 'WAL_MESSAGE_TOO_LARGE');
      const results = await Promise.all([...small, after]);
      const page = await client.read(0, { limit: 100 });
      assert.deepEqual(
        page.records.map((r) => r.value.toString()),
        ['warm-up-0', ...Array.from({ length: 20 }, (_, i) => `small-${i}-0`), 'after-0'],
        'every small append written once, in order',
      );
      assert.deepEqual(results.map((r) => r.firstOffset), Array.from({ length: 21 }, (_, i) => 1 + i), 'each answered with its own offset');
      const streams = client.appendCounters().streamsOpened;
      assert.ok(streams >= 2, 'the refusal ended the first stream');
      const again = await rejectionOf(client.append([{ value: Buffer.alloc(6 * 1024 * 1024, 2) }]));
      assert.equal(again.reason, 'WAL_MESSAGE_TOO_LARGE', 'refused by the client, with the limit the server named');
      assert.equal((await client.append(records(1, 'last'))).firstOffset, 22);
      assert.equal(client.appendCounters().streamsOpened, streams, 'without breaking the stream again');
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('expectedEpoch fences appends: a stale epoch is WAL_EPOCH_MISMATCH, writes nothing, and leaves the others of its message alone', async () => {
    const h = await startServer();
    const client = new WalClient(h.address);
    try {
      assert.equal((await client.append(records(1, 'e0'), { expectedEpoch: 0 })).firstOffset, 0, 'epoch 0: a log never promoted');
      await h.server.wal.beginEpoch(5);
      const stale = client.append(records(2, 'stale'), { expectedEpoch: 0 });
      const current = client.append(records(1, 'current'), { expectedEpoch: 5 });
      const unfenced = client.append(records(1, 'unfenced'));
      const staleError = await rejectionOf(stale);
      assert.equal(staleError.code, status.FAILED_PRECONDITION);
      assert.equal(staleError.reason, 'WAL_EPOCH_MISMATCH');
      assert.deepEqual([staleError.metadata['expectedEpoch'], staleError.metadata['epoch']], ['0', '5']);
      assert.equal((await current).firstOffset, 1, 'the refused append took no offset');
      assert.equal((await unfenced).firstOffset, 2);
      const ahead = await rejectionOf(client.append(records(1, 'ahead'), { expectedEpoch: 6 }));
      assert.equal(ahead.reason, 'WAL_EPOCH_MISMATCH');
      assert.deepEqual(
        (await client.read(0, { limit: 10 })).records.map((r) => r.value.toString()),
        ['e0-0', 'current-0', 'unfenced-0'],
      );
      await assert.rejects(client.append(records(1, 'x'), { expectedEpoch: -1 }), RangeError);
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('minReplicas reaches the server: above max_min_replicas it is refused, without followers it times out and the records stay', async () => {
    const h = await startServer({ server: { maxMinReplicas: 2, replication: { minReplicasTimeoutMs: 200 } } });
    const client = new WalClient(h.address);
    try {
      const tooMany = await rejectionOf(client.append(records(1, 'many'), { minReplicas: 3 }));
      assert.equal(tooMany.code, status.INVALID_ARGUMENT);
      assert.equal(tooMany.metadata['field'], 'min_replicas');
      const waited = await rejectionOf(client.append(records(2, 'sync'), { minReplicas: 1 }));
      assert.equal(waited.code, status.DEADLINE_EXCEEDED);
      assert.equal(waited.reason, 'WAL_REPLICAS_TIMEOUT');
      assert.deepEqual((await client.read(0)).records.map((r) => r.value.toString()), ['sync-0', 'sync-1'], 'the records stay in the log');
      assert.equal((await client.append(records(1, 'plain'), { minReplicas: 0 })).firstOffset, 2, '0: no wait');
      await assert.rejects(client.append(records(1, 'x'), { minReplicas: 1.5 }), RangeError);
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('messages in flight never exceed maxInFlightMessages, and every append is still answered', async () => {
    const h = await startServer();
    const client = new WalClient(h.address, { maxInFlightMessages: 2, maxAppendsPerMessage: 4, maxQueuedAppends: 50 });
    try {
      const calls = 400;
      const results = await Promise.all(Array.from({ length: calls }, (_, i) => client.append(records(1, `b${i}`))));
      const counters = client.appendCounters();
      assert.equal(results.length, calls);
      assert.ok(counters.sentMessages >= calls / 4);
      assert.equal(counters.maxInFlightMessagesSeen, 2, 'the window filled up and was never exceeded');
      assert.equal(counters.inFlightMessages, 0);
      assert.equal(counters.queuedAppends, 0);
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('lingerMs gathers appends made over several event-loop turns into one message', async () => {
    const h = await startServer();
    const client = new WalClient(h.address, { lingerMs: 200 });
    try {
      const first = client.append(records(1, 'l0'));
      await new Promise((resolve) => setImmediate(resolve));
      const second = client.append(records(1, 'l1'));
      await Promise.all([first, second]);
      assert.equal(client.appendCounters().sentMessages, 1);
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('maxBatchRecords and maxBatchBytes bound the records and bytes of a message; an append over them goes alone', async () => {
    const h = await startServer();
    try {
      for (const [options, expected] of [[{}, 1], [{ maxBatchRecords: 3 }, 4], [{ maxBatchBytes: 250 }, 6]] as const) {
        const client = new WalClient(h.address, options);
        try {
          await client.append(records(1, 'warm-up'));
          const before = client.appendCounters().sentMessages;
          // Twelve one-record appends of 100 bytes, made in one turn of the event loop.
          const results = await Promise.all(Array.from({ length: 12 }, (_, i) => client.append([{ value: Buffer.alloc(100, i) }])));
          assert.equal(client.appendCounters().sentMessages - before, expected, `messages for 12 appends with ${JSON.stringify(options)}`);
          const offsets = results.map((r) => r.firstOffset);
          assert.deepEqual(offsets, offsets.map((_, i) => offsets[0]! + i), 'in the order made');
          if ('maxBatchRecords' in options) {
            const alone = await client.append(records(5, 'five'));
            assert.equal(alone.lastOffset - alone.firstOffset, 4, 'an append of more records than the bound is sent whole, alone');
          }
        } finally {
          await client.close();
        }
      }
    } finally {
      await h.close();
    }
  });

  test('read, range, get and stats decode what was appended', async () => {
    const h = await startServer();
    const client = new WalClient(h.address);
    try {
      await client.append([{ key: Buffer.from('k'), value: Buffer.from('v1'), headers: { h: Buffer.from('x') } }]);
      await client.append(records(20, 'r'));
      await client.append([{ key: Buffer.from('k'), value: Buffer.from('v2') }]);
      const page = await client.read(0, { limit: 2 });
      assert.equal(page.records.length, 2);
      assert.equal(page.nextOffset, 2);
      assert.equal(page.highWatermark, 21);
      assert.deepEqual(page.records[0]!.headers, { h: Buffer.from('x') });
      assert.deepEqual(page.records[0]!.key, Buffer.from('k'));
      const pages = [];
      for await (const p of client.range(1, 15, { limit: 4 })) pages.push(p);
      assert.deepEqual(
        pages.map((p) => p.records.map((r) => r.offset)),
        [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14]],
      );
      let all = 0;
      for await (const p of client.range(0)) all += p.records.length;
      assert.equal(all, 22, 'range without an end stops at the end of the log');
      const value = await client.get(Buffer.from('k'));
      assert.deepEqual(value?.value, Buffer.from('v2'));
      assert.equal(value?.offset, 21);
      assert.equal(await client.get(Buffer.from('missing')), undefined);
      const stats = await client.stats();
      assert.equal(stats.entryCount, 22);
      assert.equal(stats.highWatermark, 21);
      const compacted = await rejectionOf(client.read(100));
      assert.equal(compacted.code, status.OUT_OF_RANGE);
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('range asks for the next page while the caller holds the current one, and never past its end', async () => {
    const h = await startServer();
    const counter = readCounter();
    const client = new WalClient(h.address, { channelOptions: counter.options });
    try {
      await client.append(records(30, 'p'));
      const offsets: number[][] = [];
      for await (const page of client.range(0, 30, { limit: 10 })) {
        // The caller has not asked for the next page, yet its Read is under way (or done).
        while (counter.reads < offsets.length + 2 && offsets.length < 2) await counter.nextRead();
        offsets.push(page.records.map((r) => r.offset));
      }
      assert.deepEqual(offsets, [0, 1, 2].map((k) => Array.from({ length: 10 }, (_, i) => 10 * k + i)));
      assert.equal(counter.reads, 3, 'no Read beyond toOffset');
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('range keeps readAheadPages Reads under way, and pages that end short of the guess still give every record once', async () => {
    const h = await startServer();
    const counter = readCounter();
    const client = new WalClient(h.address, { channelOptions: counter.options, readAheadPages: 3 });
    try {
      await client.append(records(60, 'a'));
      const pages: number[][] = [];
      for await (const page of client.range(0, 60, { limit: 10 })) {
        // Holding the first page, the caller has three more Reads under way behind it (waited for
        // at most 100 times 50 ms, then the assertion says how many there were).
        for (let i = 0; pages.length === 0 && i < 100 && counter.reads < 4; i++) {
          await Promise.race([counter.nextRead(), new Promise((resolve) => setTimeout(resolve, 50))]);
        }
        if (pages.length === 0) assert.equal(counter.reads, 4);
        pages.push(page.records.map((r) => r.offset));
      }
      assert.deepEqual(pages.flat(), Array.from({ length: 60 }, (_, i) => i));
      assert.equal(counter.reads, 6, 'no Read beyond toOffset');

      // Pages cut short by max_bytes: the guesses follow the pages' real span, nothing is lost or
      // repeated, and no Read is wasted once the span is known (at most the first guesses miss).
      const cut: number[] = [];
      let cutPages = 0;
      const readsBefore = counter.reads;
      for await (const page of client.range(0, 60, { limit: 10, maxBytes: 300 })) {
        assert.ok(page.records.length < 10);
        cut.push(...page.records.map((r) => r.offset));
        cutPages++;
      }
      assert.deepEqual(cut, Array.from({ length: 60 }, (_, i) => i));
      assert.ok(counter.reads - readsBefore <= cutPages + 2, `${counter.reads - readsBefore} Reads for ${cutPages} pages`);

      // Without an end: the guesses past the high watermark fail (OUT_OF_RANGE) or are not made; the range ends cleanly.
      await client.append(records(5, 'b'));
      let all = 0;
      for await (const page of client.range(0, undefined, { limit: 10 })) all += page.records.length;
      assert.equal(all, 65);
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('range asks a guessed page that failed again, once; a second failure reaches the caller', async () => {
    const h = await startServer();
    let reads = 0;
    /** Reads from these offsets fail (each once per entry), with an injected INTERNAL. */
    const failing: bigint[] = [];
    const failReads: Interceptor = (options, nextCall) => {
      if (!options.method_definition.path.endsWith('/Read')) return new InterceptingCall(nextCall(options));
      let fails = false;
      return new InterceptingCall(nextCall(options), {
        start(metadata, _listener, next) {
          next(metadata, {
            onReceiveMetadata: (received, nextMetadata) => nextMetadata(received),
            onReceiveMessage: (message, nextMessage) => nextMessage(message),
            onReceiveStatus: (received, nextStatus) => nextStatus(fails ? { ...received, code: status.INTERNAL, details: 'injected' } : received),
          });
        },
        sendMessage(message, next) {
          reads++;
          const at = failing.indexOf(ReadRequest.decode(message as Buffer).fromOffset);
          if (at >= 0) {
            failing.splice(at, 1);
            fails = true;
          }
          next(message);
        },
      });
    };
    const client = new WalClient(h.address, { channelOptions: { interceptors: [failReads] } as ChannelOptions, readAheadPages: 3 });
    try {
      await client.append(records(40, 'f'));
      failing.push(20n);
      const offsets: number[] = [];
      for await (const page of client.range(0, 40, { limit: 10 })) offsets.push(...page.records.map((r) => r.offset));
      assert.deepEqual(offsets, Array.from({ length: 40 }, (_, i) => i), 'every record once');
      assert.equal(reads, 5, 'four pages and the failed guess asked again');
      assert.equal(failing.length, 0, 'the guess at 20 was asked and failed');

      failing.push(20n, 20n);
      const seen: number[] = [];
      const failure = await (async () => {
        try {
          for await (const page of client.range(0, 40, { limit: 10 })) seen.push(...page.records.map((r) => r.offset));
          return undefined;
        } catch (error) {
          return error;
        }
      })();
      assert.ok(failure instanceof WalClientError, String(failure));
      assert.equal(failure.code, status.INTERNAL);
      assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i), 'the pages before it');
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('range stops at its end over key-compaction gaps, where a page of `limit` records spans more offsets', async () => {
    const h = await startServer({ wal: { segmentSizeBytes: 8192 } });
    const client = new WalClient(h.address);
    try {
      // 400 records over 10 keys: key compaction keeps each key's last write of the rewritten segments.
      for (let i = 0; i < 40; i++) {
        await client.append(Array.from({ length: 10 }, (_, j) => ({ key: Buffer.from(`key-${j}`), value: Buffer.from(`v-${10 * i + j}`.padEnd(60, '.')) })));
      }
      const compacted = await h.client.compact({ aggressive: true, thresholdPercent: 20 });
      assert.ok((compacted.keyCompaction?.segmentsRewritten ?? 0) > 0, 'segments were rewritten');
      const retained = (await client.read(0, { limit: 1000 })).records.map((r) => r.offset);
      assert.ok(retained.length < 400, 'the log has gaps');
      for (const [to, limit] of [[20, undefined], [200, undefined], [200, 7], [retained[3]! + 1, 2]] as const) {
        const seen: number[] = [];
        for await (const page of client.range(0, to, { limit })) {
          seen.push(...page.records.map((r) => r.offset));
          if (page.records.length > 0) assert.equal(page.nextOffset, page.records[page.records.length - 1]!.offset + 1);
        }
        assert.deepEqual(seen, retained.filter((offset) => offset < to), `range(0, ${to}) with limit ${limit}`);
      }
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('tail catches up, follows live appends, reports lag, and ends when its signal aborts', async () => {
    const h = await startServer({ server: { tailHeartbeatIntervalMs: 50 } });
    const client = new WalClient(h.address);
    try {
      await client.append(records(5, 't'));
      const abort = new AbortController();
      const seen: number[] = [];
      let heartbeatLag: number | undefined;
      for await (const event of client.tail(2, { signal: abort.signal })) {
        seen.push(...event.records.map((r) => r.offset));
        if (event.records.length === 0) heartbeatLag = event.lagRecords;
        if (seen.length === 3 && heartbeatLag !== undefined) void client.append(records(2, 'live'));
        if (seen.length === 5) abort.abort();
      }
      assert.deepEqual(seen, [2, 3, 4, 5, 6]);
      assert.equal(heartbeatLag, 0, 'a caught-up tail has no lag');
    } finally {
      await client.close();
      await h.close();
    }
  });

  test('appends after close are refused with CANCELLED', async () => {
    const h = await startServer();
    const client = new WalClient(h.address);
    try {
      await client.append(records(1, 'x'));
      await client.close();
      assert.equal((await rejectionOf(client.append(records(1, 'y')))).code, status.CANCELLED);
    } finally {
      await h.close();
    }
  });
});
