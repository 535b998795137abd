/**
 * The service part of `npm run bench`: wald's gRPC server against a no-op grpc-js server with the
 * same service definition, measured in the same run, for 100-byte records. Client (this process)
 * and servers (child processes) are separate processes on 127.0.0.1. Rows 1–4 are those of
 * issue 3's "Benchmark (not a test)" section; docs/benchmarks.md holds the figures and what limits
 * each row.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { AppendRecord } from '../src/index.js';
import { appendToTailLatency, type LatencyRun } from './bench/append-to-tail-latency.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow, type BenchTarget } from './bench/bench-part.js';
import { trackCpu, type CpuShare } from './bench/cpu-share.js';
import { RECORD_BYTES } from './bench/fs-baselines.js';
import { fillLog } from './bench/open-workloads.js';
import { measurePair, type PairResult, type Runner } from './bench/runner.js';
import { startServerProcess, type ServerProcess } from './bench/server-process.js';
import { appendRequestOf, connectBenchClient } from './bench/service-client.js';
import { streamedAppends, tailCatchUp, unaryAppends, type TailFacts } from './bench/service-workloads.js';
import { summarize, type Summary } from './bench/summary.js';

/** Unary concurrencies of row 1: calls in flight on one client channel. */
const UNARY_CONCURRENCIES = [1, 64] as const;
/** Records per AppendStream message in row 2. */
const STREAM_BATCH_RECORDS = 64;
/** AppendStream messages in flight (sent, not yet answered) in row 2: 64 x 64 = 4096 records. */
const STREAM_WINDOW = 64;
/** TailWal batch bounds of row 3: 1000 records (the server's cap) and the server's default byte cap. */
const TAIL_BATCH = { maxRecords: 1000, maxBytes: 0 } as const;
/**
 * The tail client's HTTP/2 receive window in row 3. A 1000-record message is ~117 KB, more than
 * grpc-js's default 64 KiB window, which then caps a catch-up near 0.65M records/s on this machine.
 */
const TAIL_CLIENT_WINDOW_BYTES = 4 * 1024 * 1024;
/** Records per append when the log of row 3 is written beforehand (as engine row e). */
const TAIL_FILL_BATCH_RECORDS = 64;

/** A row's measurements with the CPU shares of its measured runs. */
interface MeasuredPair {
  readonly pair: PairResult;
  readonly waldCpu: CpuShare[];
  readonly baselineCpu: CpuShare[];
}

function median(values: readonly number[]): number {
  return summarize(values).median;
}

function cpuNote(measured: MeasuredPair): string {
  const side = (shares: readonly CpuShare[]): string =>
    shares.length === 0
      ? 'n/a'
      : `server ${median(shares.map((s) => s.serverPercent)).toFixed(0)} %, client ${median(shares.map((s) => s.clientPercent)).toFixed(0)} %`;
  return `CPU, % of one core (median of runs): wald ${side(measured.waldCpu)}; no-op ${side(measured.baselineCpu)}`;
}

/**
 * Measures `wald` and `baseline` with {@link measurePair}, tracking the CPU of this process and of
 * each server process. Only the measured runs' CPU shares are kept (the warm-up run comes first).
 */
async function measureServicePair(config: BenchConfig, wald: { runner: Runner; server: ServerProcess }, baseline: { runner: Runner; server: ServerProcess }): Promise<MeasuredPair> {
  const waldCpu: CpuShare[] = [];
  const baselineCpu: CpuShare[] = [];
  const pair = await measurePair(config, trackCpu(wald.runner, wald.server.pid, waldCpu), trackCpu(baseline.runner, baseline.server.pid, baselineCpu));
  return { pair, waldCpu: waldCpu.slice(-config.runs), baselineCpu: baselineCpu.slice(-config.runs) };
}

interface RowSpec {
  readonly id: string;
  readonly name: string;
  readonly unit: BenchRow['unit'];
  readonly baselineName: string;
  readonly target?: BenchTarget;
  readonly notes?: readonly string[];
}

function row(spec: RowSpec, wald: Summary, baseline: Summary, notes: readonly string[]): BenchRow {
  const { baselineName, notes: specNotes = [], ...rest } = spec;
  return makeRow({ ...rest, wald, baseline: { name: baselineName, summary: baseline }, notes: [...notes, ...specNotes] });
}

function throughputRow(spec: RowSpec, measured: MeasuredPair): BenchRow {
  const notes: string[] = [];
  if (measured.pair.recordsPerFsync !== undefined) notes.push(`${measured.pair.recordsPerFsync.toFixed(1)} records per fdatasync on the wald server`);
  notes.push(cpuNote(measured));
  return row(spec, measured.pair.wald, measured.pair.baseline!, notes);
}

/** Runs the service part (server processes on 127.0.0.1, data under `config.scratchDir`) and returns its rows. */
export async function runServiceBench(config: BenchConfig): Promise<BenchPartResult> {
  const value = randomBytes(RECORD_BYTES);
  const servers: ServerProcess[] = [];
  const dirs: string[] = [];
  const start = async (kind: 'wald' | 'noop', label: string): Promise<ServerProcess> => {
    let server: ServerProcess;
    if (kind === 'noop') {
      server = await startServerProcess({ kind }, config.serverNodeArgs);
    } else {
      const dir = join(config.scratchDir, `service-${label}`);
      if (!dirs.includes(dir)) dirs.push(dir);
      fs.mkdirSync(dir, { recursive: true });
      server = await startServerProcess({ kind, dir }, config.serverNodeArgs);
    }
    servers.push(server);
    return server;
  };
  try {
    config.progress('service: starting the wald and no-op server processes');
    const noop = await start('noop', 'noop');
    const wald = await start('wald', 'appends');
    await warmUp(config, wald, noop, value);

    const rows: BenchRow[] = [];
    for (const concurrency of UNARY_CONCURRENCIES) {
      config.progress(`service: 1, unary Append, concurrency ${concurrency}`);
      const one = appendRequestOf(value, 1);
      const measured = await measureServicePair(
        config,
        { runner: unaryAppends(connectBenchClient(wald.address), one, concurrency), server: wald },
        { runner: unaryAppends(connectBenchClient(noop.address), one, concurrency), server: noop },
      );
      rows.push(
        throughputRow(
          {
            id: concurrency === 1 ? '1a' : '1b',
            name: `\`Append\` unary, 1 record, \`always\`, ${concurrency} in flight on one channel`,
            unit: 'records/s',
            baselineName: `no-op server, unary, ${concurrency} in flight`,
            target: concurrency === 64 ? { kind: 'ratio-at-least', value: 0.9 } : undefined,
          },
          measured,
        ),
      );
    }

    // Before row 2, whose hundreds of MB of appends leave segment zero-filling and writeback behind.
    rows.push(...(await latencyRows(config, wald, noop)));

    config.progress(`service: 2, AppendStream, ${STREAM_BATCH_RECORDS} records per message, ${STREAM_WINDOW} messages in flight`);
    const batch = appendRequestOf(value, STREAM_BATCH_RECORDS);
    const streamed = await measureServicePair(
      config,
      { runner: streamedAppends(connectBenchClient(wald.address), batch, STREAM_WINDOW), server: wald },
      { runner: streamedAppends(connectBenchClient(noop.address), batch, STREAM_WINDOW), server: noop },
    );
    rows.push(
      throughputRow(
        {
          id: '2',
          name: `\`AppendStream\`, ${STREAM_BATCH_RECORDS} records per message, \`always\`, ${STREAM_WINDOW} messages in flight`,
          unit: 'records/s',
          baselineName: `no-op server, same stream`,
          target: { kind: 'at-least', value: 500_000 },
        },
        streamed,
      ),
    );

    await wald.stop();

    rows.push(await tailRow(config, noop, start));
    rows.sort((a, b) => a.id.localeCompare(b.id));
    return {
      part: 'service',
      rows,
      setup: [
        `records: ${RECORD_BYTES}-byte value, no key, no headers; wald server with default options and \`always\` durability (64 MiB preallocated segments), data under ./bench-tmp/`,
        'client: this process, the generated grpc-js client; servers: one child process each (wald, no-op), on 127.0.0.1; the no-op server serves the same generated WalService definition with the same transport limits, its handlers answer at once',
        `every figure: median (min–max) of ${config.runs} runs (rates: ${config.runMs} ms each; catch-up: one pass each; latency: ${config.latencyAppends} appends each), baseline and wald alternating, after ${config.warmupMs} ms of warm-up of both servers and one warm-up run per row`,
      ],
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Drives unary appends and an AppendStream against both servers, to tier up the JIT of the client and both servers. */
async function warmUp(config: BenchConfig, wald: ServerProcess, noop: ServerProcess, value: Buffer): Promise<void> {
  if (config.warmupMs <= 0) return;
  config.progress(`service: warm-up (${config.warmupMs} ms)`);
  const share = Math.max(1, Math.floor(config.warmupMs / 4));
  for (const server of [wald, noop]) {
    const unary = unaryAppends(connectBenchClient(server.address), appendRequestOf(value, 1), 64);
    await unary.run(share);
    await unary.close();
    const streamed = streamedAppends(connectBenchClient(server.address), appendRequestOf(value, STREAM_BATCH_RECORDS), STREAM_WINDOW);
    await streamed.run(share);
    await streamed.close();
  }
}

async function latencyRows(config: BenchConfig, wald: ServerProcess, noop: ServerProcess): Promise<BenchRow[]> {
  config.progress(`service: 4, append-to-subscriber latency (${config.latencyAppends} appends per run)`);
  const waldRuns: LatencyRun[] = [];
  const noopRuns: LatencyRun[] = [];
  const runner = (server: ServerProcess, into: LatencyRun[]): Runner =>
    appendToTailLatency(connectBenchClient(server.address), connectBenchClient(server.address, { isOwnConnection: true }), config.latencyAppends, RECORD_BYTES, into);
  const measured = await measureServicePair(config, { runner: runner(wald, waldRuns), server: wald }, { runner: runner(noop, noopRuns), server: noop });
  const waldMeasured = waldRuns.slice(-config.runs);
  const noopMeasured = noopRuns.slice(-config.runs);
  const baselineName = 'no-op server relaying each `Append` to the tail at once';
  const perRun = (runs: readonly LatencyRun[], pick: (run: LatencyRun) => number): string => runs.map((r) => pick(r).toFixed(2)).join(' / ');
  const maxNote = `max per run: wald ${perRun(waldMeasured, (r) => r.maxMs)} ms; no-op ${perRun(noopMeasured, (r) => r.maxMs)} ms`;
  const ackNote = `p50 of the \`Append\` acknowledgement of the same appends, per run: wald ${perRun(waldMeasured, (r) => r.ackP50Ms)} ms; no-op ${perRun(noopMeasured, (r) => r.ackP50Ms)} ms`;
  const how =
    'appender (unary `Append`, `always`) and tail (`from_end`, `\'data\'` handler) in this process on two connections; one record at a time: the next append waits for the ack and the tail receipt of the previous one; latency = tail receipt − send, `process.hrtime`';
  return [
    row(
      { id: '4a', name: 'append-to-subscriber latency, p50', unit: 'ms', baselineName, target: { kind: 'at-most', value: 0.5 } },
      measured.pair.wald,
      measured.pair.baseline!,
      [how, ackNote, cpuNote(measured)],
    ),
    row(
      { id: '4b', name: 'append-to-subscriber latency, p99', unit: 'ms', baselineName, target: { kind: 'at-most', value: 1 } },
      summarize(waldMeasured.map((r) => r.p99Ms)),
      summarize(noopMeasured.map((r) => r.p99Ms)),
      [maxNote],
    ),
  ];
}

async function tailRow(config: BenchConfig, noop: ServerProcess, start: (kind: 'wald', label: string) => Promise<ServerProcess>): Promise<BenchRow> {
  const records = config.tailRecords;
  config.progress(`service: 3, writing ${records} records for the TailWal catch-up`);
  const fillBatch: AppendRecord[] = Array.from({ length: TAIL_FILL_BATCH_RECORDS }, () => ({ value: randomBytes(RECORD_BYTES) }));
  const filled = await fillLog(join(config.scratchDir, 'service-tail'), fillBatch, { records });
  const wald = await start('wald', 'tail');
  try {
    config.progress(`service: 3, TailWal catch-up of ${records} records`);
    const waldFacts: TailFacts = { messages: 0, firstRecordMs: 0 };
    const noopFacts: TailFacts = { messages: 0, firstRecordMs: 0 };
    const tailClient = { flowControlWindowBytes: TAIL_CLIENT_WINDOW_BYTES };
    const measured = await measureServicePair(
      config,
      { runner: tailCatchUp(connectBenchClient(wald.address, tailClient), records, TAIL_BATCH, waldFacts), server: wald },
      { runner: tailCatchUp(connectBenchClient(noop.address, tailClient), records, TAIL_BATCH, noopFacts), server: noop },
    );
    return throughputRow(
      {
        id: '3',
        name: `\`TailWal\` catch-up of ${records.toLocaleString('en-US')} records (\`max_records\` ${TAIL_BATCH.maxRecords}, \`max_bytes\` 0 = 3 MiB)`,
        unit: 'records/s',
        baselineName: `no-op server streaming prebuilt batches of ${TAIL_BATCH.maxRecords}`,
        target: { kind: 'at-least', value: 2_000_000 },
        notes: [
          `log written beforehand as ${TAIL_FILL_BATCH_RECORDS}-record batches (${filled.segments} segment(s)), page cache warm; client reads with a \`'data'\` handler, HTTP/2 receive window ${TAIL_CLIENT_WINDOW_BYTES / 2 ** 20} MiB (\`grpc-node.flow_control_window\`); rate = records after the first message / time from the first message to the last record`,
          `last pass: wald ${waldFacts.messages} messages, first record after ${waldFacts.firstRecordMs.toFixed(1)} ms; no-op ${noopFacts.messages} messages, first after ${noopFacts.firstRecordMs.toFixed(1)} ms`,
        ],
      },
      measured,
    );
  } finally {
    await wald.stop();
  }
}
