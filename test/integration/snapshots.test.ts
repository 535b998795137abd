/**
 * The snapshot RPCs against a real server on 127.0.0.1:0 and a real client: CreateSnapshot full,
 * incremental and gzip (and refused without a base), ListSnapshots paging, VerifySnapshot good and
 * damaged (the file at fault named, a damaged base named through its incremental), GetSnapshot's
 * bytes against the file and its checksum, SnapshotKey, the checks of client ids, and appends
 * that keep flowing while a snapshot of a large state is written.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { SnapshotType, type SnapshotInfo } from '../../src/gen/wald/v1/snapshot.js';
import { RecordType } from '../../src/gen/wald/v1/record.js';
import { failureOf, startServer, type Harness } from './support/harness.js';
import { SnapshotClient } from './support/snapshot-client.js';

async function withHarness(body: (h: Harness, snapshots: SnapshotClient) => Promise<void>): Promise<void> {
  const h = await startServer();
  try {
    await body(h, new SnapshotClient(h.client.raw));
  } finally {
    await h.close();
  }
}

const put = (key: string, value: string): { key: Buffer; value: Buffer } => ({ key: Buffer.from(key), value: Buffer.from(value) });

/**
 * The bytes of the server's file at `path`, read through its own storage: the disk, or under
 * WALD_TEST_STORAGE=memory its MemoryStorage (test/support/test-storage.ts).
 */
function readStored(h: Harness, path: string): Buffer {
  return h.server.wal.storage.readFile(path);
}

/** Flips one bit of the byte at `position` of the server's file at `path` (negative: from the end). */
function flipByte(h: Harness, path: string, position: number): void {
  const bytes = readStored(h, path);
  const at = position < 0 ? bytes.length + position : position;
  const file = h.server.wal.storage.open(path, 'read-write');
  try {
    file.writev([Buffer.from([bytes[at]! ^ 0x10])], at);
  } finally {
    file.close();
  }
}

/** The SHA-256 a snapshot's checksum stands for: every byte but the 40-byte trailer. */
function snapshotChecksum(bytes: Buffer): string {
  return createHash('sha256').update(bytes.subarray(0, bytes.length - 40)).digest('hex');
}

describe('CreateSnapshot', () => {
  test('writes a full snapshot, then an incremental one on it holding only the keys put or deleted since, and gzip ones that verify', async () => {
    await withHarness(async (h, snapshots) => {
      await h.client.append({ records: [put('a', '1'), put('b', '2'), put('c', '3')] });
      const full = await snapshots.createSnapshot();
      assert.equal(full.type, SnapshotType.SNAPSHOT_TYPE_FULL);
      assert.equal(full.walOffset, 3n);
      assert.equal(full.entryCount, 3n);
      assert.equal(full.tombstoneCount, 0n);
      assert.equal(full.compressed, false);
      assert.equal(full.baseSnapshotId, '');
      assert.match(full.snapshotId, /^\d{20}-\d{15}-[0-9a-f]{8}$/);
      assert.equal(basename(full.path), `${full.snapshotId}.snap`);
      const fullBytes = readStored(h, full.path);
      assert.equal(BigInt(fullBytes.length), full.sizeBytes);
      assert.equal(full.checksum, snapshotChecksum(fullBytes));

      await h.client.append({ records: [put('b', '22'), { key: Buffer.from('c'), value: Buffer.alloc(0), type: RecordType.RECORD_TYPE_DELETE }, put('d', '4')] });
      const incremental = await snapshots.createSnapshot({ incremental: true });
      assert.equal(incremental.type, SnapshotType.SNAPSHOT_TYPE_INCREMENTAL);
      assert.equal(incremental.walOffset, 6n);
      assert.equal(incremental.entryCount, 2n, 'b and d');
      assert.equal(incremental.tombstoneCount, 1n, 'c');
      assert.equal(incremental.baseSnapshotId, full.snapshotId);

      const gzip = await snapshots.createSnapshot({ compress: true });
      assert.equal(gzip.compressed, true);
      assert.equal(gzip.entryCount, 3n, 'a, b and d');
      assert.equal(gzip.checksum, snapshotChecksum(readStored(h, gzip.path)));
      assert.equal(readStored(h, gzip.path)[72], 0x1f, 'the body is a gzip stream');
      const gzipIncremental = await snapshots.createSnapshot({ compress: true, incremental: true });
      assert.equal(gzipIncremental.baseSnapshotId, gzip.snapshotId);
      assert.equal(gzipIncremental.entryCount, 0n);
      for (const id of [incremental.snapshotId, gzip.snapshotId, gzipIncremental.snapshotId]) {
        assert.equal((await snapshots.verifySnapshot(id)).valid, true, id);
      }
    });
  });

  test('refuses an incremental without a full snapshot to build on: FAILED_PRECONDITION, WAL_SNAPSHOT_NO_BASE', async () => {
    await withHarness(async (h, snapshots) => {
      await h.client.append({ records: [put('a', '1')] });
      const failure = await failureOf(snapshots.createSnapshot({ incremental: true }));
      assert.equal(failure.code, status.FAILED_PRECONDITION);
      assert.equal(failure.reason, 'WAL_SNAPSHOT_NO_BASE');
      assert.equal(failure.metadata['snapshotDir'], join(h.dir, 'snapshots'));
      assert.equal((await snapshots.listSnapshots()).snapshots.length, 0, 'nothing was written');
    });
  });
});

describe('ListSnapshots', () => {
  test('pages through every snapshot in id order with page_size and next_page_token; refuses a negative size and a foreign token', async () => {
    await withHarness(async (h, snapshots) => {
      const created: string[] = [];
      for (let i = 0; i < 5; i++) {
        await h.client.append({ records: [put(`k${i}`, 'v')] });
        created.push(i === 2 ? (await snapshots.snapshotKey('k2')).snapshotId : (await snapshots.createSnapshot()).snapshotId);
      }
      const all = await snapshots.listSnapshots();
      assert.deepEqual(all.snapshots.map((info) => info.snapshotId), created);
      assert.equal(all.nextPageToken, '');
      assert.equal(all.snapshots[2]!.type, SnapshotType.SNAPSHOT_TYPE_POINT);
      for (const info of all.snapshots) {
        assert.equal(info.checksum, snapshotChecksum(readStored(h, info.path)), 'the trailer checksum');
        assert.equal(BigInt(readStored(h, info.path).length), info.sizeBytes);
      }

      const paged: SnapshotInfo[][] = [];
      let token = '';
      for (let pages = 0; pages < 10; pages++) {
        const page = await snapshots.listSnapshots(2, token);
        paged.push(page.snapshots);
        token = page.nextPageToken;
        if (token === '') break;
      }
      assert.deepEqual(paged.map((page) => page.length), [2, 2, 1]);
      assert.deepEqual(paged.flat(), all.snapshots);

      const negative = await failureOf(snapshots.listSnapshots(-1));
      assert.equal(negative.code, status.INVALID_ARGUMENT);
      assert.equal(negative.metadata['field'], 'page_size');
      for (const bad of ['nonsense!', 'czEuMTIz', Buffer.from(`x1.${created[0]}`).toString('base64url')]) {
        const foreign = await failureOf(snapshots.listSnapshots(2, bad));
        assert.equal(foreign.code, status.INVALID_ARGUMENT, bad);
        assert.equal(foreign.reason, 'WAL_INVALID_ARGUMENT');
        assert.equal(foreign.metadata['field'], 'page_token');
      }
    });
  });
});

describe('VerifySnapshot', () => {
  test('verifies a chain base first with the recomputed checksums; a flipped byte is a verdict naming the file and the reason', async () => {
    await withHarness(async (h, snapshots) => {
      await h.client.append({ records: [put('a', '1'), put('b', '2')] });
      const full = await snapshots.createSnapshot();
      await h.client.append({ records: [put('c', '3')] });
      const incremental = await snapshots.createSnapshot({ incremental: true });

      const good = await snapshots.verifySnapshot(incremental.snapshotId);
      assert.equal(good.valid, true);
      assert.equal(good.failedPath, '');
      assert.equal(good.reason, '');
      assert.deepEqual(good.chain.map((info) => [info.snapshotId, info.checksum]), [
        [full.snapshotId, full.checksum],
        [incremental.snapshotId, incremental.checksum],
      ]);

      flipByte(h, incremental.path, 80);
      const damaged = await snapshots.verifySnapshot(incremental.snapshotId);
      assert.equal(damaged.valid, false);
      assert.equal(damaged.failedPath, incremental.path);
      assert.equal(damaged.reason, 'checksum mismatch');
      assert.deepEqual(damaged.chain, []);
      flipByte(h, incremental.path, 80);

      flipByte(h, full.path, -1);
      const badBase = await snapshots.verifySnapshot(incremental.snapshotId);
      assert.equal(badBase.valid, false);
      assert.equal(badBase.failedPath, full.path, 'the base is named, not the incremental asked for');
      assert.equal(badBase.reason, 'checksum mismatch');
    });
  });

  test('a malformed id is INVALID_ARGUMENT naming snapshot_id and never a path; an unknown id is NOT_FOUND WAL_SNAPSHOT_NOT_FOUND', async () => {
    await withHarness(async (h, snapshots) => {
      await h.client.append({ records: [put('a', '1')] });
      const { snapshotId } = await snapshots.createSnapshot();
      // A file beside the data directory that a path-like id would reach.
      writeFileSync(join(dirname(h.dir), `${basename(h.dir)}-outside.snap`), 'x');
      try {
        for (const id of ['', '../x', `../${snapshotId}`, `${snapshotId}/../${snapshotId}`, `${snapshotId}.snap`, snapshotId.toUpperCase() + 'F', `../../${basename(h.dir)}-outside`]) {
          const failure = await failureOf(snapshots.verifySnapshot(id));
          assert.equal(failure.code, status.INVALID_ARGUMENT, id);
          assert.equal(failure.metadata['field'], 'snapshot_id', id);
          const streamed = await failureOf(snapshots.getSnapshot(id));
          assert.equal(streamed.code, status.INVALID_ARGUMENT, id);
          assert.equal(streamed.metadata['field'], 'snapshot_id', id);
        }
      } finally {
        rmSync(join(dirname(h.dir), `${basename(h.dir)}-outside.snap`));
      }
      const unknown = snapshotId.slice(0, -1) + (snapshotId.endsWith('0') ? '1' : '0');
      for (const failure of [await failureOf(snapshots.verifySnapshot(unknown)), await failureOf(snapshots.getSnapshot(unknown))]) {
        assert.equal(failure.code, status.NOT_FOUND);
        assert.equal(failure.reason, 'WAL_SNAPSHOT_NOT_FOUND');
        assert.equal(failure.metadata['snapshotId'], unknown);
      }
    });
  });
});

describe('GetSnapshot', () => {
  test('streams the info with the checksum, then chunks whose bytes equal the file and whose SHA-256 equals the checksum', async () => {
    await withHarness(async (h, snapshots) => {
      // About 1.2 MB of state: several 256 KiB chunks.
      for (let batch = 0; batch < 4; batch++) {
        await h.client.append({ records: Array.from({ length: 300 }, (_, i) => put(`key-${batch}-${i}`, `${i}`.repeat(1000).slice(0, 1000))) });
      }
      for (const compress of [false, true]) {
        const created = await snapshots.createSnapshot({ compress });
        const fetched = await snapshots.getSnapshot(created.snapshotId);
        const file = readStored(h, created.path);
        assert.equal(fetched.info.snapshotId, created.snapshotId);
        assert.equal(fetched.info.checksum, created.checksum);
        assert.equal(fetched.info.sizeBytes, BigInt(file.length));
        assert.equal(fetched.info.compressed, compress);
        assert.ok(fetched.bytes.equals(file), 'the bytes are the file');
        assert.equal(snapshotChecksum(fetched.bytes), fetched.info.checksum);
        assert.equal(fetched.bytes.subarray(fetched.bytes.length - 32).toString('hex'), fetched.info.checksum, 'the trailer holds it too');
        if (!compress) assert.ok(fetched.chunkCount >= 4, `${fetched.chunkCount} chunks`);
      }
    });
  });
});

describe('GetSnapshot streams', () => {
  test('an ended stream gives its place back: more GetSnapshot calls one after another than maxSnapshotStreams allows at once', async () => {
    const h = await startServer({ server: { maxSnapshotStreams: 1 } });
    try {
      const snapshots = new SnapshotClient(h.client.raw);
      await h.client.append({ records: [put('a', '1')] });
      const { snapshotId, sizeBytes } = await snapshots.createSnapshot();
      for (let i = 0; i < 4; i++) {
        assert.equal(BigInt((await snapshots.getSnapshot(snapshotId)).bytes.length), sizeBytes, `call ${i}`);
        // The client has the status; the server forgets the stream once the call is over.
        if (h.server.snapshotStreams.size > 0) await once(h.server.snapshotStreams, 'close');
      }
    } finally {
      await h.close();
    }
  });
});

describe('SnapshotKey', () => {
  test("writes a point snapshot of a key's state; an unknown key is NOT_FOUND WAL_KEY_NOT_FOUND", async () => {
    await withHarness(async (h, snapshots) => {
      await h.client.append({ records: [put('user-1', 'old'), put('user-2', 'x'), put('user-1', 'new')] });
      const point = await snapshots.snapshotKey('user-1');
      assert.equal(point.walOffset, 3n);
      assert.match(point.checksum, /^[0-9a-f]{64}$/);
      const bytes = readStored(h, point.path);
      assert.equal(BigInt(bytes.length), point.sizeBytes);
      assert.equal(point.checksum, snapshotChecksum(bytes));
      assert.ok(bytes.includes(Buffer.from('user-1new')), 'the key and its latest value');
      assert.ok(!bytes.includes(Buffer.from('user-2')), 'no other key');
      const verified = await snapshots.verifySnapshot(point.snapshotId);
      assert.equal(verified.valid, true);
      assert.equal(verified.chain[0]!.type, SnapshotType.SNAPSHOT_TYPE_POINT);
      assert.equal(verified.chain[0]!.entryCount, 1n);

      const missing = await failureOf(snapshots.snapshotKey('nobody'));
      assert.equal(missing.code, status.NOT_FOUND);
      assert.equal(missing.reason, 'WAL_KEY_NOT_FOUND');
      assert.equal(missing.metadata['keyBase64'], Buffer.from('nobody').toString('base64'));
      assert.equal((await snapshots.listSnapshots()).snapshots.length, 1, 'no file for the missing key');
      assert.ok(h.server.wal.storage.exists(point.path));
    });
  });
});

describe('a snapshot of a large state', () => {
  test('keeps appends flowing: appends issued during CreateSnapshot of 200k keys all succeed, some before the snapshot is done', async (t) => {
    await withHarness(async (h, snapshots) => {
      const value = Buffer.alloc(32, 0x61);
      for (let batch = 0; batch < 20; batch++) {
        await h.server.wal.append(Array.from({ length: 10_000 }, (_, i) => ({ key: Buffer.from(`key-${batch}-${i}`), value })));
      }
      let isSnapshotDone = false;
      const snapshot = snapshots.createSnapshot().then((created) => {
        isSnapshotDone = true;
        return created;
      });
      const appends: Promise<boolean>[] = [];
      // One append after another, each waited for, until the snapshot is done (bounded).
      for (let i = 0; i < 100_000 && !isSnapshotDone; i++) {
        const append = h.client.append({ records: [put(`during-${i}`, 'x')] }).then(() => !isSnapshotDone);
        appends.push(append);
        await Promise.race([append, snapshot]);
      }
      const created = await snapshot;
      const beforeDone = await Promise.all(appends);
      assert.ok(created.entryCount >= 200_000n, `${created.entryCount} keys`);
      assert.ok(beforeDone.filter(Boolean).length > 0, `${beforeDone.filter(Boolean).length} of ${appends.length} appends completed while the snapshot was written`);
      // Every append issued is in the log after the 200k keys (and so acknowledged and durable).
      assert.equal(h.server.wal.nextOffset, 200_000 + appends.length);
      t.diagnostic(`${beforeDone.filter(Boolean).length} of ${appends.length} appends completed while the snapshot was written`);
    });
  });
});
