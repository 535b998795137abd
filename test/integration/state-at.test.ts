/**
 * StateAt through a real server and a real client: lookups and a listing of the state at offsets
 * and instants while appends go on, across a compaction; the refusal of a point before the first
 * retained record (OUT_OF_RANGE, WAL_POINT_IN_TIME_UNAVAILABLE, the earliest state in the
 * metadata); create_snapshot (admin only with an auth file) writing a snapshot the state at that
 * point loads from; and `wald get --at` / `wald snapshot create --at` as child processes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import type { StateAtRequest, StateAtResponse } from '../../src/gen/wald/v1/point_in_time.js';
import { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import { hashAccessToken } from '../../src/server/auth/access-token.js';
import { runWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { failureOf, startServer, type Harness } from './support/harness.js';

function stateAt(client: WalServiceClient, request: Partial<StateAtRequest>, metadata = new Metadata()): Promise<StateAtResponse> {
  const full: StateAtRequest = { at: undefined, keys: [], list: undefined, createSnapshot: false, compress: false, ...request };
  return new Promise((resolve, reject) => client.stateAt(full, metadata, (error, response) => (error ? reject(error) : resolve(response))));
}

/** Appends `count` batches of one PUT of `k<i % keys>` = `v<i>`, each a ms later; returns each record's timestamp. */
async function putMany(h: Harness, from: number, count: number, keys: number): Promise<number[]> {
  const timestamps: number[] = [];
  for (let i = from; i < from + count; i++) {
    const result = await h.server.state.append([{ key: Buffer.from(`k${i % keys}`), value: Buffer.from(`v${i}`) }]);
    timestamps.push(result.timestamp);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return timestamps;
}

describe('StateAt', { timeout: 120_000 }, () => {
  test('answers lookups and a page of keys as the state was at an offset or an instant, while appends go on', async () => {
    const h = await startServer({ wal: { segmentSizeBytes: 4096 }, server: { state: { compaction: { retentionMs: 0 } } } });
    const client = new WalServiceClient(h.address, credentials.createInsecure());
    try {
      const timestamps = await putMany(h, 0, 60, 5);
      // k0 was last put at offset 55 (v55); at offset 30 (records 0..29) at 25.
      const at30 = await stateAt(client, { at: { $case: 'offset', value: 30n }, keys: [Buffer.from('k0'), Buffer.from('nope')], list: { prefix: Buffer.alloc(0), pageSize: 2, pageToken: '' } });
      assert.equal(at30.nextOffset, 30n);
      assert.equal(at30.recordsReplayed, 30n, 'no snapshot yet: replayed from offset 0');
      assert.equal(at30.snapshot, undefined);
      assert.equal(at30.keyCount, 5n);
      assert.deepEqual(at30.lookups.map((l) => [l.found, l.value.toString(), l.offset]), [[true, 'v25', 25n], [false, '', 0n]]);
      assert.deepEqual(at30.keys.map((k) => k.key.toString()), ['k0', 'k1']);
      assert.notEqual(at30.nextPageToken, '');
      const page2 = await stateAt(client, { at: { $case: 'offset', value: 30n }, list: { prefix: Buffer.alloc(0), pageSize: 2, pageToken: at30.nextPageToken } });
      assert.deepEqual(page2.keys.map((k) => k.key.toString()), ['k2', 'k3']);

      // Appends go on during a build; the state at an instant is every record stamped at or before it.
      const concurrent = putMany(h, 60, 20, 5);
      const instant = timestamps[41]!;
      const atInstant = await stateAt(client, { at: { $case: 'timestampMs', value: BigInt(instant) }, keys: [Buffer.from('k1')] });
      const expectedEnd = timestamps.findIndex((t) => t > instant);
      assert.equal(atInstant.nextOffset, BigInt(expectedEnd));
      const lastK1 = [...Array(expectedEnd).keys()].filter((i) => i % 5 === 1).at(-1)!;
      assert.equal(atInstant.lookups[0]?.value.toString(), `v${lastK1}`);
      await concurrent;
      const live = await h.client.get({ key: Buffer.from('k1') });
      assert.equal(live.value.toString(), 'v76', 'the live view is untouched');

      // After a compaction, an old point is refused naming the earliest state; a later one is built from the snapshot.
      await h.server.state.createSnapshot();
      const compacted = await h.client.compact({});
      assert.ok(compacted.segmentsDeleted > 0, 'the compaction deleted segments');
      const firstOffset = h.server.wal.firstOffset;
      const refused = await failureOf(stateAt(client, { at: { $case: 'offset', value: 3n } }));
      assert.equal(refused.statusCode, status.OUT_OF_RANGE);
      assert.equal(refused.reason, 'WAL_POINT_IN_TIME_UNAVAILABLE');
      assert.equal(refused.metadata['firstOffset'], String(firstOffset));
      assert.equal(refused.metadata['earliestOffset'], compacted.snapshotOffset.toString());
      assert.ok(refused.metadata['earliestTimestampMs'] !== undefined);
      const beforeFirst = await failureOf(stateAt(client, { at: { $case: 'timestampMs', value: BigInt(timestamps[0]!) } }));
      assert.equal(beforeFirst.reason, 'WAL_POINT_IN_TIME_UNAVAILABLE');
      const atEnd = await stateAt(client, { keys: [Buffer.from('k1')] });
      assert.equal(atEnd.snapshot?.walOffset, compacted.snapshotOffset);
      assert.equal(atEnd.lookups[0]?.value.toString(), 'v76');
      const beyond = await failureOf(stateAt(client, { at: { $case: 'offset', value: BigInt(h.server.wal.highWatermark + 5) } }));
      assert.equal(beyond.reason, 'WAL_OFFSET_OUT_OF_RANGE');
      const tooMany = await failureOf(stateAt(client, { keys: Array.from({ length: 1001 }, () => Buffer.from('k')) }));
      assert.equal(tooMany.statusCode, status.INVALID_ARGUMENT);
      assert.equal(tooMany.metadata['field'], 'keys');
    } finally {
      client.close();
      await h.close();
    }
  });

  test('lookups whose values come to more than max_response_bytes are refused, naming the key and field', async () => {
    const h = await startServer({ server: { maxResponseBytes: 64 * 1024 } });
    const client = new WalServiceClient(h.address, credentials.createInsecure());
    try {
      await h.server.state.append([{ key: Buffer.from('big'), value: Buffer.alloc(20_000, 1) }]);
      const three = await stateAt(client, { at: { $case: 'offset', value: 1n }, keys: [Buffer.from('big'), Buffer.from('big'), Buffer.from('big')] });
      assert.equal(three.lookups.length, 3);
      // Four copies of the same 20,000-byte value: the request is tiny, the answer would not be.
      const refused = await failureOf(stateAt(client, { at: { $case: 'offset', value: 1n }, keys: Array.from({ length: 4 }, () => Buffer.from('big')) }));
      assert.equal(refused.code, status.INVALID_ARGUMENT);
      assert.equal(refused.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(refused.metadata['field'], 'keys');
      assert.equal(refused.metadata['configKey'], 'max_response_bytes');
    } finally {
      client.close();
      await h.close();
    }
  });

  test('create_snapshot needs admin and writes a full snapshot of the state at the point; the CLI asks for both', async () => {
    const temp = makeTempDir('wald-state-at-');
    const authFile = join(temp.dir, 'auth.yaml');
    const tokens = { read: 'state-at-reader', admin: 'state-at-admin' };
    writeFileSync(authFile, `tokens:\n${Object.entries(tokens).map(([role, token]) => `  - name: ${role}\n    token_sha256: ${hashAccessToken(token)}\n    role: ${role}\n`).join('')}`);
    const h = await startServer({ server: { authFile } });
    const client = new WalServiceClient(h.address, credentials.createInsecure());
    const as = (role: 'read' | 'admin'): Metadata => {
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${tokens[role]}`);
      return metadata;
    };
    try {
      const timestamps = await putMany(h, 0, 20, 3);
      const lookup = await stateAt(client, { at: { $case: 'offset', value: 10n }, keys: [Buffer.from('k0')] }, as('read'));
      assert.equal(lookup.lookups[0]?.value.toString(), 'v9');
      const denied = await failureOf(stateAt(client, { at: { $case: 'offset', value: 10n }, createSnapshot: true }, as('read')));
      assert.equal(denied.statusCode, status.PERMISSION_DENIED);
      assert.deepEqual(denied.metadata, { rpc: 'StateAt', requiredRole: 'admin', role: 'read' });
      const made = await stateAt(client, { at: { $case: 'offset', value: 10n }, createSnapshot: true }, as('admin'));
      assert.equal(made.createdSnapshot?.walOffset, 10n);
      assert.equal(made.createdSnapshot?.entryCount, 3n);
      const again = await stateAt(client, { at: { $case: 'offset', value: 10n } }, as('read'));
      assert.equal(again.snapshot?.snapshotId, made.createdSnapshot?.snapshotId, 'the state at 10 now loads from that snapshot');
      assert.equal(again.recordsReplayed, 0n);

      // The command line: wald get KEY --at TIME, and wald snapshot create --at-offset N.
      const base = ['--server', h.address, '--token-file', join(temp.dir, 'admin.token')];
      writeFileSync(join(temp.dir, 'admin.token'), tokens.admin);
      const time = new Date(timestamps[4]!).toISOString();
      const got = await runWald(['get', 'k1', '--at', time, '--json', ...base]);
      assert.equal(got.code, 0, got.stderr);
      const doc = JSON.parse(got.stdout) as Record<string, unknown>;
      assert.equal(doc['value'], 'v4');
      assert.equal(doc['state_offset'], timestamps.findIndex((t) => t > timestamps[4]!));
      const missing = await runWald(['get', 'k1', '--at-offset', '1', ...base]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /WAL_KEY_NOT_FOUND/);
      const created = await runWald(['snapshot', 'create', '--at-offset', '7', '--json', ...base]);
      assert.equal(created.code, 0, created.stderr);
      const createdDoc = JSON.parse(created.stdout) as Record<string, unknown>;
      assert.equal(createdDoc['wal_offset'], 7);
      assert.equal(createdDoc['type'], 'full');
      const bad = await runWald(['get', 'k1', '--at', 'yesterday', ...base]);
      assert.equal(bad.code, 2, 'a time that is neither epoch ms nor RFC 3339 is a usage error');
    } finally {
      client.close();
      await h.close();
      temp.remove();
    }
  });
});
