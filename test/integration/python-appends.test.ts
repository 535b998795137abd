/**
 * The appends of the Python package `wald` (clients/python/) against a real `wald serve` child,
 * with Debian's python3-grpcio (clients/python/tests/append_scenarios.py): concurrent appends
 * from many threads batched over one AppendStream, each atomic and in order per caller; one failed
 * append of a message leaving its neighbours alone; expected_epoch and min_replicas with their
 * ErrorInfo reasons; idempotent retries across a SIGKILL and restart of the server on the same
 * data directory and port, written once; and done-callbacks that call the client (append, a
 * Future's result, close) without deadlocking the pipeline.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { WalClient } from '../../src/client/wal-client.js';
import { ChildOutput, parseLog, spawnWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Debian's interpreter: a pyenv `python3` earlier on PATH does not see Debian's grpc modules. */
const PYTHON = '/usr/bin/python3';
const PACKAGE_DIR = join(REPO_ROOT, 'clients/python');
const SCENARIOS = join(PACKAGE_DIR, 'tests/append_scenarios.py');

interface ServeChild {
  readonly address: string;
  readonly port: number;
  kill(): Promise<void>;
}

/** Starts `wald serve` on `127.0.0.1:port` over `dataDir` (with `extra` flags); resolves once it listens. */
async function startServe(dataDir: string, port: number, extra: readonly string[] = []): Promise<ServeChild> {
  const child = spawnWald(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--sync-policy', 'always', ...extra]);
  const output = new ChildOutput(child);
  child.stdin.end();
  const address = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'))?.address;
  assert.equal(typeof address, 'string');
  return {
    address: address as string,
    port: Number((address as string).slice((address as string).lastIndexOf(':') + 1)),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await output.exited;
    },
  };
}

/** One scenario of append_scenarios.py, running against `address`. */
function startScenario(name: string, address: string): ChildOutput {
  const python = spawn(PYTHON, [SCENARIOS, name, address], {
    cwd: REPO_ROOT,
    env: { ...process.env, PYTHONPATH: PACKAGE_DIR, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new ChildOutput(python);
}

async function waitForPhase<T>(output: ChildOutput, name: string): Promise<T> {
  const line = await output.waitForLine((candidate) => candidate.startsWith('{') && (JSON.parse(candidate) as { phase?: string }).phase === name);
  return JSON.parse(line) as T;
}

function stopScenario(output: ChildOutput): void {
  const { child } = output;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** [first_offset, last_offset, duplicate] */
type Result = [number, number, boolean];

interface Counters {
  sent_messages: number;
  sent_appends: number;
  retried_appends: number;
  streams_opened: number;
  max_in_flight_messages_seen: number;
  producer_ids: number;
}

interface AppendsReport {
  results: Record<string, { values: string[]; result: Result }[]>;
  errors: string[];
  counters: Counters;
}

/** Every value of the log, by offset, read with the Node client. */
async function logValues(address: string): Promise<string[]> {
  const client = new WalClient(address);
  try {
    const values: string[] = [];
    for await (const page of client.range(0)) {
      for (const record of page.records) values[record.offset] = record.value.toString();
    }
    return values;
  } finally {
    await client.close();
  }
}

/**
 * Checks that each append of `report` is in `values` exactly at its offsets (its records together:
 * atomic), that the offsets of each caller's appends increase, and that no value is in the log twice.
 */
function assertWrittenOnce(report: AppendsReport, values: readonly string[]): number {
  let appends = 0;
  for (const [thread, results] of Object.entries(report.results)) {
    let previous = -1;
    for (const { values: written, result } of results) {
      const [first, last] = result;
      assert.equal(last - first + 1, written.length, `thread ${thread}: one offset per record`);
      assert.deepEqual(values.slice(first, last + 1), written, `thread ${thread}: the append's records at its offsets, together`);
      assert.ok(first > previous, `thread ${thread}: appends land in call order (${first} after ${previous})`);
      previous = last;
      appends++;
    }
  }
  const seen = new Set<string>();
  for (const value of values) {
    assert.ok(!seen.has(value), `${value} is in the log once`);
    seen.add(value);
  }
  return appends;
}

describe('the Python package wald: appends', { timeout: 120_000 }, () => {
  test('concurrent appends from 12 threads ride one AppendStream, several per message, each atomic and in order per caller', async () => {
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing (apt-get install -y python3-grpcio)`);
    const temp = makeTempDir('wald-pyappends-');
    const server = await startServe(join(temp.dir, 'data'), 0);
    const output = startScenario('concurrent', server.address);
    try {
      const report = await waitForPhase<AppendsReport>(output, 'done');
      assert.deepEqual(report.errors, []);
      const values = await logValues(server.address);
      const appends = assertWrittenOnce(report, values);
      assert.equal(appends, 12 * 25);
      assert.equal(values.length, Object.values(report.results).flat().reduce((sum, { values: written }) => sum + written.length, 0), 'nothing else in the log');
      const { counters } = report;
      assert.equal(counters.streams_opened, 1);
      assert.equal(counters.sent_appends, appends);
      assert.ok(counters.sent_messages < appends, `${counters.sent_messages} messages carried ${appends} appends`);
      assert.ok(counters.max_in_flight_messages_seen <= 2, 'at most max_in_flight_messages unanswered');
      assert.ok(counters.producer_ids >= 2 && counters.producer_ids <= 2 * 256, `a producer id per append in flight (${counters.producer_ids})`);
      assert.equal((await output.exited).code, 0);
    } finally {
      stopScenario(output);
      await server.kill();
      temp.remove();
    }
  });

  test('a refused append leaves its neighbours in the message alone; expected_epoch and min_replicas fail with their reasons', async () => {
    const temp = makeTempDir('wald-pyappends-');
    const server = await startServe(join(temp.dir, 'data'), 0, ['--replication-min-replicas-timeout-ms', '200']);
    const output = startScenario('conditions', server.address);
    try {
      const report = await waitForPhase<Record<string, unknown>>(output, 'done');
      assert.deepEqual(report['good'], [0, 0, false]);
      assert.deepEqual(report['stale'], { code: 'FAILED_PRECONDITION', reason: 'WAL_EPOCH_MISMATCH', metadata: { expectedEpoch: '7', epoch: '0' } });
      assert.deepEqual(report['after'], [1, 1, false], 'the fenced append wrote nothing');
      // Each message (a connection failure would send them again) carried all three (linger).
      const first = report['first_counters'] as { sent_messages: number; sent_appends: number };
      assert.equal(first.sent_appends, 3 * first.sent_messages, 'the first three appends shared a message (linger)');
      assert.deepEqual(report['epoch_zero'], [2, 2, false]);
      const tooMany = report['too_many_replicas'] as { code: string; reason: string; metadata: Record<string, string> };
      assert.equal(tooMany.code, 'INVALID_ARGUMENT');
      assert.equal(tooMany.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(tooMany.metadata['field'], 'min_replicas');
      const noReplica = report['no_replica'] as { code: string; reason: string; metadata: Record<string, string> };
      assert.equal(noReplica.code, 'DEADLINE_EXCEEDED');
      assert.equal(noReplica.reason, 'WAL_REPLICAS_TIMEOUT');
      assert.equal(noReplica.metadata['lastOffset'], '3');
      assert.deepEqual(await logValues(server.address), ['before', 'after', 'epoch 0', 'no_replica'], 'a replicas timeout keeps the records');
      assert.equal((await output.exited).code, 0);
    } finally {
      stopScenario(output);
      await server.kill();
      temp.remove();
    }
  });

  test('an append over the server\'s message limit fails alone: the appends around it are written, each once', async () => {
    const temp = makeTempDir('wald-pyappends-');
    const server = await startServe(join(temp.dir, 'data'), 0);
    const output = startScenario('oversize', server.address);
    try {
      const report = await waitForPhase<{ big: { code: string; reason: string } | null; failed: unknown[] }>(output, 'done');
      assert.deepEqual(report.big && { code: report.big.code, reason: report.big.reason }, { code: 'RESOURCE_EXHAUSTED', reason: 'WAL_MESSAGE_TOO_LARGE' });
      assert.deepEqual(report.failed, [], 'no other append failed');
      const values = await logValues(server.address);
      for (const name of ['before', 'after']) {
        for (let i = 0; i < 50; i++) assert.equal(values.filter((value) => value === `${name}-${i}`).length, 1, `${name}-${i} is in the log once`);
      }
      assert.equal((await output.exited).code, 0);
    } finally {
      stopScenario(output);
      await server.kill();
      temp.remove();
    }
  });

  test('appends in flight when the server is killed are retried on the restarted server and written once', async () => {
    const temp = makeTempDir('wald-pyappends-');
    const dataDir = join(temp.dir, 'data');
    let server = await startServe(dataDir, 0);
    const output = startScenario('restart', server.address);
    try {
      await waitForPhase(output, 'appending');
      await server.kill();
      server = await startServe(dataDir, server.port);
      output.child.stdin.write('restarted\n');
      const report = await waitForPhase<AppendsReport>(output, 'done');
      assert.deepEqual(report.errors, []);
      const values = await logValues(server.address);
      const appends = assertWrittenOnce(report, values);
      assert.equal(values.length, appends, 'every value in the log is an acknowledged append: none written twice');
      assert.ok(report.counters.streams_opened >= 2, 'the stream was opened again');
      assert.ok(report.counters.retried_appends > 0, 'appends were in flight at the kill');
      assert.equal((await output.exited).code, 0);
    } finally {
      stopScenario(output);
      await server.kill();
      temp.remove();
    }
  });

  test('appends written and not answered before a kill are recognised as written by their retries', async () => {
    const temp = makeTempDir('wald-pyappends-');
    const dataDir = join(temp.dir, 'data');
    // The appends wait for a follower that never comes: written, durable, unanswered.
    let server = await startServe(dataDir, 0, ['--replication-min-replicas-timeout-ms', '60000']);
    const output = startScenario('unanswered', server.address);
    try {
      await waitForPhase(output, 'written');
      await server.kill();
      server = await startServe(dataDir, server.port, ['--replication-min-replicas-timeout-ms', '200']);
      output.child.stdin.write('restarted\n');
      const report = await waitForPhase<Record<string, unknown>>(output, 'done');
      assert.deepEqual(report['values'], ['written once 0', 'written once 1', 'next'], 'the retries wrote nothing');
      // The retries still wait for a follower (none here), and the timeouts name the original
      // offsets: each append had a producer id of its own, so neither retry is refused as stale.
      assert.deepEqual(report['results'], []);
      assert.deepEqual(
        report['errors'],
        [0, 1].map((offset) => ({
          code: 'DEADLINE_EXCEEDED',
          reason: 'WAL_REPLICAS_TIMEOUT',
          metadata: { replicas: '0', minReplicas: '1', firstOffset: String(offset), lastOffset: String(offset) },
        })),
      );
      assert.deepEqual(report['next'], [2, 2, false]);
      assert.ok((report['counters'] as Counters).retried_appends >= 1, 'the append was sent again');
      assert.equal((await output.exited).code, 0);
    } finally {
      stopScenario(output);
      await server.kill();
      temp.remove();
    }
  });

  test('done-callbacks run on the delivery thread and may call append, wait on a later append and close the client', async () => {
    const temp = makeTempDir('wald-pyappends-');
    // The first append of each case waits this long for a follower that does not exist.
    const server = await startServe(join(temp.dir, 'data'), 0, ['--replication-min-replicas-timeout-ms', '1000']);
    const output = startScenario('callbacks', server.address);
    try {
      const report = await waitForPhase<Record<string, unknown>>(output, 'done');
      const appended = report['append_in_callback'] as Record<string, unknown>;
      assert.notEqual(appended, 'timed out', 'client.append in a done-callback completes');
      assert.equal(appended['thread'], 'wald-append-callbacks', 'callbacks run on the delivery thread, not the driver or the caller');
      assert.equal((appended['settled'] as { reason: string }).reason, 'WAL_REPLICAS_TIMEOUT');
      assert.deepEqual(appended['result'], [1, 1, false]);
      const waited = report['result_in_callback'] as Record<string, unknown>;
      assert.notEqual(waited, 'timed out', 'a done-callback may wait on a later append');
      assert.equal(waited['thread'], 'wald-append-callbacks');
      assert.deepEqual(waited['result'], [3, 3, false]);
      assert.deepEqual(report['after_callbacks'], [4, 4, false]);
      const closed = report['close_in_callback'] as Record<string, unknown>;
      assert.notEqual(closed, 'timed out', 'close() in a done-callback returns');
      assert.deepEqual(closed['error'], undefined);
      assert.deepEqual(closed['result'], { done_before: [false, false], done_after: [true, true], results: [[6, 6, false], [7, 7, false]] }, 'close waited for the appends settled after the callback\'s');
      assert.equal((report['append_after_close'] as { code: string }).code, 'CANCELLED');
      assert.deepEqual(await logValues(server.address), ['slow 0', 'from a callback', 'slow 1', 'later', 'after callbacks', 'slow 2', 'unsettled 0', 'unsettled 1']);
      assert.equal((await output.exited).code, 0);
    } finally {
      stopScenario(output);
      await server.kill();
      temp.remove();
    }
  });
});
