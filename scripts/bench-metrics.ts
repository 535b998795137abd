/**
 * The metrics part of `npm run bench`: what Prometheus metrics cost. Two wald server processes
 * with default options and `always` durability, one with `metrics_listen` on (and scraped by this
 * process every {@link SCRAPE_INTERVAL_MS}, 15x as often as Prometheus's default), one with it
 * off, measured in the same run, runs alternating: durable `AppendStream` throughput (the target:
 * metrics cost at most 3 %) and unary `Append` at 64 in flight (every call counted and timed).
 * docs/benchmarks.md holds the figures.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import { ServerMetrics } from '../src/server/metrics/server-metrics.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow, type BenchTarget } from './bench/bench-part.js';
import { processCpuMs } from './bench/cpu-share.js';
import { RECORD_BYTES } from './bench/fs-baselines.js';
import { measurePair, type Measurement, type PairResult, type Runner } from './bench/runner.js';
import { startServerProcess, type ServerProcess } from './bench/server-process.js';
import { appendRequestOf, connectBenchClient } from './bench/service-client.js';
import { streamedAppends, unaryAppends } from './bench/service-workloads.js';
import { summarize } from './bench/summary.js';

/** How often the server with metrics is scraped during its runs. */
const SCRAPE_INTERVAL_MS = 1000;
/** Records per AppendStream message, and messages in flight: service row 2's workload. */
const STREAM_BATCH_RECORDS = 64;
const STREAM_WINDOW = 64;
/** Unary calls in flight: service row 1b's workload. */
const UNARY_CONCURRENCY = 64;

/** Scrapes of one runner's runs: how many, and the size of the last exposition. */
interface ScrapeFacts {
  count: number;
  lastBytes: number;
}

/** `runner`, with `/metrics` on `port` fetched every {@link SCRAPE_INTERVAL_MS} while it runs (and once at its start). */
function scraped(runner: Runner, port: number, facts: ScrapeFacts): Runner {
  const scrape = async (): Promise<void> => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    const text = await response.text();
    if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${text}`);
    facts.count++;
    facts.lastBytes = Buffer.byteLength(text);
  };
  return {
    run: async (runMs): Promise<Measurement> => {
      const scrapes: Promise<void>[] = [scrape()];
      const timer = setInterval(() => scrapes.push(scrape()), SCRAPE_INTERVAL_MS);
      try {
        return await runner.run(runMs);
      } finally {
        clearInterval(timer);
        await Promise.all(scrapes);
      }
    },
    close: () => runner.close(),
  };
}

/** The server process's CPU in one run: its share of one core, and per 1000 records; and the records each fdatasync covered. */
interface ServerCpu {
  readonly percent: number;
  readonly msPerThousandRecords: number;
  readonly recordsPerFsync: number | undefined;
}

/**
 * `runner`, with the CPU time of the server process `pid` during each run appended to `into`.
 * CPU per record holds up better than throughput on a loaded machine: the rate of an `always`
 * workload follows the disk, the CPU each record costs the server much less. Not at all: a run
 * whose fdatasyncs were slower commits fewer records in each, and each commit's fixed CPU (the
 * fdatasync itself, the writer's flush, the view's read-back) is spread over fewer records; so the
 * records per fdatasync of each side are noted too.
 */
function trackServerCpu(runner: Runner, pid: number, into: ServerCpu[]): Runner {
  return {
    run: async (runMs): Promise<Measurement> => {
      const start = performance.now();
      const before = processCpuMs(pid);
      const measurement = await runner.run(runMs);
      const cpuMs = processCpuMs(pid) - before;
      into.push({
        percent: (cpuMs / (performance.now() - start)) * 100,
        msPerThousandRecords: (cpuMs / Math.max(1, measurement.records)) * 1000,
        recordsPerFsync: measurement.fsyncs === undefined || measurement.fsyncs === 0 ? undefined : measurement.records / measurement.fsyncs,
      });
      return measurement;
    },
    close: () => runner.close(),
  };
}

function cpuNote(on: readonly ServerCpu[], off: readonly ServerCpu[]): string {
  const side = (runs: readonly ServerCpu[]): string => {
    const perFsync = runs.flatMap((r) => (r.recordsPerFsync === undefined ? [] : [r.recordsPerFsync]));
    const fsyncNote = perFsync.length === 0 ? '' : `, ${summarize(perFsync).median.toFixed(0)} records per fdatasync`;
    return `${summarize(runs.map((r) => r.msPerThousandRecords)).median.toFixed(2)} ms per 1000 records (${summarize(runs.map((r) => r.percent)).median.toFixed(0)} % of one core${fsyncNote})`;
  };
  return `server CPU (median of runs): metrics on ${side(on)}; metrics off ${side(off)}`;
}

/** One row: the workload `make` against the server with metrics (scraped) and the one without. */
async function measureRow(
  config: BenchConfig,
  servers: { on: ServerProcess; off: ServerProcess },
  make: (address: string) => Runner,
  spec: { id: string; name: string; target?: BenchTarget },
): Promise<BenchRow> {
  const facts: ScrapeFacts = { count: 0, lastBytes: 0 };
  const onCpu: ServerCpu[] = [];
  const offCpu: ServerCpu[] = [];
  const pair: PairResult = await measurePair(
    config,
    trackServerCpu(scraped(make(servers.on.address), servers.on.metricsPort!, facts), servers.on.pid, onCpu),
    trackServerCpu(make(servers.off.address), servers.off.pid, offCpu),
  );
  const notes = [
    `${facts.count} scrapes of /metrics during the runs with metrics (${(facts.lastBytes / 1024).toFixed(0)} KiB each)`,
    cpuNote(onCpu.slice(-config.runs), offCpu.slice(-config.runs)),
  ];
  if (pair.recordsPerFsync !== undefined) notes.unshift(`${pair.recordsPerFsync.toFixed(1)} records per fdatasync with metrics on`);
  return makeRow({
    ...spec,
    unit: 'records/s',
    wald: pair.wald,
    baseline: { name: 'the same server with metrics_listen off', summary: pair.baseline! },
    notes,
  });
}

/** Calls per figure of {@link hotPathCost}. */
const HOT_PATH_CALLS = 1_000_000;
/** Renderings of the exposition timed by {@link hotPathCost}. */
const SCRAPES_TIMED = 100;

/**
 * What the counting itself costs, in this process: ns per counted append (`appendAnswered`, what
 * an AppendStream append adds) and per counted unary call (`rpcFinished` with its duration), and
 * per group commit (`committed` + `synced`, what the engine's observer adds); and ms per scrape
 * (rendering the exposition, Node's process metrics included).
 */
async function hotPathCost(): Promise<{ appendNs: number; callNs: number; commitNs: number; scrapeMs: number }> {
  const metrics = new ServerMetrics();
  const time = (step: (i: number) => void): number => {
    for (let i = 0; i < HOT_PATH_CALLS / 10; i++) step(i);
    const start = performance.now();
    for (let i = 0; i < HOT_PATH_CALLS; i++) step(i);
    return ((performance.now() - start) * 1e6) / HOT_PATH_CALLS;
  };
  const appendNs = time((i) => metrics.appendAnswered('AppendStream', 64, status.OK, (i & 7) * 0.3));
  const callNs = time((i) => metrics.rpcFinished('Append', status.OK, (i & 7) * 0.3));
  const commitNs = time((i) => {
    metrics.committed(1 + (i & 63), 7000);
    metrics.synced((i & 7) * 0.4);
  });
  // A scrape renders everything, Node's process metrics included (no log is watched here).
  await metrics.exposition();
  const start = performance.now();
  for (let i = 0; i < SCRAPES_TIMED; i++) await metrics.exposition();
  return { appendNs, callNs, commitNs, scrapeMs: (performance.now() - start) / SCRAPES_TIMED };
}

/** Runs the metrics part (two wald server processes on 127.0.0.1, data under `config.scratchDir`). */
export async function runMetricsBench(config: BenchConfig): Promise<BenchPartResult> {
  const value = randomBytes(RECORD_BYTES);
  const servers: ServerProcess[] = [];
  const dirs = ['metrics-on', 'metrics-off'].map((name) => join(config.scratchDir, name));
  try {
    config.progress('metrics: starting two wald server processes, metrics on and off');
    for (const dir of dirs) fs.mkdirSync(dir, { recursive: true });
    const on = await startServerProcess({ kind: 'wald', dir: dirs[0]!, options: { metricsListen: '127.0.0.1:0' } }, config.serverNodeArgs);
    servers.push(on);
    const off = await startServerProcess({ kind: 'wald', dir: dirs[1]!, options: {} }, config.serverNodeArgs);
    servers.push(off);
    const stream = (address: string): Runner => streamedAppends(connectBenchClient(address), appendRequestOf(value, STREAM_BATCH_RECORDS), STREAM_WINDOW);
    const unary = (address: string): Runner => unaryAppends(connectBenchClient(address), appendRequestOf(value, 1), UNARY_CONCURRENCY);
    if (config.warmupMs > 0) {
      config.progress(`metrics: warm-up (${config.warmupMs} ms)`);
      const share = Math.max(1, Math.floor(config.warmupMs / 4));
      for (const server of [on, off]) {
        for (const make of [unary, stream]) {
          const runner = make(server.address);
          await runner.run(share);
          await runner.close();
        }
      }
    }
    config.progress(`metrics: m1, AppendStream, ${STREAM_BATCH_RECORDS} records per message, ${STREAM_WINDOW} in flight, metrics on vs off`);
    const rows = [
      await measureRow(config, { on, off }, stream, {
        id: 'm1',
        name: `\`AppendStream\`, ${STREAM_BATCH_RECORDS} records per message, \`always\`, ${STREAM_WINDOW} messages in flight, metrics on`,
        target: { kind: 'ratio-at-least', value: 0.97 },
      }),
    ];
    config.progress(`metrics: m2, unary Append, ${UNARY_CONCURRENCY} in flight, metrics on vs off`);
    rows.push(
      await measureRow(config, { on, off }, unary, {
        id: 'm2',
        name: `\`Append\` unary, 1 record, \`always\`, ${UNARY_CONCURRENCY} in flight on one channel, metrics on`,
      }),
    );
    const cost = await hotPathCost();
    return {
      part: 'metrics',
      rows,
      setup: [
        `records: ${RECORD_BYTES}-byte value, no key, no headers; two wald server processes with default options and \`always\` durability (64 MiB preallocated segments), data under ./bench-tmp/, one with \`metrics_listen 127.0.0.1:0\`, one without`,
        `the server with metrics is scraped by this process every ${SCRAPE_INTERVAL_MS} ms while it is measured (Prometheus's default is 15 s)`,
        `every figure: median (min–max) of ${config.runs} runs of ${config.runMs} ms, metrics off and on alternating, after ${config.warmupMs} ms of warm-up of both servers and one warm-up run per row`,
        `the counting itself, in this process (${HOT_PATH_CALLS.toLocaleString('en-US')} calls each): ${cost.appendNs.toFixed(0)} ns per counted append, ${cost.callNs.toFixed(0)} ns per counted unary call, ${cost.commitNs.toFixed(0)} ns per group commit (its size and fsync latency); rendering the exposition: ${cost.scrapeMs.toFixed(2)} ms per scrape`,
      ],
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}
