/**
 * The replication part of `npm run bench` (`npm run bench -- replication`), issue 10's benchmark,
 * with real `wald serve` children on 127.0.0.1 (a leader and a `--follow` follower, sync `always`
 * on both):
 *
 * - r1, catch-up: a leader whose log holds `WALD_BENCH_TAIL_RECORDS` (1M) records of 100 bytes
 *   (batches of 1000) and a follower started on an empty directory: records per second from the
 *   follower's first message to its high watermark at the leader's last offset (GetStats polled
 *   every 5 ms). Frames are copied as stored: no decode, no re-encode. Its ceilings, alternating
 *   with it in the same run (`catch-up-baselines.ts`): r1t, grpc-js alone streaming messages of the
 *   leader's size to a client that drops them; r1d, node:fs writing the same bytes with one
 *   fdatasync per message.
 * - r2/r3, replication lag under load: 50k records/s offered to the leader (a batch of 100 every
 *   2 ms by the clock, up to 32 in flight) for `WALD_BENCH_RUN_MS` x 3, after a discarded warm-up
 *   run of `WALD_BENCH_WARMUP_MS` on each server; per batch, the time from the leader's
 *   acknowledgement to the batch's delivery by a TailWal of the follower (which sends only what the
 *   follower has synced: so this is "acknowledged on the leader" to "durable on the follower", plus
 *   one local tail hop). p50 and p99 over all batches of a run, median over the runs. Baseline:
 *   the same load on a leader alone, measured to delivery by a TailWal of that leader (what a
 *   local subscriber sees, with no replication at all). r3a: the
 *   same load's append latency p99 (send to acknowledgement) with the follower copying, against
 *   a leader alone under the same load (before the pair starts): whether the load generator
 *   saturates the leader whatever replication does. r3d, the lag's floor, alternating with the lag
 *   runs (`sync-latency-floor.ts`): node:fs alone making one batch durable every 2 ms, the sync a
 *   follower must wait for before it reports a batch durable; its p99 is the lowest r3 the disk allows.
 * - r4, synchronous replication: unary `Append` of one record, 64 in flight, with `min_replicas: 1`
 *   (answered once the follower reported the batch durable over ReportFollower) against the same
 *   appends without it, on the same leader and follower, alternating (`measurePair`).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WalClient } from '../src/client/wal-client.js';
import { encodedRecordBytes, encodeFrame } from '../src/codec/frame.js';
import type { GetStatsResponse } from '../src/gen/wald/v1/stats.js';
import { rawClient, startServe, unary, type ServeChild } from '../test/support/wald-serve-child.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow } from './bench/bench-part.js';
import { fillLog } from './bench/open-workloads.js';
import { measurePair } from './bench/runner.js';
import { appendRequestOf, connectBenchClient } from './bench/service-client.js';
import { unaryAppends } from './bench/service-workloads.js';
import { diskCatchUp, transportCatchUp, type CatchUpShape } from './bench/catch-up-baselines.js';
import { FLOW_CONTROL_WINDOW_BATCHES, MAX_RECEIVE_MESSAGE_BYTES } from '../src/replication/follower-node.js';
import { FOLLOWER_OPTION_DECLARATIONS } from '../src/replication/follower-options.js';
import { percentile, summarize } from './bench/summary.js';
import { syncLatencies } from './bench/sync-latency-floor.js';

const RECORD_BYTES = 100;
const FILL_BATCH_RECORDS = 1000;
/** The lag workload: a batch of 100 records every 2 ms is 50k records/s. */
const LAG_BATCH_RECORDS = 100;
const LAG_INTERVAL_MS = 2;
const LAG_MAX_IN_FLIGHT = 32;
/** Unary appends in flight in row r4, as service row 1b. */
const MIN_REPLICAS_CONCURRENCY = 64;
/**
 * Every server runs as users run it: `startServe` turns preallocation off (tests stay light), the
 * default turns it on, and an fdatasync over zero-filled blocks needs no size update.
 */
const AS_DEPLOYED = ['--preallocate'];

/** `wald serve` on `dir` with `args`, preallocating as by default. */
function serve(dir: string, args: readonly string[]): Promise<ServeChild> {
  return startServe(dir, [...args, ...AS_DEPLOYED]);
}

async function highWatermarkOf(address: string): Promise<number> {
  const raw = rawClient(address);
  try {
    const stats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
    return stats.highWatermark === undefined ? -1 : Number(stats.highWatermark);
  } finally {
    raw.close();
  }
}

/** One catch-up: a follower from zero to `records`; returns records/s. */
async function catchUp(leader: ServeChild, dir: string, records: number): Promise<number> {
  const follower = await serve(dir, ['--follow', leader.address]);
  try {
    await follower.waitForLog((line) => line['msg'] === 'replication: following');
    const start = performance.now();
    const raw = rawClient(follower.address);
    try {
      // Bounded: at most 20 minutes of polling.
      for (let polls = 0; polls < 240_000; polls++) {
        const stats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
        if (stats.highWatermark !== undefined && Number(stats.highWatermark) >= records - 1) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      raw.close();
    }
    return records / ((performance.now() - start) / 1000);
  } finally {
    await follower.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What an offered load got from the leader: acknowledgement times by last offset, append latencies (ms), records offered and acknowledged. */
interface OfferedLoad {
  readonly ackedAt: Map<number, number>;
  readonly appendLatencies: number[];
  readonly offered: number;
  readonly acknowledged: number;
}

/**
 * The lag workload's load: a batch of {@link LAG_BATCH_RECORDS} every {@link LAG_INTERVAL_MS}
 * (at most {@link LAG_MAX_IN_FLIGHT} in flight) to `address` for `runMs`. A timer of 2 ms fires
 * every 2.2 ms or later, so each wake-up sends every batch due by the clock since the start: the
 * offered rate is the nominal one (50k records/s), not the timer's. Batches that would go over
 * the in-flight cap are not sent (`offered` counts what was sent).
 */
async function offerLoad(address: string, runMs: number): Promise<OfferedLoad> {
  const writer = new WalClient(address);
  const ackedAt = new Map<number, number>();
  const appendLatencies: number[] = [];
  const value = Buffer.alloc(RECORD_BYTES, 7);
  const batch = Array.from({ length: LAG_BATCH_RECORDS }, () => ({ value }));
  let inFlight = 0;
  let offered = 0;
  let acknowledged = 0;
  let due = 0;
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  const end = start + runMs;
  try {
    for (let tick = 0; performance.now() < end && tick < 1_000_000; tick++) {
      const owed = Math.floor((performance.now() - start) / LAG_INTERVAL_MS) + 1;
      for (; due < owed; due++) {
        if (inFlight >= LAG_MAX_IN_FLIGHT) continue;
        inFlight++;
        offered += LAG_BATCH_RECORDS;
        const sentAt = performance.now();
        const p: Promise<void> = writer.append(batch).then(
          (result) => {
            const now = performance.now();
            ackedAt.set(result.lastOffset, now);
            appendLatencies.push(now - sentAt);
            acknowledged += LAG_BATCH_RECORDS;
          },
          () => undefined,
        ).finally(() => {
          inFlight--;
          pending.delete(p);
        });
        pending.add(p);
      }
      await new Promise((resolve) => setTimeout(resolve, LAG_INTERVAL_MS));
    }
    await Promise.all(pending);
  } finally {
    await writer.close();
  }
  return { ackedAt, appendLatencies, offered, acknowledged };
}

/**
 * One lag run: per-batch lags (ms) from the leader's acknowledgement to delivery by a TailWal of
 * `tailed` (the follower; or the leader itself, for the baseline).
 */
async function lagRun(leader: ServeChild, tailed: ServeChild, runMs: number): Promise<{ lags: number[]; load: OfferedLoad }> {
  const reader = new WalClient(tailed.address);
  const abort = new AbortController();
  const deliveredAt = new Map<number, number>();
  const from = (await highWatermarkOf(leader.address)) + 1;
  const tail = (async () => {
    for await (const event of reader.tail(from, { signal: abort.signal })) {
      if (event.records.length > 0) deliveredAt.set(event.nextOffset - 1, performance.now());
    }
  })();
  const load = await offerLoad(leader.address, runMs);
  const { ackedAt } = load;
  const last = Math.max(...ackedAt.keys());
  for (let waited = 0; ![...deliveredAt.keys()].some((offset) => offset >= last) && waited < 10_000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  abort.abort();
  await tail.catch(() => undefined);
  await reader.close();
  const deliveries = [...deliveredAt.entries()].sort((a, b) => a[0] - b[0]);
  const lags: number[] = [];
  let i = 0;
  for (const [offset, acked] of [...ackedAt.entries()].sort((a, b) => a[0] - b[0])) {
    while (i < deliveries.length && deliveries[i]![0] < offset) i++;
    if (i < deliveries.length) lags.push(Math.max(0, deliveries[i]![1] - acked));
  }
  return { lags, load };
}

/** What a follower asks for per message by default (`replication.max_batch_bytes`). */
const MAX_BATCH_BYTES = FOLLOWER_OPTION_DECLARATIONS.replication.members.maxBatchBytes.default;
/** RawFrame fields around one frame in a frames-mode message (tag, length, offset, count, epoch, CRC), about. */
const RAW_FRAME_FIELD_BYTES = 32;

/**
 * The messages a leader sends for a catch-up of a log of `fileBytes` holding `records` in frames of
 * {@link FILL_BATCH_RECORDS}: as many whole frames as fit in `max_batch_bytes`, with their fields.
 */
function catchUpShape(fileBytes: number, records: number): CatchUpShape {
  const frames = Math.ceil(records / FILL_BATCH_RECORDS);
  const frameBytes = Math.ceil(fileBytes / frames);
  const framesPerMessage = Math.max(1, Math.floor(MAX_BATCH_BYTES / frameBytes));
  return { messageBytes: framesPerMessage * (frameBytes + RAW_FRAME_FIELD_BYTES), messages: Math.ceil(frames / framesPerMessage), records };
}

/** Runs the replication part. */
export async function runReplicationBench(config: BenchConfig): Promise<BenchPartResult> {
  const dir = fs.mkdtempSync(join(config.scratchDir, 'replication-'));
  const temp = { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
  const rows: BenchRow[] = [];
  const setup: string[] = [];
  try {
    const records = config.tailRecords;
    const leaderDir = join(temp.dir, 'leader');
    config.progress(`replication: filling a leader log with ${records} records`);
    const filled = await fillLog(leaderDir, Array.from({ length: FILL_BATCH_RECORDS }, () => ({ value: Buffer.alloc(RECORD_BYTES, 1) })), { records });
    const leader = await serve(leaderDir, ['--sync-policy', 'always']);
    const rates: number[] = [];
    const transportRates: number[] = [];
    const diskRates: number[] = [];
    const shape = catchUpShape(filled.fileBytes, records);
    const channel = { flowControlWindowBytes: FLOW_CONTROL_WINDOW_BATCHES * MAX_BATCH_BYTES, maxReceiveMessageBytes: MAX_RECEIVE_MESSAGE_BYTES };
    try {
      // Alternating, so that the machine's load weighs on the row and its ceilings alike.
      for (let run = 0; run < config.runs; run++) {
        config.progress(`replication: catch-up run ${run + 1} (wald, then grpc-js alone, then node:fs alone)`);
        rates.push(await catchUp(leader, join(temp.dir, `catch-up-${run}`), records));
        transportRates.push(await transportCatchUp(shape, channel));
        diskRates.push(diskCatchUp(temp.dir, shape));
      }
    } finally {
      await leader.stop();
    }
    const shapeNote = `${shape.messages} messages of ${shape.messageBytes.toLocaleString('en')} B (the leader's, at max_batch_bytes ${MAX_BATCH_BYTES.toLocaleString('en')})`;
    rows.push(
      makeRow({
        id: 'r1',
        name: `follower catch-up from zero, ${records.toLocaleString('en')} records of ${RECORD_BYTES} B`,
        unit: 'records/s',
        wald: summarize(rates),
        target: { kind: 'at-least', value: 3_000_000 },
        baseline: { name: 'r1t, the transport alone (below)', summary: summarize(transportRates) },
        notes: [`${filled.segments} segments, ${(filled.fileBytes / 2 ** 20).toFixed(0)} MiB of segment files`],
      }),
    );
    rows.push(
      makeRow({
        id: 'r1t',
        name: 'ceiling: grpc-js alone streaming the same bytes to a client that drops them, records-equivalent',
        unit: 'records/s',
        wald: summarize(transportRates),
        notes: [shapeNote, 'a no-op server process (scripts/bench/frame-flood-child.ts), the follower\'s channel settings'],
      }),
    );
    rows.push(
      makeRow({
        id: 'r1d',
        name: 'ceiling: node:fs alone writing the same bytes, one fdatasync per message, records-equivalent',
        unit: 'records/s',
        wald: summarize(diskRates),
        notes: [shapeNote],
      }),
    );

    // The lag rows' baseline: the same load on a leader alone (no follower, no frames tail), so
    // that what the leader does under the load generator is told from what replication adds.
    const soloLeader = await serve(join(temp.dir, 'solo-leader'), ['--sync-policy', 'always']);
    const soloRates: number[] = [];
    const soloP99s: number[] = [];
    const soloLagP50s: number[] = [];
    const soloLagP99s: number[] = [];
    const withFollowerAppendP99s: number[] = [];
    try {
      // JIT and the first segment's growth: none of it in the runs.
      if (config.warmupMs > 0) {
        config.progress(`replication: lag baseline warm-up, ${config.warmupMs} ms`);
        await lagRun(soloLeader, soloLeader, config.warmupMs);
      }
      for (let run = 0; run < config.runs; run++) {
        config.progress(`replication: lag baseline run ${run + 1}, the leader alone, tailed by a TailWal of its own`);
        const { lags, load } = await lagRun(soloLeader, soloLeader, config.runMs * 3);
        soloRates.push(load.acknowledged / ((config.runMs * 3) / 1000));
        soloP99s.push(percentile(load.appendLatencies, 99));
        soloLagP50s.push(percentile(lags, 50));
        soloLagP99s.push(percentile(lags, 99));
      }
    } finally {
      await soloLeader.stop();
    }

    const lagLeader = await serve(join(temp.dir, 'lag-leader'), ['--sync-policy', 'always']);
    const lagFollower = await serve(join(temp.dir, 'lag-follower'), ['--follow', lagLeader.address]);
    const p50s: number[] = [];
    const p99s: number[] = [];
    const rates50k: number[] = [];
    const floorP50s: number[] = [];
    const floorP99s: number[] = [];
    // One lag batch's frame as the follower stores it (the load's appends carry no key).
    const lagBatch = Array.from({ length: LAG_BATCH_RECORDS }, () => ({ value: Buffer.alloc(RECORD_BYTES, 7) }));
    const batchBytes = encodeFrame(lagBatch, lagBatch.reduce((sum, record) => sum + encodedRecordBytes(record), 0)).length;
    let minReplicas: Awaited<ReturnType<typeof measurePair>> | undefined;
    try {
      await lagFollower.waitForLog((line) => line['msg'] === 'replication: following');
      if (config.warmupMs > 0) {
        config.progress(`replication: lag warm-up, ${config.warmupMs} ms`);
        await lagRun(lagLeader, lagFollower, config.warmupMs);
      }
      for (let run = 0; run < config.runs; run++) {
        config.progress(`replication: lag run ${run + 1}`);
        const { lags, load } = await lagRun(lagLeader, lagFollower, config.runMs * 3);
        p50s.push(percentile(lags, 50));
        p99s.push(percentile(lags, 99));
        rates50k.push(load.acknowledged / ((config.runMs * 3) / 1000));
        withFollowerAppendP99s.push(percentile(load.appendLatencies, 99));
        config.progress(`replication: lag floor run ${run + 1}, node:fs alone, write + fdatasync of ${batchBytes} B every ${LAG_INTERVAL_MS} ms`);
        const syncs = await syncLatencies(temp.dir, batchBytes, LAG_INTERVAL_MS, config.runMs * 3);
        floorP50s.push(percentile(syncs, 50));
        floorP99s.push(percentile(syncs, 99));
      }
      config.progress(`replication: r4, unary Append with min_replicas: 1 vs without, ${MIN_REPLICAS_CONCURRENCY} in flight`);
      const plain = appendRequestOf(Buffer.alloc(RECORD_BYTES, 2), 1);
      minReplicas = await measurePair(
        config,
        unaryAppends(connectBenchClient(lagLeader.address), { ...plain, minReplicas: 1 }, MIN_REPLICAS_CONCURRENCY),
        unaryAppends(connectBenchClient(lagLeader.address), plain, MIN_REPLICAS_CONCURRENCY),
      );
    } finally {
      await lagFollower.stop();
      await lagLeader.stop();
    }
    const load = `${Math.round(summarize(rates50k).median).toLocaleString('en')} records/s acknowledged of 50,000 offered (after a ${config.warmupMs} ms warm-up run)`;
    const soloLoad = `${Math.round(summarize(soloRates).median).toLocaleString('en')} records/s acknowledged of 50,000 offered (after a ${config.warmupMs} ms warm-up run)`;
    const soloTail = `the leader alone, ack to delivery by a TailWal of the leader itself (${soloLoad})`;
    rows.push(makeRow({ id: 'r2', name: 'replication lag p50, leader ack to follower durable', unit: 'ms', wald: summarize(p50s), baseline: { name: soloTail, summary: summarize(soloLagP50s) }, notes: [load] }));
    rows.push(
      makeRow({
        id: 'r3',
        name: 'replication lag p99, leader ack to follower durable',
        unit: 'ms',
        wald: summarize(p99s),
        baseline: { name: soloTail, summary: summarize(soloLagP99s) },
        target: { kind: 'at-most', value: 5 },
        notes: [load],
      }),
    );
    rows.push(
      makeRow({
        id: 'r3d',
        name: 'floor: node:fs alone, write + fdatasync of one lag batch into a zero-filled file every 2 ms, p99 of each sync',
        unit: 'ms',
        wald: summarize(floorP99s),
        notes: [`${batchBytes.toLocaleString('en')} B per sync (${LAG_BATCH_RECORDS} records as the follower stores them); p50 ${summarize(floorP50s).median.toFixed(2)} ms; alternating with the lag runs`],
      }),
    );
    rows.push(
      makeRow({
        id: 'r3a',
        name: 'the same load\'s `Append` latency p99 (send to ack), with the follower copying',
        unit: 'ms',
        wald: summarize(withFollowerAppendP99s),
        baseline: { name: `the leader alone, no follower (${soloLoad})`, summary: summarize(soloP99s) },
        notes: [load],
      }),
    );
    rows.push(
      makeRow({
        id: 'r4',
        name: `\`Append\` unary, 1 record of ${RECORD_BYTES} B, \`always\`, ${MIN_REPLICAS_CONCURRENCY} in flight, \`min_replicas: 1\``,
        unit: 'records/s',
        wald: minReplicas!.wald,
        baseline: { name: 'the same appends without min_replicas (same leader, the follower copying)', summary: minReplicas!.baseline! },
        notes: minReplicas!.recordsPerFsync === undefined ? [] : [`leader records per fsync: ${minReplicas!.recordsPerFsync.toFixed(1)}`],
      }),
    );
    setup.push(
      `wald serve children on 127.0.0.1, sync always on leader and follower; ${config.runs} runs; catch-up over ${records} records; ` +
        `lag: batches of ${LAG_BATCH_RECORDS} every ${LAG_INTERVAL_MS} ms (at most ${LAG_MAX_IN_FLIGHT} in flight) for ${config.runMs * 3} ms, ` +
        'measured to delivery by a TailWal of the follower (sent only once the follower synced)',
    );
    return { part: 'replication', rows, setup };
  } finally {
    temp.remove();
  }
}
