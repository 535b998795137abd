/**
 * The security part of `npm run bench` (`npm run bench -- security`): what TLS and bearer tokens
 * cost on the service's hot paths, each row a wald server with the feature against a wald server
 * without it, measured in the same run and alternating. Unary `Append` pays the token check (a
 * SHA-256 and one constant-time compare per entry) on every call, streams once per stream; TLS
 * pays encryption on every byte. The certificate (P-256) is made with `openssl` for the run.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { AppendRecord } from '../src/index.js';
import { Metadata } from '@grpc/grpc-js';
import { pino } from 'pino';
import { bearerValueOf, hashAccessToken } from '../src/server/auth/access-token.js';
import { parseAuthFile } from '../src/server/auth/auth-file.js';
import { TokenAuthenticator } from '../src/server/auth/token-authenticator.js';
import type { ServerOptions } from '../src/server/server-options.js';
import { makeTestCa, signTestCertificate } from '../test/support/test-certificates.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow, type BenchTarget } from './bench/bench-part.js';
import { RECORD_BYTES } from './bench/fs-baselines.js';
import { fillLog } from './bench/open-workloads.js';
import { processCpuMs } from './bench/cpu-share.js';
import { measurePair, runSyncFor, type Measurement, type Runner } from './bench/runner.js';
import { startServerProcess, type ServerProcess } from './bench/server-process.js';
import { appendRequestOf, connectBenchClient, type BenchClientOptions } from './bench/service-client.js';
import { streamedAppends, tailCatchUp, unaryAppends, type TailFacts } from './bench/service-workloads.js';
import { summarize } from './bench/summary.js';

/** Unary appends in flight, as service row 1b. */
const UNARY_CONCURRENCY = 64;
/** AppendStream batch and window, as service row 2. */
const STREAM_BATCH_RECORDS = 64;
const STREAM_WINDOW = 64;
/** TailWal bounds and client window, as service row 3. */
const TAIL_BATCH = { maxRecords: 1000, maxBytes: 0 } as const;
const TAIL_CLIENT_WINDOW_BYTES = 4 * 1024 * 1024;
/** Tokens in the auth file: a realistic handful, all compared on every check. */
const AUTH_FILE_TOKENS = 16;
/** TLS may cost at most 15 % of durable AppendStream throughput (issue 11). */
const TLS_STREAM_TARGET: BenchTarget = { kind: 'ratio-at-least', value: 0.85 };

/** What each run of one side of a row spent: server and client CPU per record (µs), and records per fdatasync. */
interface RunFacts {
  readonly server: number[];
  readonly client: number[];
  readonly recordsPerFsync: number[];
}

/**
 * Wraps `runner` so that each run also records the CPU time the server process `serverPid` and
 * this process spent per record, µs, and the records each fdatasync covered. On a machine shared
 * with other work, the throughput of a run moves with the load; the CPU spent per record moves
 * much less, so it says better what a feature costs. Under `always` it still follows the group
 * commits: a side whose disk was slower in its runs commits fewer records per fdatasync and
 * spreads each commit's fixed CPU (the fdatasync, the writer's flush, the view's read-back) over
 * fewer records, so the notes give records per fdatasync beside it.
 */
function cpuPerRecord(runner: Runner, serverPid: number, into: RunFacts): Runner {
  return {
    run: async (runMs): Promise<Measurement> => {
      const server = processCpuMs(serverPid);
      const client = process.cpuUsage();
      const measurement = await runner.run(runMs);
      const used = process.cpuUsage(client);
      if (measurement.records > 0) {
        into.server.push(((processCpuMs(serverPid) - server) * 1000) / measurement.records);
        into.client.push((used.user + used.system) / measurement.records);
        if (measurement.fsyncs !== undefined && measurement.fsyncs > 0) into.recordsPerFsync.push(measurement.records / measurement.fsyncs);
      }
      return measurement;
    },
    close: () => runner.close(),
  };
}

/** Most token checks in one run of row s0. */
const MAX_CHECKS_PER_RUN = 5_000_000;

/**
 * Row s0: the token check alone, in this process, as `admit()` runs it for each call (read the
 * metadata, hash the token, compare with every entry, check the role): checks per second.
 */
function tokenChecks(authFileText: string, token: string): Runner {
  const authenticator = new TokenAuthenticator(parseAuthFile(authFileText, 'bench'), pino({ level: 'silent' }), () => {}, 10);
  const metadata = new Metadata();
  metadata.set('authorization', bearerValueOf(token));
  const rpc = { name: 'Append', role: 'write' } as const;
  return {
    run: async (runMs) =>
      runSyncFor(
        () => {
          for (let i = 0; i < 1000; i++) authenticator.admit(rpc, metadata, () => 'bench');
          return 1000;
        },
        runMs,
        MAX_CHECKS_PER_RUN,
      ),
    close: async () => {},
  };
}

/** A server variant: its options, and how its clients connect. */
interface Variant {
  readonly label: string;
  readonly options: ServerOptions;
  readonly client: BenchClientOptions;
}

/** Runs the security part and returns its rows. */
export async function runSecurityBench(config: BenchConfig): Promise<BenchPartResult> {
  const dir = join(config.scratchDir, 'security');
  fs.mkdirSync(dir, { recursive: true });
  const servers: ServerProcess[] = [];
  try {
    const ca = makeTestCa(dir, 'bench-ca');
    const certificate = signTestCertificate(ca, 'bench-server', 'server');
    const caPem = fs.readFileSync(ca.cert);
    const token = randomBytes(32).toString('hex');
    const authFile = join(dir, 'auth.yaml');
    const others = Array.from({ length: AUTH_FILE_TOKENS - 1 }, () => hashAccessToken(randomBytes(32).toString('hex')));
    const authText = `tokens:\n${[...others, hashAccessToken(token)].map((hash) => `  - token_sha256: ${hash}\n    role: write\n`).join('')}`;
    fs.writeFileSync(authFile, authText);
    const plain: Variant = { label: 'plaintext, no token', options: {}, client: {} };
    const tls: Variant = { label: 'TLS', options: { tlsCert: certificate.cert, tlsKey: certificate.key }, client: { tlsCa: caPem } };
    const auth: Variant = { label: 'auth file + bearer token', options: { authFile }, client: { token } };

    const start = async (variant: Variant, name: string): Promise<ServerProcess> => {
      const dataDir = join(dir, name);
      fs.mkdirSync(dataDir, { recursive: true });
      const server = await startServerProcess({ kind: 'wald', dir: dataDir, options: variant.options }, config.serverNodeArgs);
      servers.push(server);
      return server;
    };
    config.progress('security: starting plaintext, TLS and auth wald servers');
    const [plainServer, tlsServer, authServer] = [await start(plain, 'plain'), await start(tls, 'tls'), await start(auth, 'auth')];
    const value = randomBytes(RECORD_BYTES);
    const unary = (address: string, client: BenchClientOptions): Runner => unaryAppends(connectBenchClient(address, client), appendRequestOf(value, 1), UNARY_CONCURRENCY);
    const streamed = (address: string, client: BenchClientOptions): Runner =>
      streamedAppends(connectBenchClient(address, client), appendRequestOf(value, STREAM_BATCH_RECORDS), STREAM_WINDOW);
    if (config.warmupMs > 0) {
      // Every server sees both workloads before the first row: one that meets its first calls in a
      // measured row pays its JIT compiles there, against a plaintext server warmed by the rows
      // before (s1b's auth server did, measured cold against a warm one).
      config.progress(`security: warm-up (${config.warmupMs} ms per server)`);
      const share = Math.max(1, Math.floor(config.warmupMs / 2));
      for (const [server, variant] of [[plainServer, plain], [tlsServer, tls], [authServer, auth]] as const) {
        for (const make of [unary, streamed]) {
          const runner = make(server.address, variant.client);
          await runner.run(share);
          await runner.close();
        }
      }
    }
    const rows: BenchRow[] = [];
    config.progress(`security: s0, the token check alone (${AUTH_FILE_TOKENS} entries)`);
    const checks = await measurePair(config, tokenChecks(authText, token));
    rows.push(makeRow({ id: 's0', name: `token check of one call in \`admit()\` (${AUTH_FILE_TOKENS} entries, in process)`, unit: 'records/s', wald: checks.wald, notes: ['records/s here: checks per second; 1e6 / figure = µs per call'] }));
    type RunnerOf = (address: string, client: BenchClientOptions) => Runner;
    const pairRow = async (id: string, name: string, variant: Variant, servers: { readonly with: ServerProcess; readonly without: ServerProcess }, runnerOf: RunnerOf, target?: BenchTarget): Promise<void> => {
      config.progress(`security: ${id}, ${name}, ${variant.label} vs plaintext`);
      const withCpu: RunFacts = { server: [], client: [], recordsPerFsync: [] };
      const withoutCpu: RunFacts = { server: [], client: [], recordsPerFsync: [] };
      const pair = await measurePair(
        config,
        cpuPerRecord(runnerOf(servers.with.address, variant.client), servers.with.pid, withCpu),
        cpuPerRecord(runnerOf(servers.without.address, plain.client), servers.without.pid, withoutCpu),
      );
      // The warm-up run comes first; the measured runs are the last ones.
      const median = (values: readonly number[]): number => summarize(values.slice(-config.runs)).median;
      const cpu = (side: 'server' | 'client'): string => {
        const [a, b] = [median(withCpu[side]), median(withoutCpu[side])];
        return `${side} ${a.toFixed(2)} µs with, ${b.toFixed(2)} µs without (${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(0)} %)`;
      };
      const notes = [`CPU per record (median of runs): ${cpu('server')}; ${cpu('client')}`];
      if (withCpu.recordsPerFsync.length > 0 && withoutCpu.recordsPerFsync.length > 0) {
        notes.push(`records per fdatasync (median of runs): ${median(withCpu.recordsPerFsync).toFixed(1)} with, ${median(withoutCpu.recordsPerFsync).toFixed(1)} without`);
      }
      rows.push(makeRow({ id, name: `${name}: ${variant.label}`, unit: 'records/s', wald: pair.wald, baseline: { name: 'the same wald server, plaintext, no token', summary: pair.baseline! }, target, notes }));
    };
    const unaryName = `\`Append\` unary, 1 record, \`always\`, ${UNARY_CONCURRENCY} in flight`;
    const streamName = `\`AppendStream\`, ${STREAM_BATCH_RECORDS} records per message, \`always\`, ${STREAM_WINDOW} in flight`;
    await pairRow('s1a', unaryName, tls, { with: tlsServer, without: plainServer }, unary);
    await pairRow('s1b', unaryName, auth, { with: authServer, without: plainServer }, unary);
    await pairRow('s2a', streamName, tls, { with: tlsServer, without: plainServer }, streamed, TLS_STREAM_TARGET);
    await pairRow('s2b', streamName, auth, { with: authServer, without: plainServer }, streamed);
    await Promise.all(servers.splice(0).map((server) => server.stop()));

    config.progress(`security: s3, writing ${config.tailRecords} records twice for the TailWal catch-up`);
    const fillBatch: AppendRecord[] = Array.from({ length: STREAM_BATCH_RECORDS }, () => ({ value: randomBytes(RECORD_BYTES) }));
    await fillLog(join(dir, 'tail-plain'), fillBatch, { records: config.tailRecords });
    await fillLog(join(dir, 'tail-tls'), fillBatch, { records: config.tailRecords });
    const tailPlain = await start(plain, 'tail-plain');
    const tailTls = await start(tls, 'tail-tls');
    const facts: TailFacts = { messages: 0, firstRecordMs: 0 };
    const tail = (address: string, client: BenchClientOptions): Runner =>
      tailCatchUp(connectBenchClient(address, { ...client, flowControlWindowBytes: TAIL_CLIENT_WINDOW_BYTES }), config.tailRecords, TAIL_BATCH, facts);
    await pairRow('s3', `\`TailWal\` catch-up of ${config.tailRecords.toLocaleString('en-US')} records`, tls, { with: tailTls, without: tailPlain }, tail);
    return {
      part: 'security',
      rows,
      setup: [
        `records: ${RECORD_BYTES}-byte value; every server a wald child process with \`always\` durability, data under ./bench-tmp/; client in this process, on 127.0.0.1`,
        `TLS: a P-256 certificate made by openssl for the run, the client trusting its CA (grpc-js and Node's TLS choose the cipher: TLS 1.3, AES-128-GCM or ChaCha20 by CPU); auth: an auth file of ${AUTH_FILE_TOKENS} tokens (role write), the client sending the last`,
        `every figure: median (min–max) of ${config.runs} runs of ${config.runMs} ms (catch-up: one pass each), the server with the feature and the plaintext one alternating after one warm-up run per row; before the rows, each of the three servers ran unary Append and AppendStream for ${config.warmupMs} ms in all (the catch-up servers get no warm-up beyond their row's)`,
      ],
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
