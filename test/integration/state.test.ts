/**
 * The key-value view served: Get, ListKeys and FlushAll against a real server and client, the cap
 * on new keys through Append and AppendStream, GetStats' view fields, and the view rebuilt the same
 * after a restart, from the log alone and from a snapshot on disk.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { errorInfoOfStatus } from '../../src/client/rpc-error-info.js';
import { AppendStreamRequest, type AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import { RecordType } from '../../src/gen/wald/v1/record.js';
import type { KeyEntry } from '../../src/gen/wald/v1/state.js';
import type { ServerOptions } from '../../src/server/server-options.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { ENTRY_OVERHEAD_BYTES } from '../../src/state/key-state.js';
import type { StateRecoveryReport } from '../../src/state/state-keeper.js';
import { writeSnapshot } from '../../src/state/snapshot-writer.js';
import { makeTempDir } from '../support/temp-dir.js';
import { testStorageFor } from '../support/test-storage.js';
import { failureOf, StreamReader, WalTestClient } from './support/harness.js';

interface Served {
  readonly server: WaldServer;
  readonly client: WalTestClient;
  readonly stateReport: StateRecoveryReport;
  stop(): Promise<void>;
}

/** A server over `dataDir` (kept after it stops, so the next one reopens it) and a client. */
async function serve(dataDir: string, options: ServerOptions = {}): Promise<Served> {
  const { server, stateReport } = await WaldServer.open({ dir: dataDir, storage: testStorageFor(dataDir), preallocate: false }, { ...options, listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
  const port = await server.start();
  const client = new WalTestClient(`127.0.0.1:${port}`);
  return {
    server,
    client,
    stateReport,
    async stop() {
      client.close();
      await server.stop();
    },
  };
}

/** Runs `body` with a server over a fresh temp directory, removed afterwards. */
async function withServed(options: ServerOptions, body: (served: Served, dataDir: string) => Promise<void>): Promise<void> {
  const temp = makeTempDir('wald-state-');
  const dataDir = join(temp.dir, 'data');
  const served = await serve(dataDir, options);
  try {
    await body(served, dataDir);
  } finally {
    await served.stop();
    temp.remove();
  }
}

const put = (key: string, value: string): { key: Buffer; value: Buffer } => ({ key: Buffer.from(key), value: Buffer.from(value) });
const del = (key: string): { key: Buffer; value: Buffer; type: RecordType } => ({ key: Buffer.from(key), value: Buffer.alloc(0), type: RecordType.RECORD_TYPE_DELETE });

/** Every key of the view with its value (by Get), in ListKeys order, paging by `pageSize`. */
async function everything(client: WalTestClient, pageSize = 1000): Promise<[string, string, bigint][]> {
  const entries: KeyEntry[] = [];
  let pageToken = '';
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await client.listKeys({ pageSize, pageToken });
    entries.push(...page.keys);
    pageToken = page.nextPageToken;
    if (pageToken === '') break;
  }
  const result: [string, string, bigint][] = [];
  for (const entry of entries) {
    const got = await client.get({ key: entry.key });
    assert.equal(got.offset, entry.offset);
    assert.equal(BigInt(got.value.length), entry.valueSizeBytes);
    result.push([entry.key.toString(), got.value.toString(), got.offset]);
  }
  return result;
}

describe('the key-value view over gRPC', { timeout: 120_000 }, () => {
  test('Get sees an acknowledged append at once (read-your-writes); a DELETE removes the key, then NOT_FOUND with ErrorInfo', async () => {
    await withServed({}, async ({ client }) => {
      for (let i = 0; i < 20; i++) {
        const appended = await client.append({ records: [put('user-1', `v${i}`)] });
        const got = await client.get({ key: Buffer.from('user-1') });
        assert.equal(got.value.toString(), `v${i}`);
        assert.equal(got.offset, appended.firstOffset);
        assert.equal(got.timestamp, appended.timestamp);
      }
      await client.append({ records: [del('user-1')] });
      const missing = await failureOf(client.get({ key: Buffer.from('user-1') }));
      assert.equal(missing.code, status.NOT_FOUND);
      assert.equal(missing.reason, 'WAL_KEY_NOT_FOUND');
      assert.deepEqual(missing.metadata, { keyBase64: Buffer.from('user-1').toString('base64') });
      // A long missing key is echoed cut: whole, it would outgrow the trailers a grpc-js client
      // takes, and that client would drop the connection (this call and the next would hang).
      const long = await failureOf(client.get({ key: Buffer.alloc(30_000, 7) }));
      assert.equal(long.reason, 'WAL_KEY_NOT_FOUND');
      assert.ok(long.metadata['keyBase64']!.length < 1100 && /more characters\)$/.test(long.metadata['keyBase64']!), 'the echoed key is cut');
      assert.equal((await client.get({ key: Buffer.from('user-1') }).catch((error: unknown) => error) as { code?: number }).code, status.NOT_FOUND, 'the connection still serves');
      // The empty key is a key; records without a key are not in the view.
      await client.append({ records: [{ value: Buffer.from('keyless') }, { key: Buffer.alloc(0), value: Buffer.from('empty') }] });
      assert.equal((await client.get({ key: Buffer.alloc(0) })).value.toString(), 'empty');
      assert.deepEqual(await everything(client), [['', 'empty', 22n]]);
    });
  });

  test('ListKeys pages in byte order with AIP-158 tokens, by prefix, and refuses bad tokens and sizes naming the field', async () => {
    await withServed({}, async ({ client }) => {
      const keys = ['b2', 'a1', 'a3', 'b1', 'a2', 'c', 'a\u00ff', 'a'];
      await client.append({ records: keys.map((key) => put(key, `value of ${key}`)) });
      const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual((await everything(client, 3)).map(([key]) => key), sorted);

      const first = await client.listKeys({ prefix: Buffer.from('a'), pageSize: 2 });
      assert.deepEqual(first.keys.map((entry) => entry.key.toString()), ['a', 'a1']);
      assert.equal(first.keys[1]?.valueSizeBytes, BigInt('value of a1'.length));
      assert.notEqual(first.nextPageToken, '');
      const second = await client.listKeys({ prefix: Buffer.from('a'), pageSize: 2, pageToken: first.nextPageToken });
      assert.deepEqual(second.keys.map((entry) => entry.key.toString()), ['a2', 'a3']);
      const last = await client.listKeys({ prefix: Buffer.from('a'), pageSize: 2, pageToken: second.nextPageToken });
      assert.deepEqual(last.keys.map((entry) => entry.key.toString()), ['a\u00ff']);
      assert.equal(last.nextPageToken, '');

      for (const request of [
        { prefix: Buffer.from('b'), pageToken: first.nextPageToken },
        { pageToken: 'not a token!' },
        { pageToken: `${first.nextPageToken}x` },
      ]) {
        const refused = await failureOf(client.listKeys(request));
        assert.equal(refused.code, status.INVALID_ARGUMENT);
        assert.equal(refused.reason, 'WAL_INVALID_ARGUMENT');
        assert.equal(refused.metadata['field'], 'page_token');
      }
      const negative = await failureOf(client.listKeys({ pageSize: -1 }));
      assert.equal(negative.code, status.INVALID_ARGUMENT);
      assert.equal(negative.metadata['field'], 'page_size');
    });
  });

  test('ListKeys gives 100 keys by default and at most 1000 a page', async () => {
    await withServed({}, async ({ client }) => {
      await client.append({ records: Array.from({ length: 1001 }, (_, i) => put(`k${String(i).padStart(4, '0')}`, '')) });
      const byDefault = await client.listKeys({});
      assert.equal(byDefault.keys.length, 100);
      const capped = await client.listKeys({ pageSize: 5000 });
      assert.equal(capped.keys.length, 1000);
      const rest = await client.listKeys({ pageSize: 5000, pageToken: capped.nextPageToken });
      assert.deepEqual(rest.keys.map((entry) => entry.key.toString()), ['k1000']);
      assert.equal(rest.nextPageToken, '');
    });
  });

  test('FlushAll is refused without allow_flush_all: FAILED_PRECONDITION naming the key, nothing written', async () => {
    await withServed({}, async ({ client }) => {
      await client.append({ records: [put('a', '1')] });
      const refused = await failureOf(client.flushAll());
      assert.equal(refused.code, status.FAILED_PRECONDITION);
      assert.equal(refused.reason, 'WAL_FLUSH_ALL_DISABLED');
      assert.equal(refused.metadata['configKey'], 'allow_flush_all');
      assert.equal((await client.get({ key: Buffer.from('a') })).value.toString(), '1');
      assert.equal((await client.getStats()).nextOffset, 1n);
    });
  });

  test('FlushAll with allow_flush_all removes every key, says how many, and the view stays empty after a restart', async () => {
    await withServed({ allowFlushAll: true }, async (served, dataDir) => {
      await served.client.append({ records: [put('a', '1'), put('b', '2'), put('c', '3'), del('b')] });
      const flushed = await served.client.flushAll();
      assert.deepEqual(flushed, { keysRemoved: 2n, offset: 4n });
      assert.equal((await failureOf(served.client.get({ key: Buffer.from('a') }))).reason, 'WAL_KEY_NOT_FOUND');
      const [record] = (await served.client.read({ fromOffset: 4n })).records;
      assert.equal(record?.type, RecordType.RECORD_TYPE_FLUSH_ALL);
      assert.equal(record?.key, undefined);
      await served.client.append({ records: [put('after', 'x')] });
      assert.deepEqual(await everything(served.client), [['after', 'x', 5n]]);
      await served.stop();
      const again = await serve(dataDir);
      try {
        assert.deepEqual(await everything(again.client), [['after', 'x', 5n]]);
        assert.equal(again.stateReport.recordsReplayed, 6);
      } finally {
        await again.stop();
      }
    });
  });

  test('past max_state_bytes new keys are refused with RESOURCE_EXHAUSTED naming the cap, on Append and AppendStream; overwrites pass', async () => {
    const maxStateBytes = 2 * (2 + 2 + ENTRY_OVERHEAD_BYTES);
    await withServed({ state: { maxStateBytes } }, async ({ client }) => {
      await client.append({ records: [put('k1', 'v1'), put('k2', 'v2')] });
      // Once the view has applied them (a Get waits for that), k1 is a key it holds: an overwrite.
      await client.get({ key: Buffer.from('k2') });
      const refused = await failureOf(client.append({ records: [put('k1', 'v3'), put('k3', 'v3')] }));
      assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
      assert.equal(refused.reason, 'WAL_STATE_FULL');
      assert.deepEqual(refused.metadata, {
        field: 'records[1]',
        configKey: 'max_state_bytes',
        limit: String(maxStateBytes),
        stateBytes: String(maxStateBytes),
      });
      assert.equal((await client.getStats()).nextOffset, 2n, 'nothing of the refused batch was written');
      await client.append({ records: [put('k1', 'v1 grown'), { value: Buffer.from('keyless') }] });
      assert.equal((await client.get({ key: Buffer.from('k1') })).value.toString(), 'v1 grown');

      const call = client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      call.write(AppendStreamRequest.fromPartial({ requestId: 1n, append: { records: [put('k4', 'v4')] } }));
      call.write(AppendStreamRequest.fromPartial({ requestId: 2n, append: { records: [put('k2', 'v5')] } }));
      call.end();
      const first = await reader.next();
      assert.equal(first.result?.$case, 'error');
      const status4 = first.result?.$case === 'error' ? first.result.value : undefined;
      assert.equal(status4?.code, status.RESOURCE_EXHAUSTED);
      assert.equal(errorInfoOfStatus(status4!)?.reason, 'WAL_STATE_FULL');
      assert.equal((await reader.next()).result?.$case, 'appended');
      assert.equal(await reader.end(), undefined);
      assert.equal((await client.get({ key: Buffer.from('k2') })).value.toString(), 'v5');
    });
  });

  test('a restart rebuilds the same view from the log, and from a snapshot on disk, which the report and GetStats name', async () => {
    await withServed({}, async (served, dataDir) => {
      await served.client.append({ records: [put('a', '1'), put('b', '2'), put('c', '3')] });
      await served.client.append({ records: [del('b'), put('a', '4')] });
      const before = await everything(served.client);
      await served.stop();

      const fromLog = await serve(dataDir);
      assert.equal(fromLog.stateReport.snapshot, undefined);
      assert.equal(fromLog.stateReport.recordsReplayed, 5);
      assert.deepEqual(await everything(fromLog.client), before);
      const written = await writeSnapshot(fromLog.server.wal.storage, fromLog.server.state.snapshotDir, fromLog.server.state.captureView(), { type: 'full' });
      assert.equal(written.path, join(dataDir, 'snapshots', `${written.id}.snap`));
      await fromLog.client.append({ records: [put('d', '5'), del('c')] });
      const after = await everything(fromLog.client);
      const stats = await fromLog.client.getStats();
      assert.equal(stats.keyCount, 2n);
      assert.equal(stats.stateMemoryBytes, BigInt(fromLog.server.state.memoryBytes));
      assert.ok(stats.stateMemoryBytes >= BigInt(2 * (1 + 1 + ENTRY_OVERHEAD_BYTES)), 'two keys of one byte with values of one byte');
      assert.equal(stats.snapshotCount, 1);
      assert.equal(stats.lastSnapshotId, written.id);
      assert.equal(stats.lastSnapshotOffset, 5n);
      await fromLog.stop();

      const fromSnapshot = await serve(dataDir);
      try {
        assert.equal(fromSnapshot.stateReport.snapshot?.id, written.id);
        assert.equal(fromSnapshot.stateReport.snapshot?.walOffset, 5);
        assert.equal(fromSnapshot.stateReport.replayedFrom, 5);
        assert.equal(fromSnapshot.stateReport.recordsReplayed, 2);
        assert.deepEqual(await everything(fromSnapshot.client), after);
      } finally {
        await fromSnapshot.stop();
      }
    });
  });
});
