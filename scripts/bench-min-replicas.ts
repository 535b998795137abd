/**
 * The min-replicas part of `npm run bench` (`npm run bench -- min-replicas`): what synchronous
 * replication (`min_replicas: 1`) costs a durable unary `Append`, against the same appends
 * without it, on the same leader in the same run, alternating. The leader is a wald child process
 * (`always`); the follower copies the leader's log into a log of its own (`always`: acknowledged
 * after its own fdatasync) and reports each durable next offset over ReportFollower, as a follower
 * does. Until `wald serve --follow` is merged here, the follower is this bench's own loop in this
 * process: TailWal (records mode, from the end), `Wal.append` of each message's records, then a
 * report; the real follower copies frames instead of records (no re-encoding), otherwise the same
 * path: a network hop, an fsync on the follower, a report.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { ClientReadableStream, ClientWritableStream } from '@grpc/grpc-js';
import { Wal } from '../src/engine/wal.js';
import type { AppendRequest } from '../src/gen/wald/v1/append.js';
import type { ReportFollowerRequest } from '../src/gen/wald/v1/replication.js';
import { TailWalRequest, type TailWalResponse } from '../src/gen/wald/v1/tail.js';
import type { WalServiceClient } from '../src/gen/wald/v1/wal_service.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow } from './bench/bench-part.js';
import { RECORD_BYTES } from './bench/fs-baselines.js';
import { measurePair } from './bench/runner.js';
import { startServerProcess, type ServerProcess } from './bench/server-process.js';
import { appendRequestOf, connectBenchClient } from './bench/service-client.js';
import { unaryAppends } from './bench/service-workloads.js';

/** Unary appends in flight, as service row 1b. */
const UNARY_CONCURRENCY = 64;

/** The bench's follower: a log of its own fed from the leader's tail, reporting what it holds durably. */
interface BenchFollower {
  /** Messages copied (each one append and one report). */
  readonly copied: () => number;
  close(): Promise<void>;
}

/**
 * Starts the follower loop: tails `client` from the end, appends each message's records to its own
 * log at `dir` (`always`), and reports the log's durable next offset after each append. Appends
 * one message at a time, in order, as a follower must.
 */
async function startFollower(client: WalServiceClient, dir: string, leaderNextOffset: number): Promise<BenchFollower> {
  const { wal } = await Wal.open({ dir, syncPolicy: 'always', preallocate: false });
  const reports: ClientWritableStream<ReportFollowerRequest> = client.reportFollower(() => undefined);
  // The follower's log starts empty; what it reports is the leader's offset it holds up to.
  let next = leaderNextOffset;
  let copied = 0;
  const tail: ClientReadableStream<TailWalResponse> = client.tailWal(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: BigInt(leaderNextOffset) }, maxRecords: 1000 }));
  let chain = Promise.resolve();
  tail.on('data', (message: TailWalResponse) => {
    if (message.records.length === 0) return;
    tail.pause();
    chain = chain.then(async () => {
      await wal.append(message.records.map((record) => ({ value: record.value })));
      next = Number(message.records[message.records.length - 1]!.offset) + 1;
      copied++;
      reports.write({ followerId: 'bench-follower', durableNextOffset: BigInt(next), address: '', epoch: 0n });
      tail.resume();
    });
  });
  tail.on('error', () => undefined);
  reports.write({ followerId: 'bench-follower', durableNextOffset: BigInt(next), address: '', epoch: 0n });
  return {
    copied: () => copied,
    async close() {
      tail.cancel();
      reports.end();
      await chain;
      await wal.close();
    },
  };
}

/** The leader's next offset now. */
function nextOffsetOf(client: WalServiceClient): Promise<number> {
  return new Promise((resolve, reject) => client.getStats({}, (error, stats) => (error ? reject(error) : resolve(Number(stats.nextOffset)))));
}

/** Runs the min-replicas part and returns its rows. */
export async function runMinReplicasBench(config: BenchConfig): Promise<BenchPartResult> {
  const dir = join(config.scratchDir, 'min-replicas');
  fs.mkdirSync(join(dir, 'leader'), { recursive: true });
  let server: ServerProcess | undefined;
  let follower: BenchFollower | undefined;
  try {
    config.progress('min-replicas: starting the leader and the follower');
    server = await startServerProcess({ kind: 'wald', dir: join(dir, 'leader') }, config.serverNodeArgs);
    const followerClient = connectBenchClient(server.address);
    follower = await startFollower(followerClient, join(dir, 'follower'), await nextOffsetOf(followerClient));
    const value = randomBytes(RECORD_BYTES);
    const plain = appendRequestOf(value, 1);
    const replicated: AppendRequest = { ...plain, minReplicas: 1 };
    config.progress(`min-replicas: m1, unary Append with min_replicas: 1 vs without, ${UNARY_CONCURRENCY} in flight`);
    const pair = await measurePair(
      config,
      unaryAppends(connectBenchClient(server.address), replicated, UNARY_CONCURRENCY),
      unaryAppends(connectBenchClient(server.address), plain, UNARY_CONCURRENCY),
    );
    const rows: BenchRow[] = [
      makeRow({
        id: 'm1',
        name: `\`Append\` unary, 1 record, \`always\`, ${UNARY_CONCURRENCY} in flight, \`min_replicas: 1\``,
        unit: 'records/s',
        wald: pair.wald,
        baseline: { name: 'the same appends without min_replicas (the follower still copying)', summary: pair.baseline! },
        notes: [`follower messages copied: ${follower.copied()}`, ...(pair.recordsPerFsync === undefined ? [] : [`leader records per fsync: ${pair.recordsPerFsync.toFixed(1)}`])],
      }),
    ];
    followerClient.close();
    return {
      part: 'min-replicas',
      rows,
      setup: [
        `records: ${RECORD_BYTES}-byte value; the leader a wald child process with \`always\` durability, data under ./bench-tmp/; clients on 127.0.0.1`,
        'the follower: this bench\'s own loop in the client process (TailWal from the end, Wal.append under `always`, then ReportFollower), ' +
          'standing in for `wald serve --follow` (not merged on this branch); the leader pays for the tail in both rows',
        `every figure: median (min–max) of ${config.runs} runs of ${config.runMs} ms, the two rows alternating after one warm-up run`,
      ],
    };
  } finally {
    await follower?.close();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
