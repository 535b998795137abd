/**
 * WalClient against a real `wald serve` child process that is killed with SIGKILL mid-stream and
 * restarted on the same data directory and port: the client reconnects and retries, and every
 * acknowledged append is in the log exactly once; a tail resumes where it was, without gap or
 * duplicate. The appending client talks through a proxy that holds the server's answers back
 * before the kill, so that the kill always leaves appends written but unanswered (the case
 * idempotence exists for) instead of only when the timing happens to.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WalClient, type AppendResult } from '../../src/client/wal-client.js';
import { WalClientError } from '../../src/client/wal-client-error.js';
import { ChildOutput, parseLog, spawnWald } from '../support/cli-process.js';
import { FreezableProxy } from '../support/freezable-proxy.js';
import { makeTempDir } from '../support/temp-dir.js';

interface ServeChild {
  readonly output: ChildOutput;
  readonly address: string;
  kill(): Promise<void>;
  /** SIGTERM: a graceful stop, which cancels the calls still open after `--shutdown-grace-ms`. */
  stop(): Promise<void>;
}

/** Starts `wald serve` (sync policy `always`) on `127.0.0.1:port` over `dataDir`; resolves once it listens. */
async function startServe(dataDir: string, port: number, extraArgs: readonly string[] = []): Promise<ServeChild> {
  const child = spawnWald(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--sync-policy', 'always', ...extraArgs]);
  const output = new ChildOutput(child);
  child.stdin.end();
  const listening = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'));
  const address = listening?.address;
  assert.equal(typeof address, 'string');
  return {
    output,
    address: address as string,
    async kill() {
      child.kill('SIGKILL');
      const run = await output.exited;
      assert.equal(run.signal, 'SIGKILL');
    },
    async stop() {
      child.kill('SIGTERM');
      await output.exited;
    },
  };
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** Resolves once the log behind `address` holds at least `count` records (a tail of its own). */
async function waitForRecords(address: string, count: number): Promise<void> {
  const watcher = new WalClient(address);
  const abort = new AbortController();
  try {
    for await (const event of watcher.tail(0, { signal: abort.signal })) {
      if (event.nextOffset >= count) abort.abort();
    }
  } finally {
    await watcher.close();
  }
}

const clientOptions = { retryDeadlineMs: 60_000, initialBackoffMs: 20, maxBackoffMs: 200 } as const;

describe('WalClient across a SIGKILL or a stop and restart of the server', { timeout: 180_000 }, () => {
  test('idempotent retries write every acknowledged append exactly once', async (t) => {
    const temp = makeTempDir('wald-client-kill9-');
    const dataDir = join(temp.dir, 'data');
    let server = await startServe(dataDir, 0);
    const port = portOf(server.address);
    const proxy = await FreezableProxy.start(server.address);
    const client = new WalClient(proxy.address, { ...clientOptions, maxAppendsPerMessage: 8 });
    try {
      const workers = 32;
      const perWorker = 50;
      const killAfterAcks = 400;
      let acks = 0;
      let onKillPoint: () => void = () => {};
      const killPoint = new Promise<void>((resolve) => (onKillPoint = resolve));
      const restarted = killPoint.then(async () => {
        proxy.freeze();
        // At least 16 appends written whose answers the client cannot have seen.
        await waitForRecords(server.address, 2 * acks + 32);
        await server.kill();
        server = await startServe(dataDir, port);
        proxy.cutAndThaw();
      });
      const acked: { value: string; result: AppendResult }[] = [];
      await Promise.all(
        Array.from({ length: workers }, async (_, w) => {
          for (let i = 0; i < perWorker; i++) {
            const value = `w${w}-${i}`;
            const result = await client.append([{ value: Buffer.from(value) }, { value: Buffer.from(`${value}-b`) }]);
            acked.push({ value, result });
            if (++acks === killAfterAcks) onKillPoint();
          }
        }),
      );
      await restarted;
      const counters = client.appendCounters();
      const duplicates = acked.filter((a) => a.result.duplicate).length;
      t.diagnostic(`${counters.retriedAppends} appends retried, ${duplicates} acknowledged as duplicates, ${counters.streamsOpened} streams`);
      assert.ok(duplicates >= 16, 'the appends written before the kill were acknowledged as duplicates');
      const values: string[] = [];
      for await (const page of client.range(0)) values.push(...page.records.map((r) => r.value.toString()));
      assert.equal(acked.length, workers * perWorker);
      assert.equal(values.length, 2 * workers * perWorker, 'no append is in the log twice, none is missing');
      assert.equal(new Set(values).size, values.length);
      for (const { value, result } of acked) {
        assert.equal(values[result.firstOffset], value, `${value} is where its acknowledgement says`);
        assert.equal(values[result.lastOffset], `${value}-b`);
      }
    } finally {
      await client.close();
      await proxy.close();
      await server.kill().catch(() => undefined);
      temp.remove();
    }
  });

  test('a tail resumes from where it was, without gap or duplicate', async () => {
    const temp = makeTempDir('wald-client-tail-');
    const dataDir = join(temp.dir, 'data');
    let server = await startServe(dataDir, 0);
    const writer = new WalClient(server.address, clientOptions);
    const reader = new WalClient(server.address, clientOptions);
    const abort = new AbortController();
    try {
      const half = 100;
      for (let i = 0; i < half / 10; i++) await writer.append(Array.from({ length: 10 }, (_, j) => ({ value: Buffer.from(`r${10 * i + j}`) })));
      const seen: number[] = [];
      let restart: Promise<void> | undefined;
      for await (const event of reader.tail(0, { signal: abort.signal, maxRecords: 7 })) {
        seen.push(...event.records.map((r) => r.offset));
        if (restart === undefined && seen.length >= half / 2) {
          // Killed while the tail is still catching up, then more is appended once it is back.
          restart = server.kill().then(async () => {
            server = await startServe(dataDir, portOf(writer.address));
            for (let i = half / 10; i < (2 * half) / 10; i++) await writer.append(Array.from({ length: 10 }, (_, j) => ({ value: Buffer.from(`r${10 * i + j}`) })));
          });
        }
        if (seen.length >= 2 * half) abort.abort();
      }
      await restart;
      assert.deepEqual(seen, Array.from({ length: 2 * half }, (_, i) => i));
    } finally {
      abort.abort();
      await writer.close();
      await reader.close();
      await server.kill().catch(() => undefined);
      temp.remove();
    }
  });
  test('a stop whose grace runs out cancels the open calls: the appends are retried and written once, the tail resumes', async () => {
    const temp = makeTempDir('wald-client-grace-');
    const dataDir = join(temp.dir, 'data');
    let server = await startServe(dataDir, 0, ['--shutdown-grace-ms', '300']);
    const port = portOf(server.address);
    const writer = new WalClient(server.address, clientOptions);
    const reader = new WalClient(server.address, clientOptions);
    const abort = new AbortController();
    try {
      // Far more than the HTTP/2 windows and the client's buffers hold (24 MB in small messages): a
      // tail whose consumer stalls keeps its stream, and the status behind its messages, open past
      // the grace.
      const total = 3000;
      for (let i = 0; i < total / 100; i++) await writer.append(Array.from({ length: 100 }, (_, j) => ({ value: Buffer.alloc(8192, 100 * i + j) })));
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      const seen: number[] = [];
      const tailed = (async () => {
        for await (const event of reader.tail(0, { signal: abort.signal, maxRecords: 10 })) {
          if (seen.length === 0) await released;
          seen.push(...event.records.map((r) => r.offset));
          if (seen.length >= total + 2) abort.abort();
        }
      })();
      // Waits for followers that never come: still open when the grace runs out, and the plain
      // append behind it on the same stream is answered only after it.
      const replicated = writer.append([{ value: Buffer.from('replicated') }], { minReplicas: 1 }).catch((error: unknown) => error);
      const plain = writer.append([{ value: Buffer.from('plain') }]);
      await waitForRecords(server.address, total + 2);
      await server.stop();
      assert.ok(
        server.output.lines.some((line) => parseLog(line)?.msg === 'calls still open after the grace period: cancelling them'),
        'the stop cancelled calls',
      );
      server = await startServe(dataDir, port, ['--replication-min-replicas-timeout-ms', '200']);
      release();
      const plainResult = await plain;
      assert.equal(plainResult.firstOffset, total + 1, 'the plain append is answered at the offset it was written at');
      const replicatedOutcome = await replicated;
      assert.ok(replicatedOutcome instanceof WalClientError, 'no follower ever has it');
      assert.equal(replicatedOutcome.reason, 'WAL_REPLICAS_TIMEOUT', `retried and timed out waiting for followers: ${String(replicatedOutcome)}`);
      await tailed;
      assert.deepEqual(seen, Array.from({ length: total + 2 }, (_, i) => i), 'the tail resumed without gap or duplicate');
      const after = await writer.read(total, { limit: 10 });
      assert.deepEqual(
        after.records.map((r) => r.value.toString()),
        ['replicated', 'plain'],
        'each append is in the log once',
      );
    } finally {
      abort.abort();
      await writer.close();
      await reader.close();
      await server.kill().catch(() => undefined);
      temp.remove();
    }
  });
});
