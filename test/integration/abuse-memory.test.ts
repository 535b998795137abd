/**
 * Abusive clients against a real `wald serve` child, with its memory measured from outside (the
 * child's resident set, /proc/<pid>/status): thousands of streams over several connections, many
 * huge batches and oversize messages in flight at once, and hundreds of slowloris sockets. Each
 * abuse gets the documented answer (docs/server.md, "Limits"), the server keeps serving a normal
 * client meanwhile, and the child's RSS stays under a bound stated with its reasons. The limits
 * are set low so that they are hit within seconds. tail-memory.test.ts bounds tails that never
 * read; connection-limits.test.ts checks each limit's status alone.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { status, type ClientDuplexStream, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { AppendRequest, AppendStreamRequest, type AppendResponse, type AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { TailWalRequest, type TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import type { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import { memoryOf, mib, MiB, openFdsOf } from '../support/child-memory.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rawClient, startServe, unary, type ServeChild } from '../support/wald-serve-child.js';
import { rpcErrorOf, type RpcErrorView } from './support/harness.js';

/** Polls of a condition, 25 ms apart: a bound on every wait (20 s), never an assertion on time. */
const MAX_POLLS = 800;

/** Waits until `condition()` holds, at most {@link MAX_POLLS} polls; fails with `what()` otherwise. */
async function pollUntil(what: () => string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    if (await condition()) return;
    await sleep(25);
  }
  assert.fail(`gave up waiting: ${what()}`);
}

/** A `wald serve` child with `args`, its pid, and a normal client of it on a connection of its own. */
interface Abused {
  readonly child: ServeChild;
  readonly address: string;
  readonly pid: number;
  readonly client: WalServiceClient;
  stats(): Promise<GetStatsResponse>;
  /** One small Append by the normal client: the server still serves. */
  appendOne(): Promise<AppendResponse>;
}

/** Runs `body` against a child started with `args`, then stops it (exit code 0) and removes its data. */
async function withChild(args: readonly string[], body: (abused: Abused) => Promise<void>): Promise<void> {
  const temp = makeTempDir('wald-abuse-');
  const child = await startServe(join(temp.dir, 'data'), ['--sync-policy', 'none', '--tail-heartbeat-interval-ms', '60000', ...args]);
  const client = rawClient(child.address);
  try {
    await body({
      child,
      address: child.address,
      pid: child.output.child.pid!,
      client,
      stats: () => unary((callback) => client.getStats({}, callback)),
      appendOne: () => unary((callback) => client.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('normal') }] }), callback)),
    });
  } finally {
    client.close();
    const run = await child.stop();
    temp.remove();
    assert.equal(run.code, 0, run.stderr);
  }
}

/** The status and ErrorInfo of a failed call, or a failure naming `what` when it did not fail so. */
function failure(error: unknown, what: string): RpcErrorView {
  assert.ok(error !== undefined, `${what} was accepted`);
  return rpcErrorOf(error);
}

describe('abusive clients of a wald serve child', { timeout: 120_000 }, () => {
  test('2000 TailWal and AppendStream calls over 4 connections: those past max_tail_streams / max_append_streams get RESOURCE_EXHAUSTED WAL_TOO_MANY_STREAMS, a normal client is served, RSS stays bounded', async (t) => {
    if (!existsSync('/proc/self/status')) {
      t.skip('needs /proc (Linux) to read the child RSS');
      return;
    }
    /** `max_tail_streams` and `max_append_streams`; `WALD_TEST_ABUSE_STREAM_LIMIT=100000` replays without them. */
    const streamLimit = Number(process.env['WALD_TEST_ABUSE_STREAM_LIMIT'] ?? 200);
    const connections = 4;
    const perConnection = 250; // of each kind: 4 x 250 tails and 4 x 250 append streams
    const opened = connections * perConnection;
    /**
     * What the child may grow by while 2000 calls open and 2 x streamLimit stay open. Without the
     * limits (`WALD_TEST_ABUSE_STREAM_LIMIT=100000`) all 2000 run and the child grows by about
     * 340 MiB, some 170 KiB per open stream (grpc-js's call and HTTP/2 stream state and buffers, a
     * tail's reader and queue, an append session, V8 heap growth); 400 open streams are thus worth
     * about 70 MiB, and refused calls cost only garbage, collected later. Measured here with the
     * limits: 47-50 MiB. 100 MiB leaves room for a busier machine's slower GC, and the unlimited
     * server fails it more than three times over.
     */
    const maxGrowthBytes = 100 * MiB;
    await withChild([
      '--max-tail-streams', String(streamLimit),
      '--max-append-streams', String(streamLimit),
      '--max-concurrent-streams-per-connection', String(2 * perConnection + 10),
    ], async ({ address, pid, stats, appendOne }) => {
      await appendOne(); // offset 0: a tail the server admits from offset 0 gets it at once
      const before = memoryOf(pid);
      let maxSampledRssBytes = before.rssBytes;
      const clients = Array.from({ length: connections }, () => rawClient(address));
      const tails: ClientReadableStream<TailWalResponse>[] = [];
      const appendStreams: ClientDuplexStream<AppendStreamRequest, AppendStreamResponse>[] = [];
      const tailErrors: ServiceError[] = [];
      const appendErrors: ServiceError[] = [];
      let tailsServed = 0;
      let appendsAnswered = 0;
      try {
        for (const client of clients) {
          for (let i = 0; i < perConnection; i++) {
            const tail = client.tailWal(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n } }));
            let isServed = false;
            tail.on('data', () => {
              if (!isServed) tailsServed++;
              isServed = true;
            });
            tail.on('error', (error: ServiceError) => tailErrors.push(error));
            tails.push(tail);
            const stream = client.appendStream();
            stream.on('data', (response: AppendStreamResponse) => {
              if (response.result?.$case === 'appended') appendsAnswered++;
            });
            stream.on('error', (error: ServiceError) => appendErrors.push(error));
            stream.write(AppendStreamRequest.fromPartial({ requestId: 1n, append: { records: [{ value: Buffer.from('stream') }] } }));
            appendStreams.push(stream);
          }
        }
        // Every call is either served (a tail got its record, an append stream its answer) or refused.
        await pollUntil(
          () => `every call answered: tails ${tailsServed} served + ${tailErrors.length} refused, append streams ${appendsAnswered} + ${appendErrors.length}, of ${opened} each`,
          () => {
            maxSampledRssBytes = Math.max(maxSampledRssBytes, memoryOf(pid).rssBytes);
            return tailsServed + tailErrors.length === opened && appendsAnswered + appendErrors.length === opened;
          },
        );
        // A normal client is served with 2 x streamLimit calls open and 1600 refused.
        await appendOne();
        const during = await stats();
        const after = memoryOf(pid);
        const growthBytes = Math.max(after.peakRssBytes, maxSampledRssBytes) - before.rssBytes;
        t.diagnostic(`RSS before ${mib(before.rssBytes)}, max sampled ${mib(maxSampledRssBytes)}, peak ${mib(after.peakRssBytes)}; growth ${mib(growthBytes)} (bound ${mib(maxGrowthBytes)})`);
        assert.ok(growthBytes < maxGrowthBytes, `the child grew by ${mib(growthBytes)}, more than ${mib(maxGrowthBytes)}`);
        assert.equal(tailsServed, streamLimit, 'tails the server ran');
        assert.equal(appendsAnswered, streamLimit, 'append streams the server ran');
        assert.equal(during.tailStreamCount, streamLimit);
        assert.equal(during.entryCount, BigInt(1 + streamLimit + 1), 'the seed record, one per admitted append stream, the normal append: nothing of a refused stream');
        for (const [errors, configKey] of [[tailErrors, 'max_tail_streams'], [appendErrors, 'max_append_streams']] as const) {
          assert.equal(errors.length, opened - streamLimit, `calls refused for ${configKey}`);
          for (const error of errors) {
            const refused = failure(error, configKey);
            assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
            assert.equal(refused.reason, 'WAL_TOO_MANY_STREAMS');
            assert.equal(refused.metadata['configKey'], configKey);
            assert.equal(refused.metadata['limit'], String(streamLimit));
          }
        }
      } finally {
        for (const tail of tails) tail.cancel();
        for (const stream of appendStreams) stream.cancel();
        for (const client of clients) client.close();
      }
      await pollUntil(() => 'every tail ended', async () => (await stats()).tailStreamCount === 0);
    });
  });

  test('many huge batches and oversize messages in flight over 4 connections: each over a limit gets its status naming the key, nothing of it is written, RSS stays bounded', async (t) => {
    if (!existsSync('/proc/self/status')) {
      t.skip('needs /proc (Linux) to read the child RSS');
      return;
    }
    const KiB = 1024;
    /** `max_receive_message_bytes`; `WALD_TEST_ABUSE_RECEIVE_LIMIT=67108864` replays with a far larger one. */
    const receiveLimit = Number(process.env['WALD_TEST_ABUSE_RECEIVE_LIMIT'] ?? MiB);
    const connections = 4;
    const rounds = 6;
    /** Of each kind of Append, per connection and round. */
    const perKind = 8;
    /** AppendStreams per connection and round, each: under, over max_batch_bytes, under, under, then one oversize message. */
    const streamsPerConnection = 2;
    const value = Buffer.alloc(60 * KiB, 7);
    /** 240 KiB: just under max_batch_bytes (256 KiB) and max_receive_message_bytes. */
    const under = Array.from({ length: 4 }, () => ({ value }));
    /** 300 KiB: over max_batch_bytes, under max_receive_message_bytes. */
    const overBatchBytes = Array.from({ length: 5 }, () => ({ value }));
    /** 101 records: over max_batch_records. */
    const overBatchRecords = Array.from({ length: 101 }, () => ({ value: Buffer.from('r') }));
    /** 18 x 60 KiB, about 1.05 MiB: over max_receive_message_bytes. */
    const overMessage = Array.from({ length: 18 }, () => ({ value }));
    /**
     * What the child may grow by. A round sends about 70 MiB at once (32 oversize messages of
     * 1.05 MiB, 32 batches of 300 KiB and 32 of 240 KiB, 8 streams of 2 MiB), which the child holds
     * a round at a time: HTTP/2 and gRPC receive buffers, decoded requests, the 240 KiB batches
     * framed and written (copies of each), V8 heap growth before GC. Measured here: 131-136 MiB
     * over 3 rounds and 137-152 MiB over 6, so it does not grow with the rounds. 220 MiB is one
     * round's cost with room for a busier machine's slower GC, and about half of the 420 MiB the six
     * rounds send: a server that kept what it was sent, refused or not, would not pass it.
     */
    const maxGrowthBytes = 220 * MiB;
    await withChild([
      '--max-receive-message-bytes', String(receiveLimit),
      '--max-batch-bytes', String(256 * KiB),
      '--max-record-bytes', String(64 * KiB),
      '--max-batch-records', '100',
    ], async ({ address, pid, stats, appendOne }) => {
      const before = memoryOf(pid);
      let maxSampledRssBytes = before.rssBytes;
      const sample = (): void => {
        maxSampledRssBytes = Math.max(maxSampledRssBytes, memoryOf(pid).rssBytes);
      };
      const clients = Array.from({ length: connections }, () => rawClient(address));
      const refusals: { what: string; error: unknown }[] = [];
      let writtenRecords = 1; // the normal client's append of each round, and the one at the end
      try {
        for (let round = 0; round < rounds; round++) {
          const calls: Promise<void>[] = [];
          for (const client of clients) {
            const append = (records: { value: Buffer }[]): Promise<AppendResponse> => unary((callback) => client.append(AppendRequest.fromPartial({ records }), callback));
            for (let i = 0; i < perKind; i++) {
              calls.push(append(under).then(() => void (writtenRecords += under.length)));
              for (const [what, records] of [['oversize Append', overMessage], ['Append over max_batch_bytes', overBatchBytes], ['Append over max_batch_records', overBatchRecords]] as const) {
                calls.push(append(records).then(() => void refusals.push({ what, error: undefined }), (error: unknown) => void refusals.push({ what, error })));
              }
            }
            for (let i = 0; i < streamsPerConnection; i++) calls.push(abuseAppendStream(client));
          }
          calls.push(appendOne().then(() => void writtenRecords++));
          const sampling = setInterval(sample, 20);
          try {
            await Promise.all(calls);
          } finally {
            clearInterval(sampling);
          }
          sample();
        }
        await appendOne();
        const after = memoryOf(pid);
        const growthBytes = Math.max(after.peakRssBytes, maxSampledRssBytes) - before.rssBytes;
        t.diagnostic(`RSS before ${mib(before.rssBytes)}, max sampled ${mib(maxSampledRssBytes)}, peak ${mib(after.peakRssBytes)}; growth ${mib(growthBytes)} (bound ${mib(maxGrowthBytes)})`);
        assert.ok(growthBytes < maxGrowthBytes, `the child grew by ${mib(growthBytes)}, more than ${mib(maxGrowthBytes)}`);
        assert.equal(refusals.length, rounds * connections * (perKind * 3 + streamsPerConnection));
        for (const { what, error } of refusals) {
          const refused = failure(error, what);
          if (what === 'oversize Append' || what === 'oversize AppendStream message') {
            assert.equal(refused.code, status.RESOURCE_EXHAUSTED, what);
            assert.equal(refused.reason, 'WAL_MESSAGE_TOO_LARGE', what);
            assert.equal(refused.metadata['configKey'], 'max_receive_message_bytes', what);
            assert.equal(refused.metadata['limit'], String(receiveLimit), what);
          } else {
            assert.equal(refused.code, status.INVALID_ARGUMENT, what);
            assert.equal(refused.reason, 'WAL_BATCH_TOO_LARGE', what);
            assert.equal(refused.metadata['configKey'], what.endsWith('max_batch_records') ? 'max_batch_records' : 'max_batch_bytes', what);
          }
        }
        assert.equal((await stats()).entryCount, BigInt(writtenRecords), 'the batches under the limits and the normal appends, nothing over a limit');
      } finally {
        for (const client of clients) client.close();
      }

      /**
       * One AppendStream: an append under the limits, one over max_batch_bytes (answered with an
       * `error`, the stream goes on), two more under, then one message over max_receive_message_bytes,
       * which ends the stream. Each append is awaited, so that the answers are known before the end.
       */
      async function abuseAppendStream(client: WalServiceClient): Promise<void> {
        const stream = client.appendStream();
        const answers: AppendStreamResponse[] = [];
        let waiting: (() => void) | undefined;
        stream.on('data', (response: AppendStreamResponse) => {
          answers.push(response);
          waiting?.();
        });
        const ended = new Promise<unknown>((resolve) => stream.on('error', resolve).on('end', () => resolve(undefined)));
        const send = async (requestId: bigint, records: { value: Buffer }[]): Promise<AppendStreamResponse> => {
          const answered = new Promise<void>((resolve) => (waiting = resolve));
          stream.write(AppendStreamRequest.fromPartial({ requestId, append: { records } }));
          await Promise.race([answered, ended]);
          const answer = answers.find((response) => response.requestId === requestId);
          assert.ok(answer !== undefined, `append ${requestId} of the stream was answered`);
          return answer;
        };
        for (const [requestId, records] of [[1n, under], [2n, overBatchBytes], [3n, under], [4n, under]] as const) {
          const answer = await send(requestId, records);
          if (records === under) {
            assert.equal(answer.result?.$case, 'appended', `append ${requestId}`);
            writtenRecords += records.length;
          } else {
            assert.equal(answer.result?.$case, 'error', 'the append over max_batch_bytes is answered, the stream goes on');
            assert.equal(answer.result.value.code, status.INVALID_ARGUMENT);
            assert.match(answer.result.value.message, /max_batch_bytes/);
          }
        }
        // Ends the stream; were it taken as an append, its answer (of any kind) stands for "accepted".
        const answered = new Promise<string>((resolve) => (waiting = () => resolve('answered')));
        stream.write(AppendStreamRequest.fromPartial({ requestId: 5n, append: { records: overMessage } }));
        const outcome = await Promise.race([ended, answered]);
        if (outcome === 'answered') stream.cancel();
        refusals.push({ what: 'oversize AppendStream message', error: outcome === 'answered' ? undefined : outcome });
      }
    });
  });

  test('300 slowloris sockets (half an HTTP/2 preface, or nothing) are closed after max_connection_idle_ms; a normal client is served meanwhile; RSS and open files stay bounded', async (t) => {
    if (!existsSync('/proc/self/status')) {
      t.skip('needs /proc (Linux) to read the child RSS');
      return;
    }
    const sockets = 300;
    /** `max_connection_idle_ms`; `WALD_TEST_ABUSE_IDLE_MS=0` replays with the bound off (the sockets then stay open and the test fails). */
    const idleMs = process.env['WALD_TEST_ABUSE_IDLE_MS'] ?? '500';
    /**
     * What the child may grow by with 300 sockets open: each is an accepted socket and a Node
     * HTTP/2 session (nghttp2's state and its buffers, about 16 KiB). Measured here: 4-5 MiB.
     * 32 MiB leaves room for a busier machine's slower GC, and is about 100 KiB a socket.
     */
    const maxGrowthBytes = 32 * MiB;
    await withChild(['--max-connection-idle-ms', idleMs], async ({ child, pid, stats, appendOne }) => {
      const port = child.port;
      const before = memoryOf(pid);
      const fdsBefore = openFdsOf(pid);
      const open: Socket[] = [];
      let closed = 0;
      try {
        await Promise.all(Array.from({ length: sockets }, async (_, i) => {
          const socket = connectTcp({ host: '127.0.0.1', port });
          open.push(socket);
          socket.on('error', () => {});
          socket.on('close', () => closed++);
          socket.resume(); // reads and drops what the server sends (its SETTINGS, then GOAWAY), so that its end is seen
          await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
          if (i % 2 === 0) socket.write('PRI * HTTP/2.0\r\n'); // 16 of the preface's 24 bytes, and never the rest
        }));
        // The server holds them all (a descriptor each) and serves a normal client meanwhile.
        await pollUntil(() => `the child holds the ${sockets} sockets: ${openFdsOf(pid) - fdsBefore} more descriptors`, () => openFdsOf(pid) >= fdsBefore + sockets);
        const held = memoryOf(pid);
        await appendOne();
        assert.equal((await stats()).entryCount, 1n);
        // Bounded by the polls (20 s, forty times the idle bound); without the bound they stay open.
        await pollUntil(() => `every slowloris socket closed by the server: ${closed} of ${sockets}`, () => closed === sockets);
        await pollUntil(() => `the child let go of the sockets: ${openFdsOf(pid) - fdsBefore} descriptors more than before`, () => openFdsOf(pid) <= fdsBefore + 2);
        await appendOne();
        assert.equal((await stats()).entryCount, 2n, 'the server goes on serving');
        const after = memoryOf(pid);
        const growthBytes = Math.max(after.peakRssBytes, held.rssBytes) - before.rssBytes;
        t.diagnostic(`RSS before ${mib(before.rssBytes)}, with the sockets open ${mib(held.rssBytes)}, peak ${mib(after.peakRssBytes)}; growth ${mib(growthBytes)} (bound ${mib(maxGrowthBytes)})`);
        assert.ok(growthBytes < maxGrowthBytes, `the child grew by ${mib(growthBytes)}, more than ${mib(maxGrowthBytes)}`);
      } finally {
        for (const socket of open) socket.destroy();
      }
    });
  });
});
