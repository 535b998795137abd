/**
 * The connection limits of a real `wald serve` child (`max_concurrent_streams_per_connection`,
 * `max_connection_idle_ms`, `max_connection_age_ms` with its grace) and its answers to oversize requests, seen from outside: through the
 * server's own stream counters (`GetStats`) on a connection of its own, and raw sockets. The memory
 * of a tail that never reads is measured on a child by test/integration/tail-memory.test.ts.
 */
import assert from 'node:assert/strict';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { Client, credentials, Metadata, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { AppendRequest, AppendStreamRequest, type AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { TailWalRequest, type TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import { ChildOutput, parseLog, spawnWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rpcErrorOf } from './support/harness.js';

/** Polls of a condition, 25 ms apart: a bound on every wait (10 s), never an assertion on time. */
const MAX_POLLS = 400;

/** A `wald serve` child on 127.0.0.1:0 and a client of it on a connection of its own. */
interface Child {
  readonly address: string;
  readonly client: WalServiceClient;
  /** Makes one more client, on one more connection. */
  connect(): WalServiceClient;
  stats(): Promise<GetStatsResponse>;
  stop(): Promise<void>;
}

async function startChild(extraArgs: readonly string[]): Promise<Child> {
  const temp = makeTempDir('wald-connection-limits-');
  const child = spawnWald([
    'serve',
    '--listen', '127.0.0.1:0',
    '--data-dir', join(temp.dir, 'data'),
    '--sync-policy', 'none',
    '--no-preallocate',
    '--tail-heartbeat-interval-ms', '60000',
    '--shutdown-grace-ms', '100',
    ...extraArgs,
  ]);
  const output = new ChildOutput(child);
  child.stdin.end();
  const clients: WalServiceClient[] = [];
  const stop = async (): Promise<void> => {
    for (const client of clients) client.close();
    child.kill('SIGTERM');
    const run = await output.exited;
    temp.remove();
    assert.equal(run.code, 0, run.stderr);
  };
  try {
    const address = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'))?.address;
    assert.equal(typeof address, 'string');
    const connect = (): WalServiceClient => {
      // A subchannel pool of its own: grpc-js would otherwise share one connection between clients.
      const client = new WalServiceClient(address as string, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
      clients.push(client);
      return client;
    };
    const client = connect();
    const stats = (): Promise<GetStatsResponse> => unary((callback) => client.getStats({}, callback));
    return { address: address as string, client, connect, stats, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

function unary<T>(start: (callback: (error: Error | null, response: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, response) => (error === null ? resolve(response) : reject(error))));
}

/** Waits until `condition()` holds, at most {@link MAX_POLLS} polls; fails with `what` otherwise. */
async function pollUntil(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    if (await condition()) return;
    await sleep(25);
  }
  assert.fail(`gave up waiting: ${what}`);
}

describe('connection limits of a wald serve child', { timeout: 120_000 }, () => {
  test('calls beyond max_concurrent_streams_per_connection wait in the client until one ends; other connections go on', async () => {
    const perConnection = 4;
    const opened = perConnection + 3;
    const child = await startChild(['--max-concurrent-streams-per-connection', String(perConnection)]);
    try {
      await unary((callback) => child.client.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('r') }] }), callback));
      // Every tail from offset 0 gets the record at once if the server runs it.
      const tailer = child.connect();
      const started = new Set<number>();
      const tails: ClientReadableStream<TailWalResponse>[] = [];
      for (let i = 0; i < opened; i++) {
        const tail = tailer.tailWal(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n } }));
        tail.on('data', () => started.add(i));
        tail.on('error', () => {});
        tails.push(tail);
      }
      await pollUntil(`${perConnection} tails started`, () => started.size >= perConnection);
      // The server runs exactly the limit; the others are held by the client, not refused. Sampled a
      // few times, as the extra tails would show up here within milliseconds were they sent.
      for (let sample = 0; sample < 10; sample++) {
        assert.equal((await child.stats()).tailStreamCount, perConnection, 'tails the server runs');
        assert.equal(started.size, perConnection, 'tails that got their record');
        await sleep(50);
      }
      // One ends: one waiting tail takes its place, still no more than the limit at once.
      const first = [...started][0]!;
      tails[first]!.cancel();
      await pollUntil('a waiting tail started', () => started.size === perConnection + 1);
      await pollUntil('the server runs the limit again', async () => (await child.stats()).tailStreamCount === perConnection);
      for (const tail of tails) tail.cancel();
      await pollUntil('every tail ended', async () => (await child.stats()).tailStreamCount === 0);
    } finally {
      await child.stop();
    }
  });

  test('a socket that sends half an HTTP/2 preface is closed after max_connection_idle_ms, and the server goes on serving', async () => {
    const child = await startChild(['--max-connection-idle-ms', '500']);
    let socket: Socket | undefined;
    try {
      const [host, port] = [child.address.slice(0, child.address.lastIndexOf(':')), Number(child.address.slice(child.address.lastIndexOf(':') + 1))];
      socket = connectTcp({ host, port });
      let closed = false;
      socket.on('close', () => (closed = true));
      socket.on('error', () => {});
      socket.resume(); // reads and drops what the server sends (its SETTINGS, then GOAWAY), so that its end is seen
      await new Promise<void>((resolve, reject) => socket!.once('connect', resolve).once('error', reject));
      socket.write('PRI * HTTP/2.0\r\n'); // of the 24 bytes of the client preface, and never the rest
      assert.equal((await child.stats()).entryCount, 0n, 'another client is served meanwhile');
      // Bounded at 10 s, twenty times the idle bound; without the bound the socket stays open.
      await pollUntil('the half-open socket was closed', () => closed);
      await unary((callback) => child.client.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('r') }] }), callback));
      assert.equal((await child.stats()).entryCount, 1n);
    } finally {
      socket?.destroy();
      await child.stop();
    }
  });

  test('a connection past max_connection_age_ms gets GOAWAY: its tail is cut after the grace, a tail without a grace goes on, new calls get a new connection', async () => {
    for (const { grace, isCut } of [{ grace: '300', isCut: true }, { grace: '0', isCut: false }]) {
      const child = await startChild(['--max-connection-age-ms', '500', '--max-connection-age-grace-ms', grace]);
      try {
        const client = child.connect();
        await unary((callback) => client.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('first') }] }), callback));
        const values: string[] = [];
        let failure: ServiceError | undefined;
        const tail = client.tailWal(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n } }));
        tail.on('data', (message: TailWalResponse) => values.push(...message.records.map((record) => record.value.toString())));
        tail.on('error', (error: ServiceError) => (failure = error));
        await pollUntil('the tail got the first record', () => values.length === 1);
        if (isCut) {
          // Age 0.5 s + grace 0.3 s; bounded at 10 s by the polls.
          await pollUntil('the aged connection was closed under the tail', () => failure !== undefined);
          assert.notEqual(failure!.code, status.OK);
        } else {
          // Three times the age: the connection got its GOAWAY long ago, and the tail is still served on it.
          await sleep(1500);
          assert.equal(failure, undefined, 'the tail goes on without a grace');
          await unary((callback) => child.client.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('second') }] }), callback));
          await pollUntil('the tail got the record appended later', () => values.includes('second'));
          tail.cancel();
        }
        // Either way the client's next call is served, on a new connection.
        assert.equal((await unary<GetStatsResponse>((callback) => client.getStats({}, callback))).entryCount, isCut ? 1n : 2n);
      } finally {
        await child.stop();
      }
    }
  });

  test('a huge batch gets INVALID_ARGUMENT naming its limit, an oversize Append or AppendStream message RESOURCE_EXHAUSTED naming max_receive_message_bytes, and the server goes on', async () => {
    const child = await startChild([
      '--max-batch-records', '10',
      '--max-record-bytes', '65536',
      '--max-batch-bytes', '65536',
      '--max-receive-message-bytes', String(512 * 1024),
    ]);
    try {
      const append = (records: { value: Buffer }[]): Promise<unknown> =>
        unary((callback) => child.client.append(AppendRequest.fromPartial({ records }), callback));
      const huge = rpcErrorOf(await append(Array.from({ length: 11 }, () => ({ value: Buffer.from('r') }))).then(() => assert.fail('accepted'), (e: unknown) => e));
      assert.equal(huge.code, status.INVALID_ARGUMENT);
      assert.equal(huge.reason, 'WAL_BATCH_TOO_LARGE');
      assert.equal(huge.metadata['limit'], '10');
      assert.equal(huge.metadata['field'], 'records');
      assert.equal(huge.metadata['configKey'], 'max_batch_records', 'the error names the config key');
      assert.match(huge.message, /max_batch_records/);
      // Refused by grpc-js before any handler of ours; wald's interceptor adds the ErrorInfo.
      const assertMessageTooLarge = (error: unknown, what: string): void => {
        const oversize = rpcErrorOf(error);
        assert.equal(oversize.code, status.RESOURCE_EXHAUSTED, what);
        assert.equal(oversize.reason, 'WAL_MESSAGE_TOO_LARGE', what);
        assert.equal(oversize.domain, 'wald.dev', what);
        assert.equal(oversize.metadata['configKey'], 'max_receive_message_bytes', `${what}: the error names the config key`);
        assert.equal(oversize.metadata['limit'], String(512 * 1024), what);
        assert.ok(Number(oversize.metadata['size']) > 512 * 1024, `${what}: the message's size`);
        assert.match(oversize.message, /max_receive_message_bytes \(524288\)/, what);
      };
      assertMessageTooLarge(await append([{ value: Buffer.alloc(600 * 1024) }]).then(() => assert.fail('accepted'), (e: unknown) => e), 'Append');
      // One AppendStream message over the limit: the stream ends with the same status, after the
      // append sent before it was answered.
      const stream = child.client.appendStream();
      const answers: AppendStreamResponse[] = [];
      stream.on('data', (response: AppendStreamResponse) => answers.push(response));
      const ended = new Promise<unknown>((resolve) => stream.on('error', resolve).on('end', () => resolve(undefined)));
      stream.write(AppendStreamRequest.fromPartial({ requestId: 1n, append: { records: [{ value: Buffer.from('small') }] } }));
      await pollUntil('the small append was answered', () => answers.length === 1);
      stream.write(AppendStreamRequest.fromPartial({ requestId: 2n, appends: [{ records: [{ value: Buffer.alloc(300 * 1024) }] }, { records: [{ value: Buffer.alloc(300 * 1024) }] }] }));
      assertMessageTooLarge(await ended, 'AppendStream');
      assert.equal(answers.length, 1);
      assert.equal(answers[0]!.result?.$case, 'appended');
      assert.equal((await child.stats()).entryCount, 1n, 'only the small append was written');
      await append([{ value: Buffer.from('r') }]);
      assert.equal((await child.stats()).entryCount, 2n, 'the server goes on');
    } finally {
      await child.stop();
    }
  });
  test('a request message that does not decode gets INVALID_ARGUMENT naming the request, on Append and AppendStream, and the server goes on', async () => {
    const child = await startChild([]);
    // A client that sends raw bytes: 0xff 0xff ... is a field header whose varint never ends.
    const raw = new Client(child.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    const identity = (bytes: Buffer): Buffer => bytes;
    try {
      const assertUndecodable = (error: unknown, what: string): void => {
        const failure = rpcErrorOf(error);
        assert.equal(failure.code, status.INVALID_ARGUMENT, what);
        assert.equal(failure.reason, 'WAL_INVALID_ARGUMENT', what);
        assert.equal(failure.metadata['field'], 'request', what);
      };
      const unaryFailure = await new Promise<unknown>((resolve) => {
        raw.makeUnaryRequest('/wald.v1.WalService/Append', identity, identity, garbage, new Metadata(), {}, (error) => resolve(error ?? assert.fail('accepted')));
      });
      assertUndecodable(unaryFailure, 'Append');
      const stream = raw.makeBidiStreamRequest('/wald.v1.WalService/AppendStream', identity, identity, new Metadata(), {});
      const streamFailure = new Promise<unknown>((resolve) => stream.on('error', resolve).on('end', () => resolve(undefined)));
      stream.on('data', () => {});
      stream.write(garbage);
      assertUndecodable(await streamFailure, 'AppendStream');
      assert.equal((await child.stats()).entryCount, 0n, 'nothing was written');
      await unary((callback) => child.client.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('r') }] }), callback));
      assert.equal((await child.stats()).entryCount, 1n, 'the server goes on');
    } finally {
      raw.close();
      await child.stop();
    }
  });
  test('a request protobuf forbids (a field-0 tag, a stray end-group tag, invalid UTF-8 in a string) is refused whole, on unary RPCs and AppendStream', async () => {
    const child = await startChild([]);
    const raw = new Client(child.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const identity = (bytes: Buffer): Buffer => bytes;
    const unaryOutcome = (path: string, hex: string): Promise<unknown> =>
      new Promise((resolve) => raw.makeUnaryRequest(path, identity, identity, Buffer.from(hex, 'hex'), new Metadata(), {}, (error) => resolve(error ?? 'accepted')));
    const assertRefused = (outcome: unknown, what: string): void => {
      const failure = rpcErrorOf(outcome);
      assert.deepEqual([failure.code, failure.reason, failure.metadata['field']], [status.INVALID_ARGUMENT, 'WAL_INVALID_ARGUMENT', 'request'], what);
    };
    // An AppendRequest of one record (value "A"), producer id 0xff (not UTF-8), sequence 1.
    const badProducer = '0a03120141' + '1a01ff' + '2001';
    try {
      // Records, then a 0x00 (or an end-group 0x0c), then expected_offset 999: the lenient decoder
      // stopped at the bad tag and wrote the append unconditionally.
      assertRefused(await unaryOutcome('/wald.v1.WalService/Append', '0a031201620030e707'), 'Append with a field-0 tag');
      assertRefused(await unaryOutcome('/wald.v1.WalService/Append', '0a031201630c30e707'), 'Append with a stray end-group tag');
      // 0x00, then dry_run true: the lenient decoder ran a real compaction.
      assertRefused(await unaryOutcome('/wald.v1.WalService/Compact', '001001'), 'Compact with a field-0 tag');
      assertRefused(await unaryOutcome('/wald.v1.WalService/Append', badProducer), 'Append with an invalid UTF-8 producer id');
      const stream = raw.makeBidiStreamRequest('/wald.v1.WalService/AppendStream', identity, identity, new Metadata(), {});
      const streamFailure = new Promise<unknown>((resolve) => stream.on('error', resolve).on('end', () => resolve(undefined)));
      stream.on('data', () => {});
      const body = Buffer.from(badProducer, 'hex');
      stream.write(Buffer.concat([Buffer.from([0x08, 0x01, 0x12, body.length]), body]));
      assertRefused(await streamFailure, 'AppendStream with an invalid UTF-8 producer id');
      const stats = await child.stats();
      assert.equal(stats.entryCount, 0n, 'nothing was written, no checkpoint appended');
      assert.equal(stats.snapshotCount, 0, 'no compaction ran');
    } finally {
      raw.close();
      await child.stop();
    }
  });
});
