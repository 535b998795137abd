/**
 * The `compare` part of `npm run bench`: the loads of issue 12's table against wald through
 * `WalClient` (wald/client), against wald through the generated grpc-js stubs, and against Redis
 * Streams through ioredis (Redis 7, `appendonly yes`, `appendfsync always`), in one run, each server
 * in its own process on 127.0.0.1, 100-byte records. `redis-server` is installed with apt-get when
 * absent (as root); when that is not possible, or with `WALD_BENCH_COMPARE_REDIS=0`, the Redis rows
 * are left out and the stub rows are the baseline. docs/benchmarks.md holds the figures.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { WalClient } from '../src/client/wal-client.js';
import { ReadRequest, type ReadResponse } from '../src/gen/wald/v1/read.js';
import type { WalServiceClient } from '../src/gen/wald/v1/wal_service.js';
import { appendToTailLatency, type LatencyRun } from './bench/append-to-tail-latency.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow, type BenchTarget } from './bench/bench-part.js';
import { RECORD_BYTES } from './bench/fs-baselines.js';
import { measurePair, type Measurement, type Runner } from './bench/runner.js';
import { startServerProcess, type ServerProcess } from './bench/server-process.js';
import { appendRequestOf, connectBenchClient } from './bench/service-client.js';
import { streamedAppends, unaryAppends } from './bench/service-workloads.js';
import { percentile, summarize, type Summary } from './bench/summary.js';

/** Every loop of a runner stops after this many operations, whatever the time. */
const MAX_OPS = 10_000_000;
const BATCH_RECORDS = 64;
/** Batches of 64 in flight (appends of WalClient, messages of the stubs' AppendStream, Redis pipelines). */
const BATCH_WINDOW = 64;
const READ_PAGE_RECORDS = 1000;

interface RedisServer {
  readonly port: number;
  stop(): Promise<void>;
}

function hasRedisServer(): boolean {
  try {
    execFileSync('which', ['redis-server'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Makes `redis-server` available (Debian's package, as root), or says why not. */
function ensureRedisServer(progress: (message: string) => void): string | undefined {
  if (hasRedisServer()) return undefined;
  if (process.getuid?.() !== 0) return 'redis-server is not installed and this is not root';
  progress('compare: installing redis-server (apt-get)');
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', env });
  } catch {
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } catch (error) {
      return `apt-get install redis-server failed: ${String(error)}`;
    }
  }
  return hasRedisServer() ? undefined : 'redis-server is still not on PATH after apt-get';
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts `redis-server` on 127.0.0.1 with every write fsynced (AOF, `appendfsync always`) in `dir`; stopped by PID. */
async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  fs.mkdirSync(dir, { recursive: true });
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'];
  // No automatic AOF rewrite: its background rewrite of the whole data set would land in the
  // middle of wald's runs (wald compacts nothing on its own either).
  args.push('--auto-aof-rewrite-percentage', '0');
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not get ready within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`redis-server exited (code ${String(code)})`)));
    lines.on('line', (line) => {
      if (line.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}

/** Runs `workers` loops of `op` (which returns the records it did) until `runMs` pass; the rate in records/s. */
function workerRunner(workers: number, op: (worker: number) => Promise<number>, close: () => Promise<void>): Runner {
  return {
    run: async (runMs): Promise<Measurement> => {
      const start = performance.now();
      const deadline = start + runMs;
      let records = 0;
      await Promise.all(
        Array.from({ length: workers }, async (_, w) => {
          for (let i = 0; i < MAX_OPS && performance.now() < deadline; i++) {
            // Not `records += await op(w)`: that reads `records` before the await, and concurrent
            // workers would then overwrite each other's counts.
            const done = await op(w);
            records += done;
          }
        }),
      );
      return { value: records / ((performance.now() - start) / 1000), records };
    },
    close,
  };
}

/** Sequential appends, one at a time; the rate, and each call's latency pushed to `latencies`. */
function sequentialRunner(op: () => Promise<unknown>, latencies: number[], close: () => Promise<void>): Runner {
  return workerRunner(
    1,
    async () => {
      const start = performance.now();
      await op();
      latencies.push(performance.now() - start);
      return 1;
    },
    close,
  );
}

/**
 * The floor of c2 (one append at a time): the p50 of a WalClient append against the no-op server
 * (one AppendStream round trip, no log) and the p50 of one 100-byte `writeSync` + `fdatasyncSync`
 * on the scratch directory's file system, each measured for `runMs`.
 */
async function measureC2Floor(config: BenchConfig, value: Buffer): Promise<{ roundTripMs: number; syncMs: number }> {
  const noop = await startServerProcess({ kind: 'noop' }, config.serverNodeArgs);
  const client = new WalClient(noop.address);
  const roundTrips: number[] = [];
  try {
    const runner = sequentialRunner(() => client.append([{ value }]), roundTrips, () => client.close());
    await runner.run(config.caseWarmupMs);
    roundTrips.length = 0;
    await runner.run(config.runMs);
    await runner.close();
  } finally {
    await noop.stop();
  }
  const path = join(config.scratchDir, 'compare-fdatasync');
  const fd = fs.openSync(path, 'w');
  const syncs: number[] = [];
  try {
    const deadline = performance.now() + config.runMs;
    let position = 0;
    for (let i = 0; i < MAX_OPS && performance.now() < deadline; i++) {
      const start = performance.now();
      position += fs.writeSync(fd, value, 0, value.length, position);
      fs.fdatasyncSync(fd);
      syncs.push(performance.now() - start);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
  }
  return { roundTripMs: percentile(roundTrips, 50), syncMs: percentile(syncs, 50) };
}

/** Reads `records` records back from offset 0 in pages; the rate. */
function readBackRunner(readAll: () => Promise<number>, close: () => Promise<void>): Runner {
  return {
    run: async (): Promise<Measurement> => {
      const start = performance.now();
      const records = await readAll();
      return { value: records / ((performance.now() - start) / 1000), records };
    },
    close,
  };
}

function stubRead(client: WalServiceClient, fromOffset: number): Promise<ReadResponse> {
  return new Promise((resolve, reject) => {
    client.read(ReadRequest.fromPartial({ fromOffset: BigInt(fromOffset), limit: READ_PAGE_RECORDS }), (error, response) =>
      error === null ? resolve(response) : reject(error),
    );
  });
}

/** Append-to-subscriber latency through WalClient: one append at a time, each waited for at a tail. */
async function walClientLatency(address: string, appends: number, value: Buffer): Promise<LatencyRun> {
  const appender = new WalClient(address);
  const subscriber = new WalClient(address);
  const abort = new AbortController();
  const samples: number[] = [];
  try {
    const from = (await appender.stats()).nextOffset;
    let arrived: ((offset: number) => void) | undefined;
    const tail = (async () => {
      for await (const event of subscriber.tail(from, { signal: abort.signal })) {
        for (const record of event.records) arrived?.(record.offset);
      }
    })();
    for (let i = 0; i < appends; i++) {
      const start = performance.now();
      const seen = new Promise<void>((resolve) => {
        arrived = () => resolve();
      });
      await appender.append([{ value }]);
      await seen;
      samples.push(performance.now() - start);
    }
    abort.abort();
    await tail;
  } finally {
    await appender.close();
    await subscriber.close();
  }
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), maxMs: Math.max(...samples), ackP50Ms: 0, samples: samples.length };
}

/** Append-to-subscriber latency through Redis: XADD on one connection, XREAD BLOCK on another. */
async function redisLatency(port: number, appends: number, value: Buffer): Promise<LatencyRun> {
  const appender = new Redis(port, '127.0.0.1');
  const subscriber = new Redis(port, '127.0.0.1');
  const samples: number[] = [];
  try {
    // XREAD from the id of the previous entry, not `$`: the subscriber's XREAD may reach Redis
    // after the XADD (another connection), and `$` would then miss the entry and block for ever.
    let lastId = String(await appender.xadd('latency', '*', 'v', value));
    for (let i = 0; i < appends; i++) {
      const read = subscriber.xreadBuffer('BLOCK', 0, 'STREAMS', 'latency', lastId);
      const start = performance.now();
      lastId = String(await appender.xadd('latency', '*', 'v', value));
      await read;
      samples.push(performance.now() - start);
    }
  } finally {
    appender.disconnect();
    subscriber.disconnect();
  }
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), maxMs: Math.max(...samples), ackP50Ms: 0, samples: samples.length };
}

function latencyRunner(run: () => Promise<LatencyRun>, into: LatencyRun[]): Runner {
  return {
    run: async () => {
      const result = await run();
      into.push(result);
      return { value: result.p50Ms, records: 0 };
    },
    close: async () => undefined,
  };
}

interface Peer {
  readonly name: string;
  readonly runner: Runner;
}

/** Runs the compare part and returns its rows. */
export async function runCompareBench(config: BenchConfig): Promise<BenchPartResult> {
  const value = randomBytes(RECORD_BYTES);
  const setup: string[] = [`${RECORD_BYTES}-byte records; wald with sync policy \`always\`; each server in its own process on 127.0.0.1`];
  // WALD_BENCH_COMPARE_REDIS=0: WalClient against the stubs only, alternated with each other.
  const redisMissing = process.env['WALD_BENCH_COMPARE_REDIS'] === '0' ? 'WALD_BENCH_COMPARE_REDIS=0' : ensureRedisServer(config.progress);
  if (redisMissing !== undefined) setup.push(`Redis rows left out: ${redisMissing}`);
  else setup.push('Redis: redis-server with appendonly yes, appendfsync always, no RDB saves; ioredis, one connection per client');
  const servers: ServerProcess[] = [];
  const redisServers: RedisServer[] = [];
  const rows: BenchRow[] = [];
  /** What the WalClient runners counted, printed under the table. */
  const clientNotes: string[] = [];
  const startWald = async (label: string): Promise<ServerProcess> => {
    const dir = join(config.scratchDir, `compare-${label}`);
    fs.mkdirSync(dir, { recursive: true });
    const server = await startServerProcess({ kind: 'wald', dir }, config.serverNodeArgs);
    servers.push(server);
    return server;
  };
  const startRedisPeer = async (label: string): Promise<RedisServer | undefined> => {
    if (redisMissing !== undefined) return undefined;
    const server = await startRedis(join(config.scratchDir, `compare-redis-${label}`));
    redisServers.push(server);
    return server;
  };
  /** Rows of one load: WalClient against Redis (or, without Redis, against the stubs), and the stubs against Redis. */
  const addRows = async (id: string, name: string, unit: BenchRow['unit'], target: BenchTarget | undefined, client: Peer, stubs: Peer, redis: Peer | undefined, notes: () => string[] = () => []): Promise<void> => {
    config.progress(`compare: ${id}, ${name}`);
    if (redis === undefined) {
      const pair = await measurePair(config, client.runner, stubs.runner);
      rows.push(makeRow({ id, name: `${name}: ${client.name}`, unit, wald: pair.wald, baseline: { name: stubs.name, summary: pair.baseline! }, notes: notes() }));
      return;
    }
    const pair = await measurePair(config, client.runner, redis.runner);
    const stubPair = await measurePair(config, stubs.runner);
    rows.push(makeRow({ id, name: `${name}: ${client.name}`, unit, wald: pair.wald, baseline: { name: redis.name, summary: pair.baseline! }, target, notes: notes() }));
    rows.push(makeRow({ id: `${id}s`, name: `${name}: ${stubs.name}`, unit, wald: stubPair.wald, baseline: { name: redis.name, summary: pair.baseline! } }));
  };
  const redisAppender = (port: number, workers: number, records: number): Runner => {
    const redis = new Redis(port, '127.0.0.1');
    return workerRunner(
      workers,
      async () => {
        if (records === 1) await redis.xadd('s', '*', 'v', value);
        else {
          const pipeline = redis.pipeline();
          for (let i = 0; i < records; i++) pipeline.xadd('s', '*', 'v', value);
          await pipeline.exec();
        }
        return records;
      },
      async () => void redis.disconnect(),
    );
  };
  const walAppender = (address: string, workers: number, records: number): Runner => {
    const client = new WalClient(address);
    const batch = Array.from({ length: records }, () => ({ value }));
    return workerRunner(workers, async () => (await client.append(batch), records), async () => {
      const { sentMessages, sentAppends, maxInFlightMessagesSeen } = client.appendCounters();
      clientNotes.push(`WalClient, ${workers} x ${records}: ${sentAppends} appends in ${sentMessages} messages, at most ${maxInFlightMessagesSeen} in flight`);
      await client.close();
    });
  };
  try {
    config.progress('compare: starting the servers');
    const wald = await startWald('appends');
    const redis = await startRedisPeer('appends');

    // JIT, the first segment's preallocation, Redis's first AOF growth: none of it in the rows.
    config.progress(`compare: warming up for ${config.warmupMs} ms`);
    for (const runner of [walAppender(wald.address, 64, 1), unaryAppends(connectBenchClient(wald.address), appendRequestOf(value, 1), 64), walAppender(wald.address, BATCH_WINDOW, BATCH_RECORDS)]) {
      await runner.run(config.warmupMs / 3);
      await runner.close();
    }
    if (redis !== undefined) {
      const runner = redisAppender(redis.port, 64, 1);
      await runner.run(config.warmupMs / 3);
      await runner.close();
    }

    await addRows(
      'c1',
      '64 single-record appends in flight, 1 connection',
      'records/s',
      { kind: 'ratio-at-least', value: 1.5 },
      { name: 'WalClient.append', runner: walAppender(wald.address, 64, 1) },
      { name: 'stubs, unary `Append`', runner: unaryAppends(connectBenchClient(wald.address), appendRequestOf(value, 1), 64) },
      redis === undefined ? undefined : { name: 'Redis XADD, 64 in flight', runner: redisAppender(redis.port, 64, 1) },
    );

    const latencies = { client: [] as number[], stubs: [] as number[], redis: [] as number[] };
    const stubClient = connectBenchClient(wald.address);
    const p50Note = (): string[] => [
      `p50 per call: WalClient ${percentile(latencies.client, 50).toFixed(3)} ms, stubs ${latencies.stubs.length === 0 ? 'n/a' : percentile(latencies.stubs, 50).toFixed(3)} ms, Redis ${latencies.redis.length === 0 ? 'n/a' : percentile(latencies.redis, 50).toFixed(3)} ms`,
      `floor of one WalClient append: AppendStream round trip to the no-op server p50 ${floor.roundTripMs.toFixed(3)} ms + write and fdatasync of one record p50 ${floor.syncMs.toFixed(3)} ms = ${(floor.roundTripMs + floor.syncMs).toFixed(3)} ms`,
    ];
    // c2's floor, measured alone just before it: one AppendStream round trip of WalClient against
    // the no-op server (no log), and one write + fdatasync of a record on the same file system.
    config.progress('compare: c2 floor (no-op round trip, write + fdatasync)');
    const floor = await measureC2Floor(config, value);
    const seqClient = new WalClient(wald.address);
    const seqRedis = redis === undefined ? undefined : new Redis(redis.port, '127.0.0.1');
    await addRows(
      'c2',
      '1 client, sequential single-record appends',
      'records/s',
      { kind: 'ratio-at-least', value: 0.6 },
      { name: 'WalClient.append', runner: sequentialRunner(() => seqClient.append([{ value }]), latencies.client, () => seqClient.close()) },
      {
        name: 'stubs, unary `Append`',
        runner: sequentialRunner(
          () => new Promise((resolve, reject) => stubClient.append(appendRequestOf(value, 1), (e, r) => (e === null ? resolve(r) : reject(e)))),
          latencies.stubs,
          async () => stubClient.close(),
        ),
      },
      seqRedis === undefined ? undefined : { name: 'Redis XADD, sequential', runner: sequentialRunner(() => seqRedis.xadd('s', '*', 'v', value), latencies.redis, async () => void seqRedis.disconnect()) },
      p50Note,
    );

    await addRows(
      'c3',
      `batches of ${BATCH_RECORDS}, ${BATCH_WINDOW} in flight`,
      'records/s',
      { kind: 'ratio-at-least', value: 4 },
      { name: `WalClient.append of ${BATCH_RECORDS} records`, runner: walAppender(wald.address, BATCH_WINDOW, BATCH_RECORDS) },
      { name: '`AppendStream` (stubs)', runner: streamedAppends(connectBenchClient(wald.address), appendRequestOf(value, BATCH_RECORDS), BATCH_WINDOW) },
      redis === undefined ? undefined : { name: `Redis pipelines of ${BATCH_RECORDS} XADD`, runner: redisAppender(redis.port, 8, BATCH_RECORDS) },
    );

    // Read back: a log (and a stream) of `readRecords` records, written by the clients themselves.
    const total = config.readRecords;
    config.progress(`compare: filling ${total} records for the read-back rows`);
    const readWald = await startWald('read');
    const filler = new WalClient(readWald.address);
    const fillBatch = Array.from({ length: 1000 }, () => ({ value }));
    for (let written = 0; written < total; written += 1000 * 16) {
      await Promise.all(Array.from({ length: Math.min(16, Math.ceil((total - written) / 1000)) }, () => filler.append(fillBatch)));
    }
    await filler.close();
    const readRedis = await startRedisPeer('read');
    if (readRedis !== undefined) {
      const redisFiller = new Redis(readRedis.port, '127.0.0.1');
      for (let written = 0; written < total; written += 1000) {
        const pipeline = redisFiller.pipeline();
        for (let i = 0; i < 1000; i++) pipeline.xadd('r', '*', 'v', value);
        await pipeline.exec();
      }
      redisFiller.disconnect();
    }
    const readClient = new WalClient(readWald.address);
    const readStubs = connectBenchClient(readWald.address, { flowControlWindowBytes: 1024 * 1024 });
    const readRedisClient = readRedis === undefined ? undefined : new Redis(readRedis.port, '127.0.0.1');
    await addRows(
      'c4',
      `read back ${total} records, pages of ${READ_PAGE_RECORDS}`,
      'records/s',
      { kind: 'ratio-at-least', value: 1.5 },
      {
        name: 'WalClient.range',
        runner: readBackRunner(async () => {
          let records = 0;
          for await (const page of readClient.range(0, total, { limit: READ_PAGE_RECORDS })) records += page.records.length;
          return records;
        }, () => readClient.close()),
      },
      {
        name: 'stubs, `Read` (generated decoder)',
        runner: readBackRunner(async () => {
          let records = 0;
          for (let offset = 0; offset < total && records < MAX_OPS; ) {
            const page = await stubRead(readStubs, offset);
            if (page.records.length === 0) break;
            records += page.records.length;
            offset = Number(page.nextOffset);
          }
          return records;
        }, async () => readStubs.close()),
      },
      readRedisClient === undefined
        ? undefined
        : {
            name: `Redis XRANGE COUNT ${READ_PAGE_RECORDS}`,
            runner: readBackRunner(async () => {
              let records = 0;
              let start = '-';
              for (let i = 0; i < MAX_OPS && records < total; i++) {
                const entries = await readRedisClient.xrangeBuffer('r', start, '+', 'COUNT', READ_PAGE_RECORDS);
                if (entries.length === 0) break;
                records += entries.length;
                start = `(${entries[entries.length - 1]![0].toString()}`;
              }
              return records;
            }, async () => void readRedisClient.disconnect()),
          },
    );

    const runs = { client: [] as LatencyRun[], stubs: [] as LatencyRun[], redis: [] as LatencyRun[] };
    const p99 = (list: readonly LatencyRun[]): Summary => summarize(list.map((r) => r.p99Ms));
    const stubAppender = connectBenchClient(wald.address, { isOwnConnection: true });
    const stubSubscriber = connectBenchClient(wald.address, { isOwnConnection: true });
    await addRows(
      'c5',
      'append -> subscriber latency, p50',
      'ms',
      { kind: 'ratio-at-most', value: 1.5 },
      { name: 'WalClient append + tail', runner: latencyRunner(() => walClientLatency(wald.address, config.latencyAppends, value), runs.client) },
      { name: 'stubs, unary `Append` + `TailWal`', runner: { ...appendToTailLatency(stubAppender, stubSubscriber, config.latencyAppends, RECORD_BYTES, runs.stubs) } },
      redis === undefined ? undefined : { name: 'Redis XADD + XREAD BLOCK', runner: latencyRunner(() => redisLatency(redis.port, config.latencyAppends, value), runs.redis) },
    );
    const clientP99 = p99(runs.client.slice(-config.runs));
    rows.push(
      makeRow({
        id: 'c5p99',
        name: 'append -> subscriber latency, p99: WalClient append + tail',
        unit: 'ms',
        wald: clientP99,
        baseline: runs.redis.length > 0 ? { name: 'Redis XADD + XREAD BLOCK', summary: p99(runs.redis.slice(-config.runs)) } : undefined,
        target: { kind: 'at-most', value: 1 },
        notes: [`stubs p99 ${runs.stubs.length > 0 ? p99(runs.stubs.slice(-config.runs)).median.toFixed(3) : 'n/a'} ms`],
      }),
    );
    setup.push(`latency: ${config.latencyAppends} appends per run, one at a time, each waited for at the subscriber`);
    return { part: 'compare', rows, setup: [...setup, ...clientNotes] };
  } finally {
    for (const server of servers) await server.stop();
    for (const server of redisServers) await server.stop();
  }
}
