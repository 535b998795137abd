import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { AppendRequest } from '../../src/gen/wald/v1/append.js';
import { RecordType } from '../../src/gen/wald/v1/record.js';
import { WriteState } from '../../src/gen/wald/v1/stats.js';
import { failureOf, startServer, values } from './support/harness.js';

describe('Append and Read', { timeout: 120_000 }, () => {
  test('reads back appended records byte for byte, with offsets, timestamps, keys, headers and types', async () => {
    const h = await startServer();
    try {
      const first = await h.client.append({
        records: [
          { key: Buffer.from('k1'), value: Buffer.from('hello'), headers: { trace: Buffer.from([0, 1, 2]) } },
          { value: Buffer.alloc(0) },
          { key: Buffer.alloc(0), value: Buffer.from([255, 0, 128]), type: RecordType.RECORD_TYPE_PUT },
        ],
      });
      assert.equal(first.firstOffset, 0n);
      assert.equal(first.lastOffset, 2n);
      assert.equal(first.duplicate, false);
      const second = await h.client.append({ records: [{ key: Buffer.from('k1'), value: Buffer.alloc(0), type: RecordType.RECORD_TYPE_DELETE }] });
      assert.equal(second.firstOffset, 3n);
      assert.ok(second.timestamp >= first.timestamp);

      const read = await h.client.read({ fromOffset: 0n });
      assert.equal(read.records.length, 4);
      assert.equal(read.nextOffset, 4n);
      assert.equal(read.highWatermark, 3n);
      assert.equal(read.firstOffset, 0n);
      const [a, b, c, d] = read.records;
      assert.deepEqual([a!.offset, b!.offset, c!.offset, d!.offset], [0n, 1n, 2n, 3n]);
      assert.deepEqual(a!.key, Buffer.from('k1'));
      assert.deepEqual(a!.value, Buffer.from('hello'));
      assert.deepEqual(a!.headers, { trace: Buffer.from([0, 1, 2]) });
      assert.equal(a!.type, RecordType.RECORD_TYPE_PUT);
      assert.equal(a!.timestamp, first.timestamp);
      assert.equal(b!.key, undefined, 'an absent key stays absent');
      assert.deepEqual(b!.value, Buffer.alloc(0));
      assert.deepEqual(c!.key, Buffer.alloc(0), 'an empty key is still a key');
      assert.deepEqual(c!.value, Buffer.from([255, 0, 128]));
      assert.equal(d!.type, RecordType.RECORD_TYPE_DELETE);
      assert.equal(d!.timestamp, second.timestamp);
    } finally {
      await h.close();
    }
  });

  test('an empty log reads as no records with the high watermark unset', async () => {
    const h = await startServer();
    try {
      const read = await h.client.read({ fromOffset: 0n });
      assert.deepEqual(read.records, []);
      assert.equal(read.nextOffset, 0n);
      assert.equal(read.highWatermark, undefined);
      const stats = await h.client.getStats();
      assert.equal(stats.entryCount, 0n);
      assert.equal(stats.latestOffset, undefined);
      assert.equal(stats.highWatermark, undefined);
      assert.equal(stats.nextOffset, 0n);
      const synced = await h.client.sync();
      assert.equal(synced.highWatermark, undefined);
    } finally {
      await h.close();
    }
  });

  test('proto3 optional presence: an empty key, expected_offset 0 and a high watermark of 0 are real values, not "unset"', async () => {
    const h = await startServer();
    try {
      const first = await h.client.append({ records: [{ key: Buffer.alloc(0), value: Buffer.from('a') }], expectedOffset: 0n });
      assert.equal(first.firstOffset, 0n);
      const deleted = await h.client.append({ records: [{ key: Buffer.alloc(0), value: Buffer.alloc(0), type: RecordType.RECORD_TYPE_DELETE }] });
      assert.equal(deleted.firstOffset, 1n, 'a DELETE of the empty key has a key');
      const read = await h.client.read({ fromOffset: 0n, limit: 1 });
      assert.equal(read.highWatermark, 1n);
      const [record] = read.records;
      assert.ok(record!.key !== undefined && record!.key.length === 0, 'the empty key reads back set and empty');
      const tooLate = await failureOf(h.client.append({ records: values(1), expectedOffset: 0n }));
      assert.equal(tooLate.reason, 'WAL_OFFSET_MISMATCH', 'expected_offset 0 is a condition, not "no condition"');

      const one = await startServer();
      try {
        await one.client.append({ records: values(1) });
        assert.equal((await one.client.read({ fromOffset: 0n })).highWatermark, 0n, 'a high watermark of 0 is set');
        const stats = await one.client.getStats();
        assert.equal(stats.latestOffset, 0n);
        assert.equal(stats.highWatermark, 0n);
        assert.equal((await one.client.sync()).highWatermark, 0n);
      } finally {
        await one.close();
      }
    } finally {
      await h.close();
    }
  });

  test('Read honours limit (default 100, max 1000), max_bytes and next_offset', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: values(150) });
      const byDefault = await h.client.read({ fromOffset: 0n });
      assert.equal(byDefault.records.length, 100);
      assert.equal(byDefault.nextOffset, 100n);
      const rest = await h.client.read({ fromOffset: byDefault.nextOffset, limit: 1000 });
      assert.equal(rest.records.length, 50);
      assert.equal(rest.nextOffset, 150n);
      const atEnd = await h.client.read({ fromOffset: 150n });
      assert.deepEqual(atEnd.records, []);
      assert.equal(atEnd.nextOffset, 150n);
      const limited = await h.client.read({ fromOffset: 10n, limit: 3 });
      assert.deepEqual(limited.records.map((r) => r.offset), [10n, 11n, 12n]);
      const small = await h.client.read({ fromOffset: 0n, limit: 1000, maxBytes: 1 });
      assert.equal(small.records.length, 1, 'at least one record, even above max_bytes');
      const some = await h.client.read({ fromOffset: 0n, limit: 1000, maxBytes: 300 });
      assert.ok(some.records.length > 1 && some.records.length < 150, `got ${some.records.length}`);

      const tooMany = await failureOf(h.client.read({ fromOffset: 0n, limit: 1001 }));
      assert.equal(tooMany.code, status.INVALID_ARGUMENT);
      assert.equal(tooMany.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(tooMany.metadata['field'], 'limit');
    } finally {
      await h.close();
    }
  });

  test('Read outside the log fails with OUT_OF_RANGE or INVALID_ARGUMENT naming the offset', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: values(3) });
      const beyond = await failureOf(h.client.read({ fromOffset: 10n }));
      assert.equal(beyond.code, status.OUT_OF_RANGE);
      assert.equal(beyond.reason, 'WAL_OFFSET_OUT_OF_RANGE');
      assert.equal(beyond.domain, 'wald.dev');
      assert.equal(beyond.metadata['fromOffset'], '10');
      assert.equal(beyond.metadata['highWatermark'], '2');
      assert.equal(beyond.statusCode, status.OUT_OF_RANGE);

      const huge = await failureOf(h.client.read({ fromOffset: 2n ** 63n }));
      assert.equal(huge.code, status.INVALID_ARGUMENT);
      assert.equal(huge.metadata['field'], 'from_offset');
      const maximal = await failureOf(h.client.read({ fromOffset: 2n ** 64n - 1n }));
      assert.equal(maximal.metadata['field'], 'from_offset');
    } finally {
      await h.close();
    }
  });

  test('reading below the first retained offset fails with OUT_OF_RANGE WAL_OFFSET_COMPACTED', async () => {
    const h = await startServer({ wal: { segmentSizeBytes: 4096 } });
    try {
      for (let i = 0; i < 20; i++) {
        await h.client.append({ records: values(10, `batch${i}-`).map((r) => ({ value: Buffer.concat([r.value, Buffer.alloc(200)]) })) });
      }
      const deleted = await h.server.wal.deleteSegmentsBefore(150);
      assert.ok(deleted > 0);
      const first = (await h.client.getStats()).firstOffset;
      assert.ok(first > 0n);
      const compacted = await failureOf(h.client.read({ fromOffset: 0n }));
      assert.equal(compacted.code, status.OUT_OF_RANGE);
      assert.equal(compacted.reason, 'WAL_OFFSET_COMPACTED');
      assert.equal(compacted.metadata['firstOffset'], String(first));
      const retained = await h.client.read({ fromOffset: first, limit: 1 });
      assert.equal(retained.records[0]!.offset, first);
      assert.equal(retained.firstOffset, first);
    } finally {
      await h.close();
    }
  });
});

describe('Append validation', { timeout: 120_000 }, () => {
  test('a header named __proto__ is stored and read back as an ordinary header', async () => {
    const h = await startServer();
    try {
      // Built by hand: fromPartial would assign the name and so change the object's prototype.
      const headers: { [name: string]: Buffer } = { plain: Buffer.from('p') };
      Object.defineProperty(headers, '__proto__', { value: Buffer.from('proto-value'), enumerable: true });
      const request: AppendRequest = { records: [{ value: Buffer.from('v'), headers, type: RecordType.RECORD_TYPE_UNSPECIFIED }], producerId: '', sequence: 0n, sync: false, minReplicas: 0 };
      await new Promise<void>((resolve, reject) => h.client.raw.append(request, (error) => (error ? reject(error) : resolve())));
      const [record] = (await h.client.read({ fromOffset: 0n })).records;
      assert.deepEqual(Object.keys(record!.headers), ['plain']);
      // The generated decoder on this side turns the header into the prototype again.
      assert.deepEqual(Object.getPrototypeOf(record!.headers), Buffer.from('proto-value'));
    } finally {
      await h.close();
    }
  });

  test('every malformed field gets INVALID_ARGUMENT naming it, and the server goes on', async () => {
    const h = await startServer();
    try {
      const cases: { request: Parameters<typeof h.client.append>[0]; field: string }[] = [
        { request: { records: [] }, field: 'records' },
        { request: { records: [{ value: Buffer.from('x'), type: 99 as RecordType }] }, field: 'records[0].type' },
        { request: { records: [{ value: Buffer.from('x') }, { value: Buffer.from('x'), type: RecordType.RECORD_TYPE_CHECKPOINT }] }, field: 'records[1].type' },
        { request: { records: [{ value: Buffer.from('x'), type: RecordType.RECORD_TYPE_DELETE }] }, field: 'records[0].key' },
        { request: { records: [{ value: Buffer.from('x'), headers: { '': Buffer.from('v') } }] }, field: 'records[0].headers' },
        { request: { records: [{ value: Buffer.from('x'), headers: { ['n'.repeat(70_000)]: Buffer.from('v') } }] }, field: 'records[0].headers' },
        {
          request: { records: [{ value: Buffer.from('x'), headers: Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`h${i}`, Buffer.alloc(0)])) }] },
          field: 'records[0].headers',
        },
        { request: { records: values(1), producerId: 'p'.repeat(257), sequence: 1n }, field: 'producer_id' },
        { request: { records: values(1), expectedOffset: 0n, producerId: 'p'.repeat(257) }, field: 'producer_id' },
        { request: { records: values(1), sequence: 5n }, field: 'sequence' },
        { request: { records: values(1), producerId: 'p', sequence: 2n ** 60n }, field: 'sequence' },
        { request: { records: values(1), expectedOffset: 2n ** 60n }, field: 'expected_offset' },
      ];
      for (const { request, field } of cases) {
        const failure = await failureOf(h.client.append(request));
        assert.equal(failure.code, status.INVALID_ARGUMENT, field);
        assert.equal(failure.reason, 'WAL_INVALID_ARGUMENT', field);
        assert.equal(failure.metadata['field'], field);
        assert.ok(failure.message.startsWith(`${field}: `), `the message names the field as the proto does: ${failure.message}`);
      }
      const stats = await h.client.getStats();
      assert.equal(stats.entryCount, 0n, 'nothing was written');
      const ok = await h.client.append({ records: values(1) });
      assert.equal(ok.firstOffset, 0n);
    } finally {
      await h.close();
    }
  });

  test('oversize records and batches get INVALID_ARGUMENT with the size reason and the field', async () => {
    const h = await startServer({ wal: { maxRecordBytes: 1024, maxBatchBytes: 8 * 1024, maxBatchRecords: 20 } });
    try {
      const record = await failureOf(h.client.append({ records: [{ value: Buffer.alloc(10) }, { value: Buffer.alloc(2000) }] }));
      assert.equal(record.code, status.INVALID_ARGUMENT);
      assert.equal(record.reason, 'WAL_RECORD_TOO_LARGE');
      assert.equal(record.metadata['field'], 'records[1]');
      assert.equal(record.metadata['limit'], '1024');
      assert.equal(record.metadata['configKey'], 'max_record_bytes');

      const count = await failureOf(h.client.append({ records: values(21) }));
      assert.equal(count.code, status.INVALID_ARGUMENT);
      assert.equal(count.reason, 'WAL_BATCH_TOO_LARGE');
      assert.equal(count.metadata['field'], 'records');
      assert.equal(count.metadata['limit'], '20');
      assert.equal(count.metadata['configKey'], 'max_batch_records');

      const bytes = await failureOf(h.client.append({ records: Array.from({ length: 10 }, () => ({ value: Buffer.alloc(1000) })) }));
      assert.equal(bytes.code, status.INVALID_ARGUMENT);
      assert.equal(bytes.reason, 'WAL_BATCH_TOO_LARGE');
      assert.equal(bytes.metadata['field'], 'records');
      assert.equal(bytes.metadata['limit'], String(8 * 1024));
      assert.equal(bytes.metadata['configKey'], 'max_batch_bytes');

      assert.equal((await h.client.getStats()).entryCount, 0n, 'nothing was written');
    } finally {
      await h.close();
    }
  });

  test('a request above the receive limit is refused by the transport with RESOURCE_EXHAUSTED', async () => {
    const limit = 512 * 1024;
    const h = await startServer({
      wal: { maxBatchBytes: 64 * 1024, maxRecordBytes: 64 * 1024 },
      server: { maxReceiveMessageBytes: limit },
    });
    try {
      await assert.rejects(h.client.append({ records: [{ value: Buffer.alloc(limit + 1) }] }), (error: unknown) => {
        assert.equal((error as { code?: number }).code, status.RESOURCE_EXHAUSTED);
        return true;
      });
      const ok = await h.client.append({ records: values(1) });
      assert.equal(ok.firstOffset, 0n);
    } finally {
      await h.close();
    }
  });
});

describe('conditional and idempotent appends', { timeout: 120_000 }, () => {
  test('expected_offset appends only at that offset, else ABORTED WAL_OFFSET_MISMATCH', async () => {
    const h = await startServer();
    try {
      const first = await h.client.append({ records: values(2), expectedOffset: 0n });
      assert.equal(first.firstOffset, 0n);
      const mismatch = await failureOf(h.client.append({ records: values(1), expectedOffset: 0n }));
      assert.equal(mismatch.code, status.ABORTED);
      assert.equal(mismatch.reason, 'WAL_OFFSET_MISMATCH');
      assert.equal(mismatch.metadata['expectedOffset'], '0');
      assert.equal(mismatch.metadata['nextOffset'], '2');
      const next = await h.client.append({ records: values(1), expectedOffset: 2n });
      assert.equal(next.firstOffset, 2n);
      assert.equal((await h.client.getStats()).entryCount, 3n);
    } finally {
      await h.close();
    }
  });

  test('a retried producer sequence is acknowledged again, not written twice; a lower one is stale', async () => {
    const h = await startServer();
    try {
      const original = await h.client.append({ records: values(2), producerId: 'producer-a', sequence: 1n });
      assert.equal(original.duplicate, false);
      const retry = await h.client.append({ records: values(2), producerId: 'producer-a', sequence: 1n });
      assert.equal(retry.duplicate, true);
      assert.equal(retry.firstOffset, original.firstOffset);
      assert.equal(retry.lastOffset, original.lastOffset);
      assert.equal(retry.timestamp, original.timestamp);
      assert.equal((await h.client.getStats()).entryCount, 2n);

      const stale = await failureOf(h.client.append({ records: values(1), producerId: 'producer-a', sequence: 0n }));
      assert.equal(stale.code, status.FAILED_PRECONDITION);
      assert.equal(stale.reason, 'WAL_SEQUENCE_STALE');
      assert.equal(stale.metadata['producerId'], 'producer-a');
      assert.equal(stale.metadata['lastSequence'], '1');

      const other = await h.client.append({ records: values(1), producerId: 'producer-b', sequence: 0n });
      assert.equal(other.firstOffset, 2n);
      const next = await h.client.append({ records: values(1), producerId: 'producer-a', sequence: 2n });
      assert.equal(next.firstOffset, 3n);
      assert.equal(next.duplicate, false);
    } finally {
      await h.close();
    }
  });
});

describe('GetStats and Sync', { timeout: 120_000 }, () => {
  test('GetStats reports counts, offsets, I/O counters and the write state', async () => {
    // Without the recent frames, so that the read goes to the file and is counted.
    const h = await startServer({ wal: { tailCacheBytes: 0 } });
    try {
      await h.client.append({ records: values(5) });
      await h.client.append({ records: values(2), sync: true });
      await h.client.read({ fromOffset: 0n });
      const stats = await h.client.getStats();
      assert.equal(stats.entryCount, 7n);
      assert.equal(stats.segmentCount, 1n);
      assert.ok(stats.totalSizeBytes > 0n);
      assert.equal(stats.firstOffset, 0n);
      assert.equal(stats.latestOffset, 6n);
      assert.equal(stats.highWatermark, 6n);
      assert.equal(stats.nextOffset, 7n);
      assert.equal(stats.tailStreamCount, 0);
      assert.equal(stats.writeState, WriteState.WRITE_STATE_WRITABLE);
      const io = stats.ioStats!;
      assert.ok(io.bytesWritten > 0n && io.writes > 0n && io.fsyncs > 0n);
      assert.ok(io.bytesRead > 0n && io.reads > 0n);
    } finally {
      await h.close();
    }
  });

  test('Sync makes everything durable under the none policy and returns the durable offset', async () => {
    const h = await startServer({ wal: { syncPolicy: 'none' } });
    try {
      await h.client.append({ records: values(4) });
      const before = (await h.client.getStats()).ioStats!.fsyncs;
      const synced = await h.client.sync();
      assert.equal(synced.highWatermark, 3n);
      assert.ok((await h.client.getStats()).ioStats!.fsyncs > before);
    } finally {
      await h.close();
    }
  });
});
