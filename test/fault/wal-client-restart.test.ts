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
import { ChildOutput, parseLog, spawnWald } from '../support/cli-process.js';
import { FreezableProxy } from '../support/freezable-proxy.js';
import { makeTempDir } from '../support/temp-dir.js';

interface ServeChild {
  readonly output: ChildOutput;
  readonly address: string;
  kill(): Promise<void>;
}

/** Starts `wald serve` (sync policy `always`) on `127.0.0.1:port` over `dataDir`; resolves once it listens. */
async function startServe(dataDir: string, port: number): Promise<ServeChild> {
  const child = spawnWald(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--sync-policy', 'always']);
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

describe('WalClient across a SIGKILL and restart of the server', { timeout: 180_000 }, () => {
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
});
