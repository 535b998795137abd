/**
 * The `wald` client commands against a real server on 127.0.0.1:0 (in this process, over a temp
 * data directory), each run as a child process of the built CLI: text and --json output, and the
 * exit codes 0 (ok), 1 (server error: status and ErrorInfo reason) and 2 (usage).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WaldServer } from '../../src/server/wald-server.js';
import type { TailStream } from '../../src/server/tail-stream.js';
import { ChildOutput, runWald, spawnWald, type WaldRun } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

interface LiveServer {
  readonly server: WaldServer;
  /** `127.0.0.1:PORT`, for `--server`. */
  readonly address: string;
  /** Runs `wald ARGS... --server ADDRESS`. */
  wald(args: readonly string[], input?: string | Buffer): Promise<WaldRun>;
}

/** Runs `body` against a fresh server over its own temp directory, removed afterwards. */
async function withServer(body: (live: LiveServer) => Promise<void>): Promise<void> {
  const temp = makeTempDir('wald-cli-');
  const { server } = await WaldServer.open(
    { dir: join(temp.dir, 'data'), segmentSizeBytes: 1024 * 1024 },
    { listen: '127.0.0.1:0', tailHeartbeatIntervalMs: 60_000 },
    pino({ level: 'silent' }),
  );
  try {
    const port = await server.start();
    const address = `127.0.0.1:${port}`;
    await body({ server, address, wald: (args, input) => runWald([...args, '--server', address], { input }) });
  } finally {
    await server.stop();
    temp.remove();
  }
}

function parseJsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function assertOk(run: WaldRun): void {
  assert.equal(run.code, 0, `exit code 0 expected; stderr: ${run.stderr}`);
}

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  assert.ok(address !== null && typeof address === 'object');
  probe.close();
  await once(probe, 'close');
  return address.port;
}

describe('wald append', () => {
  it('appends its VALUE arguments as one batch and reports the offsets as text', async () => {
    await withServer(async ({ wald }) => {
      const run = await wald(['append', '--key', 'user-1', '--header', 'source=cli', 'hello', 'world']);
      assertOk(run);
      assert.match(run.stdout, /^appended 2 records at offsets 0-1, timestamp \d{4}-\d\d-\d\dT/);
      assert.equal(run.stderr, '');
    });
  });

  it('prints one JSON document with --json', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', 'first']));
      const run = await wald(['append', '--json', 'a', 'b', 'c']);
      assertOk(run);
      const doc = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(doc.first_offset, 1);
      assert.equal(doc.last_offset, 3);
      assert.equal(doc.record_count, 3);
      assert.equal(doc.duplicate, false);
      assert.equal(typeof doc.timestamp, 'number');
    });
  });

  it('reads one record per line of stdin with --stdin, bytes kept exactly', async () => {
    await withServer(async ({ wald }) => {
      const input = Buffer.concat([Buffer.from('line one\r\n\nline three\n'), Buffer.from([0xff, 0x00, 0x41])]);
      const run = await wald(['append', '--stdin', '--json'], input);
      assertOk(run);
      assert.equal((JSON.parse(run.stdout) as { record_count: number }).record_count, 4);
      const read = await wald(['read', '--json']);
      assertOk(read);
      const records = (JSON.parse(read.stdout) as { records: Record<string, unknown>[] }).records;
      assert.deepEqual(
        records.map((r) => r.value ?? `b64:${String(r.value_base64)}`),
        ['line one', '', 'line three', `b64:${Buffer.from([0xff, 0x00, 0x41]).toString('base64')}`],
      );
    });
  });

  it('acknowledges a retried producer sequence as a duplicate', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', '--producer-id', 'p1', '--sequence', '7', 'once']));
      const retry = await wald(['append', '--producer-id', 'p1', '--sequence', '7', 'once', '--json']);
      assertOk(retry);
      const doc = JSON.parse(retry.stdout) as { duplicate: boolean; first_offset: number };
      assert.equal(doc.duplicate, true);
      assert.equal(doc.first_offset, 0);
    });
  });

  it('exits 1 with the status and the ErrorInfo reason when a conditional append loses', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', 'x']));
      const run = await wald(['append', '--expected-offset', '0', 'y']);
      assert.equal(run.code, 1);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /^wald: ABORTED \(WAL_OFFSET_MISMATCH\): .*\[expectedOffset=0, nextOffset=1\]/);
    });
  });

  it('sends --expected-epoch as a fencing token and --min-replicas as synchronous replication', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', '--expected-epoch', '0', 'fenced-ok']));
      const fenced = await wald(['append', '--expected-epoch', '7', 'fenced-out']);
      assert.equal(fenced.code, 1);
      assert.match(fenced.stderr, /^wald: FAILED_PRECONDITION \(WAL_EPOCH_MISMATCH\): .*expectedEpoch=7/);
      // No follower: answered before the 3 s deadline with how many had it; the record stays.
      const alone = await wald(['append', '--min-replicas', '1', '--timeout-ms', '3000', 'unreplicated']);
      assert.equal(alone.code, 1);
      assert.match(alone.stderr, /^wald: DEADLINE_EXCEEDED \(WAL_REPLICAS_TIMEOUT\): .*replicas=0/);
      const read = await wald(['read', '--json']);
      assertOk(read);
      const doc = JSON.parse(read.stdout) as { records: Record<string, unknown>[] };
      assert.deepEqual(doc.records.map((record) => record['value']), ['fenced-ok', 'unreplicated']);
    });
  });

  it('exits 2 without sending anything when there is nothing to append', async () => {
    await withServer(async ({ wald }) => {
      const run = await wald(['append']);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /nothing to append/);
      const both = await wald(['append', '--stdin', 'value'], 'line\n');
      assert.equal(both.code, 2);
      assert.match(both.stderr, /not both/);
      const stats = await wald(['stats', '--json']);
      assert.equal((JSON.parse(stats.stdout) as { entry_count: number }).entry_count, 0);
    });
  });
});

describe('wald read', () => {
  it('prints a table of records with offsets, ISO timestamps, keys and printable values', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', '--key', 'k', '--header', 'h=v', 'hello', 'world']));
      assertOk(await wald(['append', '--stdin'], Buffer.from([0xff, 0xfe, 0x0a])));
      const run = await wald(['read', '--from-offset', '0', '--limit', '10']);
      assertOk(run);
      const lines = run.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^OFFSET\s+TIMESTAMP\s+TYPE\s+KEY\s+VALUE\s+HEADERS$/);
      assert.match(lines[1]!, /^0\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s+put\s+k\s+hello\s+h=v$/);
      assert.match(lines[2]!, /^1\s+\S+\s+put\s+k\s+world\s+h=v$/);
      assert.match(lines[3]!, /^2\s+\S+\s+put\s+-\s+base64:\/\/4=$/);
      assert.equal(lines[4], '(3 records; next offset 3; high watermark 2)');
    });
  });

  it('prints one JSON document with --json, honouring --from-offset and --limit', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', '--key', 'k', 'a', 'b', 'c', 'd']));
      const run = await wald(['read', '--from-offset', '1', '--limit', '2', '--json']);
      assertOk(run);
      const doc = JSON.parse(run.stdout) as { records: Record<string, unknown>[]; next_offset: number; high_watermark: number; first_offset: number };
      assert.deepEqual(
        doc.records.map((r) => [r.offset, r.key, r.value, r.type]),
        [
          [1, 'k', 'b', 'put'],
          [2, 'k', 'c', 'put'],
        ],
      );
      assert.equal(doc.next_offset, 3);
      assert.equal(doc.high_watermark, 3);
      assert.equal(doc.first_offset, 0);
      assert.equal(typeof doc.records[0]!.time, 'string');
    });
  });

  it('tells a record without a key from one with the empty key, as text and as JSON', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', 'none']));
      assertOk(await wald(['append', '--key', '', 'empty']));
      const text = await wald(['read', '--from-offset', '0']);
      assertOk(text);
      const lines = text.stdout.trimEnd().split('\n');
      assert.match(lines[1]!, /^0\s+\S+\s+put\s+-\s+none\s*$/);
      assert.match(lines[2]!, /^1\s+\S+\s+put\s+""\s+empty\s*$/);
      const json = await wald(['read', '--from-offset', '0', '--json']);
      assertOk(json);
      const doc = JSON.parse(json.stdout) as { records: Record<string, unknown>[] };
      assert.deepEqual(
        doc.records.map((r) => [r.key, r.value]),
        [
          [null, 'none'],
          ['', 'empty'],
        ],
      );
    });
  });

  it('exits 1 with OUT_OF_RANGE and WAL_OFFSET_OUT_OF_RANGE beyond the end, as text and as JSON', async () => {
    await withServer(async ({ wald }) => {
      const text = await wald(['read', '--from-offset', '99']);
      assert.equal(text.code, 1);
      assert.match(text.stderr, /^wald: OUT_OF_RANGE \(WAL_OFFSET_OUT_OF_RANGE\): .*fromOffset=99/);
      const json = await wald(['read', '--from-offset', '99', '--json']);
      assert.equal(json.code, 1);
      const error = (JSON.parse(json.stderr) as { error: Record<string, unknown> }).error;
      assert.equal(error.status, 'OUT_OF_RANGE');
      assert.equal(error.code, 11);
      assert.equal(error.reason, 'WAL_OFFSET_OUT_OF_RANGE');
      assert.equal((error.metadata as Record<string, string>).fromOffset, '99');
    });
  });

  it('exits 1 with INVALID_ARGUMENT naming the field when the server refuses the limit', async () => {
    await withServer(async ({ wald }) => {
      const run = await wald(['read', '--limit', '5000', '--json']);
      assert.equal(run.code, 1);
      const error = (JSON.parse(run.stderr) as { error: { status: string; reason: string; metadata: Record<string, string> } }).error;
      assert.equal(error.status, 'INVALID_ARGUMENT');
      assert.equal(error.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(error.metadata.field, 'limit');
    });
  });
});

describe('wald stats and wald sync', () => {
  it('prints the stats as a text table and as one JSON document', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', 'a', 'b']));
      const text = await wald(['stats']);
      assertOk(text);
      assert.match(text.stdout, /^entries\s+2$/m);
      assert.match(text.stdout, /^high watermark\s+1$/m);
      assert.match(text.stdout, /^write state\s+writable$/m);
      assert.match(text.stdout, /^tail queue\s+0 bytes$/m);
      const json = await wald(['stats', '--json']);
      assertOk(json);
      const doc = JSON.parse(json.stdout) as Record<string, unknown>;
      assert.equal(doc.entry_count, 2);
      assert.equal(doc.latest_offset, 1);
      assert.equal(doc.high_watermark, 1);
      assert.equal(doc.next_offset, 2);
      assert.equal(doc.write_state, 'writable');
      assert.equal(doc.tail_queue_bytes, 0);
      assert.equal(typeof doc.total_size_bytes, 'number');
      assert.equal(typeof (doc.io_stats as Record<string, unknown>).bytes_written, 'number');
      assert.equal(typeof (doc.io_stats as Record<string, unknown>).fsyncs, 'number');
      // `wal-stats` is the name rstmdb-cli scripts use: the same document.
      const alias = await wald(['wal-stats', '--json']);
      assertOk(alias);
      assert.deepEqual(Object.keys(JSON.parse(alias.stdout) as object), Object.keys(doc));
    });
  });

  it('reports an empty log with a null high watermark', async () => {
    await withServer(async ({ wald }) => {
      const stats = JSON.parse((await wald(['stats', '--json'])).stdout) as Record<string, unknown>;
      assert.equal(stats.high_watermark, null);
      assert.equal(stats.latest_offset, null);
      const sync = await wald(['sync']);
      assertOk(sync);
      assert.equal(sync.stdout, 'synced; the log holds no record\n');
    });
  });

  it('syncs and prints the durable offset as text and JSON', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', 'a', 'b', 'c']));
      const text = await wald(['sync']);
      assertOk(text);
      assert.equal(text.stdout, 'synced; high watermark 2\n');
      const json = await wald(['sync', '--json']);
      assertOk(json);
      assert.deepEqual(JSON.parse(json.stdout), { high_watermark: 2 });
    });
  });
});

describe('wald tail', () => {
  it('prints the records from an offset as table rows and stops after --limit', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', '--key', 'k', 'a', 'b', 'c']));
      const run = await wald(['tail', '--from-offset', '1', '--limit', '2']);
      assertOk(run);
      const lines = run.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, /^OFFSET\s+TIMESTAMP\s+TYPE\s+KEY\s+VALUE\s+HEADERS$/);
      assert.match(lines[1]!, /^1\s+\S+Z\s+put\s+k\s+b$/);
      assert.match(lines[2]!, /^2\s+\S+Z\s+put\s+k\s+c$/);
    });
  });

  it('catches up, then follows records appended later, one JSON object per line', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', 'old']));
      // Starting at an offset (not at the end) makes the result independent of when the tail subscribes.
      const tail = wald(['tail', '--from-offset', '0', '--limit', '3', '--json']);
      assertOk(await wald(['append', 'new-1', 'new-2']));
      const run = await tail;
      assertOk(run);
      const records = parseJsonLines(run.stdout);
      assert.deepEqual(
        records.map((r) => [r.offset, r.value]),
        [
          [0, 'old'],
          [1, 'new-1'],
          [2, 'new-2'],
        ],
      );
    });
  });

  it('with --end, prints only records appended after it subscribed', async () => {
    await withServer(async ({ server, address, wald }) => {
      assertOk(await wald(['append', 'before']));
      // The first message of a tail that has caught up is a heartbeat: by then its start is fixed.
      const subscribed = new Promise<void>((resolve) => {
        server.tails.once('open', (stream: TailStream) => stream.once('message', () => resolve()));
      });
      const tail = runWald(['tail', '--end', '--limit', '1', '--json', '--server', address]);
      await subscribed;
      assertOk(await wald(['append', 'after']));
      const run = await tail;
      assertOk(run);
      assert.deepEqual(
        parseJsonLines(run.stdout).map((r) => [r.offset, r.value]),
        [[1, 'after']],
      );
    });
  });

  it('starts at the first record at or after --from-timestamp', async () => {
    await withServer(async ({ wald }) => {
      assertOk(await wald(['append', 'a']));
      const run = await wald(['tail', '--from-timestamp', '1970-01-01T00:00:00Z', '--limit', '1', '--json']);
      assertOk(run);
      assert.deepEqual(parseJsonLines(run.stdout).map((r) => r.value), ['a']);
    });
  });

  it('exits 0 on SIGINT (Ctrl-C)', async () => {
    await withServer(async ({ server, address, wald }) => {
      assertOk(await wald(['append', 'a']));
      const subscribed = new Promise<void>((resolve) => {
        server.tails.once('open', (stream: TailStream) => stream.once('message', () => resolve()));
      });
      const child = spawnWald(['tail', '--from-offset', '0', '--json', '--server', address]);
      const output = new ChildOutput(child);
      child.stdin.end();
      await subscribed;
      await output.waitForLine((line) => line.includes('"offset":0'));
      child.kill('SIGINT');
      const run = await output.exited;
      assert.equal(run.code, 0, run.stderr);
    });
  });

  it('exits 1 with UNAVAILABLE and WAL_SHUTTING_DOWN when the server stops', async () => {
    let run: WaldRun | undefined;
    await withServer(async ({ server, address, wald }) => {
      assertOk(await wald(['append', 'a']));
      const child = spawnWald(['tail', '--from-offset', '0', '--json', '--server', address]);
      const output = new ChildOutput(child);
      child.stdin.end();
      await output.waitForLine((line) => line.includes('"offset":0'));
      await server.stop();
      run = await output.exited;
    });
    assert.equal(run?.code, 1);
    const error = (JSON.parse(run.stderr) as { error: { status: string; reason: string } }).error;
    assert.equal(error.status, 'UNAVAILABLE');
    assert.equal(error.reason, 'WAL_SHUTTING_DOWN');
  });

  it('exits 2 when two starting points are given', async () => {
    const run = await runWald(['tail', '--from-offset', '1', '--end']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /cannot be used with/);
  });
});

describe('wald exit codes', () => {
  it('exits 1 with UNAVAILABLE when no server listens', async () => {
    const port = await closedPort();
    const run = await runWald(['stats', '--server', `127.0.0.1:${port}`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^wald: UNAVAILABLE: /);
  });

  it('exits 2 on usage errors reported by commander', async () => {
    for (const args of [['bogus'], ['read', '--limit', 'many'], ['read', '--no-such-flag'], ['stats', 'extra'], ['append', '--type', 'odd', 'v'], ['append', '--type', 'checkpoint', 'v'], ['append', '--type', 'delete', 'v'], []]) {
      const run = await runWald(args);
      assert.equal(run.code, 2, `wald ${args.join(' ')}: ${run.stderr}`);
      assert.notEqual(run.stderr, '');
      assert.equal(run.stdout, '');
    }
  });

  it('exits 0 for --help and --version', async () => {
    const help = await runWald(['--help']);
    assert.equal(help.code, 0);
    for (const command of ['serve', 'append', 'read|wal-read', 'tail', 'stats|wal-stats', 'sync']) {
      assert.match(help.stdout, new RegExp(`^  ${command.replace('|', '\\|')} `, 'm'));
    }
    const readHelp = await runWald(['read', '--help']);
    assert.equal(readHelp.code, 0);
    assert.match(readHelp.stdout, /--from-offset <n>/);
    assert.match(readHelp.stdout, /--server <host:port>/);
    const version = await runWald(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });
});
