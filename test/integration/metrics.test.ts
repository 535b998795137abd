/**
 * Metrics, probes and log lines of a real server: a workload of real calls, then `/metrics`
 * scraped over HTTP and its figures compared with what was done; `/healthz` and `/readyz`; the
 * JSON lines of a `wald serve` child.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { AppendStreamRequest, type AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import { pino } from 'pino';
import { WaldServer } from '../../src/server/wald-server.js';
import { ChildOutput, cleanEnv, parseLog, spawnWald, type LogLine } from '../support/cli-process.js';
import { FakeClock } from '../support/fake-clock.js';
import { MemDisk } from '../support/mem-disk.js';
import { parseExposition, sampleValue, type Sample } from '../support/prometheus-text.js';
import { makeTempDir } from '../support/temp-dir.js';
import { SnapshotClient } from './support/snapshot-client.js';
import { failureOf, rpcErrorOf, startServer, StreamReader, values, type Harness } from './support/harness.js';

const silent = pino({ level: 'silent' });

const METRICS_ON = { metricsListen: '127.0.0.1:0' } as const;

async function get(port: number, path: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') };
}

async function scrape(server: WaldServer): Promise<Sample[]> {
  const response = await get(server.metricsPort!, '/metrics');
  assert.equal(response.status, 200);
  assert.match(response.contentType ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(response.body);
}

/** Appends `batches` (each a list of record keys) over one AppendStream, then ends it; resolves with the answers. */
async function appendOverStream(harness: Harness, batches: readonly string[][]): Promise<AppendStreamResponse[]> {
  const stream = harness.client.appendStream();
  const answers: AppendStreamResponse[] = [];
  stream.on('data', (answer: AppendStreamResponse) => answers.push(answer));
  const ended = once(stream, 'end');
  batches.forEach((keys, i) => {
    stream.write(
      AppendStreamRequest.fromPartial({ requestId: BigInt(i), append: { records: keys.map((key) => ({ key: Buffer.from(key), value: Buffer.from(`v-${key}`) })) } }),
    );
  });
  stream.end();
  await ended;
  return answers;
}

/** Resolves once the server has forgotten every tail (the registry's `close` comes after the call is over). */
async function tailsGone(server: WaldServer): Promise<void> {
  for (let i = 0; i < 100 && server.tails.size > 0; i++) await once(server.tails, 'close');
  assert.equal(server.tails.size, 0);
}

describe('metrics', () => {
  it('counts, after a workload, exactly the calls, appends and records done, by RPC and outcome', async () => {
    const harness = await startServer({ server: METRICS_ON });
    const { server, client } = harness;
    try {
      // Unary appends of 1..5 records: 15 records, offsets 0..14.
      for (let n = 1; n <= 5; n++) await client.append({ records: values(n, `u${n}-`) });
      // A conditional append that fails: 2 records asked for, ABORTED (WAL_OFFSET_MISMATCH).
      const mismatch = await failureOf(client.append({ records: values(2), expectedOffset: 999n }));
      assert.equal(mismatch.statusCode, status.ABORTED);
      // Four appends of 3 keyed records over one stream: 12 records, offsets 15..26, keys k0..k3.
      const answers = await appendOverStream(harness, [0, 1, 2, 3].map((i) => [`k${i}`, `k${i}`, `k${i}`]));
      assert.equal(answers.length, 4);
      assert.ok(answers.every((answer) => answer.result?.$case === 'appended'));
      const read = await client.read({ fromOffset: 0n, limit: 10 });
      assert.equal(read.records.length, 10);
      // A tail that reads every record, then is cancelled by its client.
      const tail = client.tail({ start: { $case: 'fromOffset', value: 0n } });
      const reader = new StreamReader(tail);
      let seen = 0;
      for (let i = 0; i < 100 && seen < 27; i++) seen += (await reader.next()).records.length;
      assert.equal(seen, 27);
      tail.cancel();
      await reader.end();
      // A tail refused by its handler: from_end false is INVALID_ARGUMENT.
      const refused = await new StreamReader(client.tail({ start: { $case: 'fromEnd', value: false } })).end();
      assert.equal(rpcErrorOf(refused).statusCode, status.INVALID_ARGUMENT);
      await tailsGone(server);
      const stats = await client.getStats();

      const samples = await scrape(server);
      const value = (name: string, labels: Record<string, string> = {}): number => sampleValue(samples, name, labels);
      assert.equal(value('wald_appends_total', { rpc: 'Append', outcome: 'OK' }), 5);
      assert.equal(value('wald_append_records_total', { rpc: 'Append', outcome: 'OK' }), 15);
      assert.equal(value('wald_appends_total', { rpc: 'Append', outcome: 'ABORTED' }), 1);
      assert.equal(value('wald_append_records_total', { rpc: 'Append', outcome: 'ABORTED' }), 2);
      assert.equal(value('wald_appends_total', { rpc: 'AppendStream', outcome: 'OK' }), 4);
      assert.equal(value('wald_append_records_total', { rpc: 'AppendStream', outcome: 'OK' }), 12);
      assert.equal(value('wald_append_duration_seconds_count', { rpc: 'Append' }), 6);
      assert.equal(value('wald_append_duration_seconds_count', { rpc: 'AppendStream' }), 4);

      assert.equal(value('wald_rpcs_total', { rpc: 'Append', outcome: 'OK' }), 5);
      assert.equal(value('wald_rpcs_total', { rpc: 'Append', outcome: 'ABORTED' }), 1);
      assert.equal(value('wald_rpcs_total', { rpc: 'AppendStream', outcome: 'OK' }), 1);
      assert.equal(value('wald_rpcs_total', { rpc: 'Read', outcome: 'OK' }), 1);
      assert.equal(value('wald_rpcs_total', { rpc: 'TailWal', outcome: 'CANCELLED' }), 1);
      assert.equal(value('wald_rpcs_total', { rpc: 'TailWal', outcome: 'INVALID_ARGUMENT' }), 1);
      assert.equal(value('wald_rpcs_total', { rpc: 'GetStats', outcome: 'OK' }), 1);
      assert.equal(value('wald_rpc_duration_seconds_count', { rpc: 'Append' }), 6);
      assert.equal(value('wald_rpc_duration_seconds_count', { rpc: 'Read' }), 1);
      const rpcCalls = samples.filter((s) => s.name === 'wald_rpcs_total').reduce((sum, s) => sum + s.value, 0);
      assert.equal(rpcCalls, 11, 'nothing else was counted');

      // Every acknowledged append went through one group commit, each synced once (`always`).
      assert.equal(value('wald_group_commit_appends_sum'), 9);
      const groupCommits = value('wald_group_commit_appends_count');
      assert.ok(groupCommits >= 1 && groupCommits <= 9, `group commits: ${groupCommits}`);
      assert.equal(value('wald_fsync_duration_seconds_count'), groupCommits);
      assert.equal(value('wald_fsyncs_total'), Number(stats.ioStats!.fsyncs));
      assert.equal(value('wald_written_bytes_total'), Number(stats.ioStats!.bytesWritten));
      assert.equal(value('wald_read_bytes_total'), Number(stats.ioStats!.bytesRead));

      assert.equal(value('wald_high_watermark'), 26);
      assert.equal(value('wald_next_offset'), 27);
      assert.equal(value('wald_first_offset'), 0);
      assert.equal(value('wald_records'), 27);
      assert.equal(value('wald_segments'), 1);
      assert.equal(value('wald_disk_bytes'), Number(stats.totalSizeBytes));
      assert.equal(value('wald_state_keys'), 4);
      assert.equal(value('wald_state_memory_bytes'), Number(stats.stateMemoryBytes));
      assert.equal(value('wald_tail_streams'), 0);
      assert.equal(value('wald_tail_queue_bytes'), 0);
      assert.equal(value('wald_append_streams'), 0);
      assert.equal(value('wald_write_state', { state: 'writable' }), 1);
      assert.equal(value('wald_write_state', { state: 'read-only' }), 0);
      assert.equal(value('wald_log_open'), 1);
      assert.equal(value('wald_recovery_records'), 0);
      assert.ok(samples.some((s) => s.name === 'process_resident_memory_bytes' && s.value > 0), 'Node process metrics are served');
    } finally {
      await harness.close();
    }
  });

  it('shows open tails and their queued bytes while they run', async () => {
    const harness = await startServer({ server: METRICS_ON });
    const { server, client } = harness;
    try {
      await client.append({ records: values(3) });
      const tails = [client.tail({ start: { $case: 'fromOffset', value: 0n } }), client.tail({ start: { $case: 'fromOffset', value: 0n } })];
      const readers = tails.map((tail) => new StreamReader(tail));
      for (const reader of readers) await reader.next();
      const open = await scrape(server);
      assert.equal(sampleValue(open, 'wald_tail_streams'), 2);
      assert.equal(sampleValue(open, 'wald_tail_queue_bytes'), server.tailQueueBudget.usedBytes);
      for (const tail of tails) tail.cancel();
      for (const reader of readers) await reader.end();
      await tailsGone(server);
      const closed = await scrape(server);
      assert.equal(sampleValue(closed, 'wald_tail_streams'), 0);
      assert.equal(sampleValue(closed, 'wald_rpcs_total', { rpc: 'TailWal', outcome: 'CANCELLED' }), 2);
    } finally {
      await harness.close();
    }
  });

  it('counts and logs segment rolls', async () => {
    const harness = await startServer({ server: METRICS_ON, wal: { segmentSizeBytes: 4096 } });
    const { server, client } = harness;
    try {
      for (let i = 0; i < 12; i++) await client.append({ records: [{ value: Buffer.alloc(1000, i) }] });
      const segments = server.wal.stats().segmentCount;
      assert.ok(segments >= 3, `segments: ${segments}`);
      const samples = await scrape(server);
      assert.equal(sampleValue(samples, 'wald_segments'), segments);
      assert.equal(sampleValue(samples, 'wald_segment_rolls_total'), segments - 1);
      const rolls = harness.logLines.filter((line) => line.msg === 'segment rolled');
      assert.equal(rolls.length, segments - 1);
      assert.equal(typeof rolls[0]!.sealed, 'string');
      assert.equal(typeof rolls[0]!.baseOffset, 'number');
    } finally {
      await harness.close();
    }
  });

  it('counts and logs every snapshot written: by CreateSnapshot, by SnapshotKey and by a compaction', async () => {
    const harness = await startServer({ server: METRICS_ON });
    const { server, client } = harness;
    try {
      await client.append({ records: [{ key: Buffer.from('k'), value: Buffer.from('v') }] });
      const snapshots = new SnapshotClient(client.raw);
      const created = await snapshots.createSnapshot();
      const point = await snapshots.snapshotKey('k');
      await client.append({ records: [{ key: Buffer.from('k'), value: Buffer.from('w') }] });
      // No snapshot at the log's end yet: the compaction writes one before it trims anything.
      const compaction = await client.compact();
      assert.equal(compaction.snapshotsCreated, 1);
      const samples = await scrape(server);
      assert.equal(sampleValue(samples, 'wald_snapshots_total'), 3);
      const lines = harness.logLines.filter((line) => line.msg === 'snapshot written');
      assert.deepEqual(
        lines.map((line) => line.id),
        [created.snapshotId, point.snapshotId, compaction.snapshotId],
      );
      const bytes = lines.reduce((sum, line) => sum + (line.bytes as number), 0);
      assert.equal(sampleValue(samples, 'wald_snapshot_written_bytes_total'), bytes);
    } finally {
      await harness.close();
    }
  });

  it('stopped servers with metrics on are collected: nothing of the process metrics holds them', async () => {
    const temp = makeTempDir('wald-metrics-collected-');
    try {
      // In a child of its own: the test runner's own bookkeeping keeps objects of a test alive.
      const child = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(new URL('../support/stopped-servers-child.js', import.meta.url)), temp.dir], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(child.status, 0, child.stderr);
      const { alive, servers } = JSON.parse(child.stdout) as { alive: number; servers: number };
      // The last may stay reachable a while from what the process keeps of its last connection
      // (with metrics or without); before the fix, every one stayed.
      assert.ok(alive <= 1, `${alive} of ${servers} stopped servers are still reachable`);
    } finally {
      temp.remove();
    }
  });

  it('keeps the figures of the recovery at the open', async () => {
    const temp = makeTempDir('wald-metrics-recovery-');
    try {
      const first = await WaldServer.open({ dir: temp.dir, preallocate: false }, { listen: '127.0.0.1:0' }, silent);
      await first.server.wal.append([{ key: Buffer.from('a'), value: Buffer.from('1') }, { key: Buffer.from('b'), value: Buffer.from('2') }]);
      await first.server.wal.append([{ key: Buffer.from('c'), value: Buffer.from('3') }]);
      await first.server.stop();
      const { server, report } = await WaldServer.open({ dir: temp.dir, preallocate: false }, { listen: '127.0.0.1:0', ...METRICS_ON }, silent);
      try {
        await server.start();
        const samples = await scrape(server);
        assert.equal(sampleValue(samples, 'wald_recovery_records'), 3);
        assert.equal(sampleValue(samples, 'wald_recovery_segments'), report.segments);
        assert.equal(sampleValue(samples, 'wald_recovery_duration_seconds'), report.durationMs / 1000);
        assert.equal(sampleValue(samples, 'wald_state_recovery_replayed_records'), 3);
        assert.equal(sampleValue(samples, 'wald_state_keys'), 3);
      } finally {
        await server.stop();
      }
    } finally {
      temp.remove();
    }
  });

  it('serves no listener when metrics_listen is off', async () => {
    const harness = await startServer();
    try {
      assert.equal(harness.server.metrics, undefined);
      assert.equal(harness.server.metricsPort, undefined);
      await harness.client.append({ records: values(1) });
    } finally {
      await harness.close();
    }
  });
});

describe('probes', () => {
  it('/healthz is 200; /readyz is 200 while writable, 503 with the reason once the log is read-only', async () => {
    const disk = new MemDisk();
    const harness = await startServer({ server: METRICS_ON, wal: { storage: disk.mount() } });
    const { server, client } = harness;
    try {
      const port = server.metricsPort!;
      await client.append({ records: values(2) });
      assert.deepEqual(await get(port, '/healthz').then((r) => [r.status, r.body]), [200, 'ok\n']);
      assert.deepEqual(await get(port, '/readyz').then((r) => [r.status, r.body]), [200, 'ready\n']);
      disk.inject({ op: 'datasync', code: 'EIO', path: /\.seg$/ });
      const failed = await failureOf(client.append({ records: values(1) }));
      assert.equal(failed.reason, 'WAL_IO_ERROR');
      const ready = await get(port, '/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body, /^not ready: the log is read-only/);
      assert.equal((await get(port, '/healthz')).status, 200, 'the process still serves: reads go on');
      const samples = await scrape(server);
      assert.equal(sampleValue(samples, 'wald_write_state', { state: 'read-only' }), 1);
      assert.equal(sampleValue(samples, 'wald_write_state', { state: 'writable' }), 0);
      assert.equal(sampleValue(samples, 'wald_write_state_changes_total', { state: 'read-only' }), 1);
      assert.equal(sampleValue(samples, 'wald_appends_total', { rpc: 'Append', outcome: status[failed.statusCode]! }), 1);
      const line = harness.logLines.find((l) => l.writeState === 'read-only');
      assert.equal(line?.level, 50, 'entering read-only is logged as an error');
      assert.equal(line?.previous, 'writable');
      assert.equal((await get(port, '/nowhere')).status, 404);
    } finally {
      await harness.close();
    }
  });

  it('/readyz is 503 while the disk is full and 200 again once space returns; both changes are logged and counted', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const harness = await startServer({ server: METRICS_ON, wal: { storage: disk.mount(), clock: clock.now, diskFullProbeIntervalMs: 60_000 } });
    const { server, client } = harness;
    try {
      const port = server.metricsPort!;
      await client.append({ records: values(1) });
      disk.capacityBytes = disk.usedBytes() + 10;
      assert.equal((await failureOf(client.append({ records: values(1, 'full-') }))).reason, 'WAL_NO_SPACE');
      const full = await get(port, '/readyz');
      assert.deepEqual([full.status, full.body], [503, 'not ready: the disk is full\n']);
      assert.equal(sampleValue(await scrape(server), 'wald_write_state', { state: 'disk-full' }), 1);
      disk.capacityBytes = Number.POSITIVE_INFINITY;
      clock.advance(60_000); // the next append probes for space at once
      await client.append({ records: values(1, 'after-') });
      assert.equal((await get(port, '/readyz')).status, 200);
      const samples = await scrape(server);
      assert.equal(sampleValue(samples, 'wald_write_state', { state: 'writable' }), 1);
      assert.equal(sampleValue(samples, 'wald_write_state_changes_total', { state: 'disk-full' }), 1);
      assert.equal(sampleValue(samples, 'wald_write_state_changes_total', { state: 'writable' }), 1);
      const lines = harness.logLines.filter((line) => line.writeState !== undefined).map((line) => [line.level, line.writeState, line.previous]);
      assert.deepEqual(lines, [
        [40, 'disk-full', 'writable'],
        [30, 'writable', 'disk-full'],
      ]);
    } finally {
      await harness.close();
    }
  });

  it('/readyz gives the reason while the server stops', async () => {
    const harness = await startServer({ server: METRICS_ON });
    const { server } = harness;
    assert.equal(server.notReadyReason(), undefined);
    const stopped = server.stop();
    assert.equal(server.notReadyReason(), 'the server is stopping');
    await stopped;
    assert.equal(server.notReadyReason(), 'the server is stopped');
    await harness.close();
  });
});

describe('wald serve --metrics-listen', () => {
  it('logs start (address, configuration) and recovery as JSON lines, and serves /metrics on its own port', async () => {
    const temp = makeTempDir('wald-metrics-');
    let child: ChildProcessWithoutNullStreams | undefined;
    let guard: NodeJS.Timeout | undefined;
    try {
      const dataDir = join(temp.dir, 'data');
      child = spawnWald(['serve', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--data-dir', dataDir], { env: cleanEnv() });
      const output = new ChildOutput(child);
      child.stdin.end();
      // Bounds the waits below: a child that never logs its address is killed, which ends them.
      const running = child;
      guard = setTimeout(() => running.kill('SIGKILL'), 30_000);
      const listening = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'))!;
      const metricsLine = output.lines.map(parseLog).find((line) => line?.msg === 'metrics listening');
      const recovered = output.lines.map(parseLog).find((line) => line?.msg === 'log recovered');
      assert.match(String(listening.address), /^127\.0\.0\.1:[1-9]\d*$/);
      assert.equal((listening.config as LogLine).metricsListen, '127.0.0.1:0');
      assert.equal(listening.level, 30);
      assert.equal(listening.name, 'wald');
      assert.equal(typeof listening.time, 'number');
      assert.equal((recovered?.recovery as LogLine | undefined)?.records, 0);
      assert.equal(typeof (recovered?.recovery as LogLine | undefined)?.durationMs, 'number');
      const metricsAddress = String(metricsLine?.address);
      assert.match(metricsAddress, /^127\.0\.0\.1:[1-9]\d*$/);
      assert.notEqual(metricsAddress, listening.address);
      const port = Number(metricsAddress.slice(metricsAddress.lastIndexOf(':') + 1));
      const samples = parseExposition((await get(port, '/metrics')).body);
      assert.equal(sampleValue(samples, 'wald_log_open'), 1);
      assert.equal((await get(port, '/readyz')).status, 200);
      child.kill('SIGTERM');
      const run = await output.exited;
      assert.equal(run.code, 0);
      assert.ok(output.lines.map(parseLog).some((line) => line?.msg === 'wald stopped'));
    } finally {
      clearTimeout(guard);
      if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      temp.remove();
    }
  });
});
