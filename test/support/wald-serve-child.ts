/**
 * A `wald serve` child process for the replication tests: a leader or a follower (`--follow`) on
 * 127.0.0.1, started and awaited until it listens, stopped with SIGTERM or killed with SIGKILL; and
 * the checks those tests share (records of a log, segment files compared over their used bytes).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { WalClient } from '../../src/client/wal-client.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../../src/codec/segment-header.js';
import { align8 } from '../../src/codec/align.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import { ChildOutput, parseLog, spawnWald, type LogLine, type WaldRun } from './cli-process.js';

/** A running `wald serve` child. */
export interface ServeChild {
  readonly output: ChildOutput;
  /** HOST:PORT it listens on. */
  readonly address: string;
  readonly port: number;
  readonly dataDir: string;
  /** SIGTERM, and the run once it exited. */
  stop(): Promise<WaldRun>;
  /** SIGKILL, and the run once it exited. */
  kill(): Promise<WaldRun>;
  /** Resolves with the first log line `matches` accepts (printed already or to come). */
  waitForLog(matches: (line: LogLine) => boolean): Promise<LogLine>;
}

/**
 * Starts `wald serve --data-dir dataDir --listen 127.0.0.1:port ...args` (port 0: any) and resolves
 * once it logs `wald listening`. Followers get short backoffs, so tests do not wait for seconds.
 */
export async function startServe(dataDir: string, args: readonly string[] = [], port = 0): Promise<ServeChild> {
  const isFollower = args.includes('--follow');
  const child = spawnWald([
    'serve',
    '--listen', `127.0.0.1:${port}`,
    '--data-dir', dataDir,
    '--no-preallocate',
    '--shutdown-grace-ms', '200',
    '--tail-heartbeat-interval-ms', '200',
    ...(isFollower ? ['--replication-initial-backoff-ms', '20', '--replication-max-backoff-ms', '200'] : []),
    ...args,
  ]);
  const output = new ChildOutput(child);
  child.stdin.end();
  const listening = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'));
  const address = listening?.['address'];
  assert.equal(typeof address, 'string');
  const bound = address as string;
  return {
    output,
    address: bound,
    port: Number(bound.slice(bound.lastIndexOf(':') + 1)),
    dataDir,
    async stop() {
      child.kill('SIGTERM');
      return output.exited;
    },
    async kill() {
      child.kill('SIGKILL');
      const run = await output.exited;
      assert.equal(run.signal, 'SIGKILL');
      return run;
    },
    async waitForLog(matches) {
      return parseLog(await output.waitForLine((line) => {
        const parsed = parseLog(line);
        return parsed !== undefined && matches(parsed);
      }))!;
    },
  };
}

/** A raw client of `address` (the generated stubs), for calls WalClient does not make. */
export function rawClient(address: string): WalServiceClient {
  return new WalServiceClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

/** A unary call of the raw client as a promise. */
export function unary<T>(start: (callback: (error: Error | null, response: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, response) => (error === null ? resolve(response) : reject(error))));
}

/**
 * Resolves once the log at `address` holds (durably) every offset below `nextOffset`: GetStats
 * polled every 20 ms (through restarts of the server), for at most `timeoutMs`.
 */
export async function waitForNextOffset(address: string, nextOffset: number, timeoutMs = 60_000): Promise<void> {
  const client = rawClient(address);
  let reached = -1;
  try {
    for (let waited = 0; waited < timeoutMs; waited += 20) {
      const stats = await unary<GetStatsResponse>((callback) => client.getStats({}, new Metadata(), { deadline: Date.now() + 5000 }, callback)).catch(() => undefined);
      reached = stats?.highWatermark === undefined ? reached : Number(stats.highWatermark) + 1;
      if (reached >= nextOffset) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    client.close();
  }
  assert.fail(`${address} reached offset ${reached}, not ${nextOffset}, within ${timeoutMs} ms`);
}

/** Every record of the log at `address` from `fromOffset` (offset, key, value as strings), in order. */
export async function readAll(address: string, fromOffset = 0): Promise<{ offset: number; key: string | undefined; value: string }[]> {
  const client = new WalClient(address);
  try {
    const out: { offset: number; key: string | undefined; value: string }[] = [];
    let next = fromOffset;
    for (let page = 0; page < 100_000; page++) {
      const { records } = await client.read(next, { limit: 1000 });
      if (records.length === 0) break;
      for (const record of records) out.push({ offset: record.offset, key: record.key?.toString('utf8'), value: record.value.toString('utf8') });
      next = records[records.length - 1]!.offset + 1;
    }
    return out;
  } finally {
    await client.close();
  }
}

/**
 * The used bytes of each segment file of a data directory, by file name: the 64-byte header and
 * the frames after it, up to the last frame's padded end (preallocation and the zeros after the
 * last frame differ between copies and do not count).
 */
export function segmentUsedBytes(dataDir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of readdirSync(dataDir).filter((n) => /^\d{20}\.seg$/.test(n)).sort()) {
    const bytes = readFileSync(join(dataDir, name));
    assert.ok(decodeSegmentHeader(bytes).ok, `${name} has a segment header`);
    let position = SEGMENT_HEADER_BYTES;
    while (position + 8 <= bytes.length) {
      const length = bytes.readUInt32LE(position);
      if (length === 0 || position + length > bytes.length) break;
      position += align8(length);
    }
    out.set(name, bytes.subarray(0, position));
  }
  return out;
}

/** grpc.health.v1 serving statuses. */
export const HEALTH = { SERVING: 1, NOT_SERVING: 2 } as const;

/**
 * The status `grpc.health.v1.Health/Check` answers for `service` at `address` (the messages are
 * encoded by hand: HealthCheckRequest is `1: service`, HealthCheckResponse `1: status`).
 */
export async function healthStatus(address: string, service: string): Promise<number> {
  const client = new Client(address, credentials.createInsecure());
  const name = Buffer.from(service, 'utf8');
  const request = Buffer.concat([Buffer.from([0x0a, name.length]), name]);
  try {
    const response = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, request, new Metadata(), {}, (error, value) =>
        error === null || error === undefined ? resolve(value!) : reject(error),
      ),
    );
    return response.length >= 2 && response[0] === 0x08 ? response[1]! : 0;
  } finally {
    client.close();
  }
}
