import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { RECORD_ALLOWANCE_BYTES } from '../../../src/codec/record-size.js';
import { Wal } from '../../../src/engine/wal.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import { isWalError } from '../../../src/errors.js';
import { FakeClock } from '../../support/fake-clock.js';
import { makeTempDir } from '../../support/temp-dir.js';
import { testStorage } from '../../support/test-storage.js';

const v = (s: string, key?: string): { value: Buffer; key?: Buffer } =>
  key === undefined ? { value: Buffer.from(s) } : { value: Buffer.from(s), key: Buffer.from(key) };

let dir: string;
let remove: () => void;
/** Disk (undefined), or under WALD_TEST_STORAGE=memory one MemoryStorage per test, which its reopens share. */
let storage: ReturnType<typeof testStorage>;
const opened: Wal[] = [];

beforeEach(() => {
  ({ dir, remove } = makeTempDir());
  storage = testStorage();
});
afterEach(async () => {
  for (const wal of opened.splice(0)) await wal.close();
  remove();
});

async function open(extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open({ dir, storage, segmentSizeBytes: 16 * 1024, indexIntervalBytes: 512, ...extra });
  opened.push(wal);
  return wal;
}

describe('append and read', () => {
  test('offsets start at 0 and are dense across batches and segments', async () => {
    const wal = await open();
    let expected = 0;
    for (let i = 0; i < 200; i++) {
      const batch = Array.from({ length: 1 + (i % 5) }, (_, r) => v(`${i}/${r}`.padEnd(60, '.')));
      const result = await wal.append(batch);
      assert.equal(result.firstOffset, expected);
      assert.equal(result.lastOffset, expected + batch.length - 1);
      expected += batch.length;
    }
    assert.ok(wal.stats().segmentCount > 3, 'the log rotated');
    let offset = 0;
    for await (const record of wal.range(0)) assert.equal(record.offset, offset++);
    assert.equal(offset, expected);
  });

  test('concurrent appenders: batches never interleave and every record reads back byte for byte', async () => {
    const wal = await open();
    const writers = 16;
    const perWriter = 40;
    const acked: { first: number; writer: number; i: number; size: number }[] = [];
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          const size = 1 + ((w + i) % 4);
          const records = Array.from({ length: size }, (_, r) => ({ key: Buffer.from(`w${w}`), value: Buffer.from(`w${w} i${i} r${r}`) }));
          const result = await wal.append(records);
          acked.push({ first: result.firstOffset, writer: w, i, size });
        }
      }),
    );
    const all = await wal.read(0, { limit: 1000 });
    const rest = await wal.read(all.length, { limit: 1000 });
    const records = [...all, ...rest];
    assert.equal(records.length, acked.reduce((s, a) => s + a.size, 0));
    for (const a of acked) {
      for (let r = 0; r < a.size; r++) {
        const record = records[a.first + r]!;
        assert.equal(record.value.toString(), `w${a.writer} i${a.i} r${r}`);
        assert.equal(record.key?.toString(), `w${a.writer}`);
      }
    }
  });

  test('records keep key, headers, type and a non-decreasing timestamp', async () => {
    const clock = new FakeClock();
    const wal = await open({ clock: clock.now });
    await wal.append([{ key: Buffer.alloc(0), value: Buffer.from('x'), headers: { 'content-type': Buffer.from('text/plain'), 'ünï': Buffer.from([0, 1]) } }]);
    clock.advance(-5000); // the wall clock steps back
    await wal.append([{ value: Buffer.alloc(0), type: 'delete', key: Buffer.from('k') }]);
    const [a, b] = await wal.read(0);
    assert.deepEqual(a!.key, Buffer.alloc(0), 'an empty key is still a key');
    assert.deepEqual(a!.headers['content-type'], Buffer.from('text/plain'));
    assert.deepEqual(a!.headers['ünï'], Buffer.from([0, 1]));
    assert.equal(a!.type, 'put');
    assert.equal(b!.type, 'delete');
    assert.equal(b!.value.length, 0);
    assert.ok(b!.timestamp >= a!.timestamp, 'timestamps never go back');
  });

  test('read honours limit and maxBytes (by recordSizeBytes), and returns at least one record', async () => {
    const wal = await open();
    await wal.append(Array.from({ length: 50 }, (_, i) => v(String(i).padStart(10, '0'))));
    assert.equal((await wal.read(0)).length, 50);
    assert.equal((await wal.read(10, { limit: 7 })).length, 7);
    assert.equal((await wal.read(10, { limit: 7 }))[0]!.offset, 10);
    // Each record: a 10-byte value, no key, no headers.
    const recordBytes = RECORD_ALLOWANCE_BYTES + 10;
    assert.equal((await wal.read(0, { maxBytes: 3 * recordBytes })).length, 3);
    assert.equal((await wal.read(0, { maxBytes: 4 * recordBytes - 1 })).length, 3);
    assert.equal((await wal.read(0, { maxBytes: 1 })).length, 1);
    assert.deepEqual(await wal.read(50), [], 'reading at the end returns nothing');
  });

  test('bad offsets and oversize input are refused with the right error', async () => {
    const wal = await open({ maxRecordBytes: 100, maxBatchBytes: 300 });
    await wal.append([v('a')]);
    await assert.rejects(wal.read(5), (e) => isWalError(e, 'WAL_OFFSET_OUT_OF_RANGE') && e.details['fromOffset'] === 5);
    await assert.rejects(wal.read(-1), RangeError);
    assert.throws(() => wal.append([]), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'records');
    assert.throws(
      () => wal.append([{ value: 'text' as unknown as Buffer }]),
      (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'records[0].value',
    );
    assert.throws(() => wal.append([v('x'.repeat(200))]), (e) => isWalError(e, 'WAL_RECORD_TOO_LARGE') && e.details['limit'] === 100);
    assert.throws(() => wal.append(Array.from({ length: 5 }, () => v('x'.repeat(80)))), (e) => isWalError(e, 'WAL_BATCH_TOO_LARGE'));
    assert.equal(wal.nextOffset, 1, 'refused batches take no offsets');
  });
});

describe('conditional and idempotent appends', () => {
  test('expectedOffset accepts the next offset and refuses any other', async () => {
    const wal = await open();
    await wal.append([v('a')], { expectedOffset: 0 });
    assert.throws(() => wal.append([v('b')], { expectedOffset: 0 }), (e) => isWalError(e, 'WAL_OFFSET_MISMATCH') && e.details['nextOffset'] === 1);
    const queued = wal.append([v('b')], { expectedOffset: 1 });
    // A second conditional append queued in the same turn sees the offset after the first.
    const chained = wal.append([v('c')], { expectedOffset: 2 });
    assert.equal((await queued).firstOffset, 1);
    assert.equal((await chained).firstOffset, 2);
  });

  test('a retried producer sequence is acknowledged again, not written twice, also after a restart', async () => {
    let wal = await open();
    const first = await wal.append([v('once')], { producerId: 'p1', sequence: 7 });
    const retry = await wal.append([v('once')], { producerId: 'p1', sequence: 7 });
    assert.equal(retry.firstOffset, first.firstOffset);
    assert.equal(retry.duplicate, true);
    assert.throws(() => wal.append([v('old')], { producerId: 'p1', sequence: 6 }), (e) => isWalError(e, 'WAL_SEQUENCE_STALE'));
    const [a, b] = await Promise.all([
      wal.append([v('twice?')], { producerId: 'p2', sequence: 1 }),
      wal.append([v('twice?')], { producerId: 'p2', sequence: 1 }),
    ]);
    assert.equal(a.firstOffset, b.firstOffset, 'a retry racing the original waits for it');
    assert.equal(wal.nextOffset, 2);
    await wal.close();
    opened.length = 0;
    wal = await open();
    const afterRestart = await wal.append([v('once')], { producerId: 'p1', sequence: 7 });
    assert.deepEqual([afterRestart.firstOffset, afterRestart.duplicate], [0, true]);
    assert.equal(wal.nextOffset, 2);
  });

  test('the producer table survives a crash (no clean close)', async () => {
    // Rotate so that the producer's append sits in a sealed segment, then re-open without a clean
    // close: the table comes back from the sealed segment's index plus a scan of the active one.
    const a = await Wal.open({ dir, storage, segmentSizeBytes: 4096 });
    await a.wal.append([v('sealed')], { producerId: 'p', sequence: 1 });
    for (let i = 0; i < 60; i++) await a.wal.append([v('filler'.padEnd(100, '.'))]);
    await a.wal.append([v('active')], { producerId: 'q', sequence: 1 });
    assert.ok(a.wal.stats().segmentCount > 1);
    // Simulate the crash: drop the lock without closing (the process is gone).
    (a.wal as unknown as { lock: { release(): void } }).lock.release();
    const wal = await open({ segmentSizeBytes: 4096 });
    assert.equal((await wal.append([v('sealed')], { producerId: 'p', sequence: 1 })).duplicate, true);
    assert.equal((await wal.append([v('active')], { producerId: 'q', sequence: 1 })).duplicate, true);
  });
});

describe('durability policies and tails', () => {
  test('interval syncs on its timer without further appends', async () => {
    const wal = await open({ syncPolicy: 'interval', syncIntervalMs: 5 });
    const before = wal.stats().io.fsyncs;
    const result = await wal.append([v('a')]);
    // Acknowledged after the write, before any sync: not yet visible.
    assert.equal(wal.stats().io.fsyncs, before, 'the append itself did not sync');
    assert.equal(wal.highWatermark, result.firstOffset - 1);
    // Visible once the timer's fdatasync makes it durable; nothing else syncs.
    assert.equal(await wal.waitForHighWatermark(result.firstOffset - 1), true);
    assert.ok(wal.highWatermark >= result.firstOffset);
    assert.ok(wal.stats().io.fsyncs > before, 'the timer synced');
  });

  test('none never syncs on its own, and a per-call sync forces one', async () => {
    const wal = await open({ syncPolicy: 'none', preallocate: false });
    const before = wal.stats().io.fsyncs;
    await wal.append([v('a')]);
    await wal.append([v('b')]);
    assert.equal(wal.stats().io.fsyncs, before);
    assert.equal(wal.highWatermark, 1, 'under none, written records are visible');
    await wal.append([v('c')], { sync: true });
    assert.equal(wal.stats().io.fsyncs, before + 1);
  });

  test('always shares one fsync among concurrent appends', async () => {
    const wal = await open({ preallocate: false });
    const before = wal.stats().io.fsyncs;
    await Promise.all(Array.from({ length: 50 }, (_, i) => wal.append([v(String(i))])));
    assert.equal(wal.stats().io.fsyncs - before, 1);
  });

  test('a tail catches up, follows live appends, and stops on abort', async () => {
    const wal = await open();
    await wal.append([v('old-0'), v('old-1')]);
    const controller = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const record of wal.tail(1, { signal: controller.signal })) {
        seen.push(record.value.toString());
        if (seen.length === 1) void wal.append([v('live-2')]);
        if (seen.length === 2) void wal.append([v('live-3'), v('live-4')]);
        if (seen.length === 4) controller.abort();
      }
    })();
    await done;
    assert.deepEqual(seen, ['old-1', 'live-2', 'live-3', 'live-4']);
  });

  test('a tail ends with WAL_CLOSED when the log closes', async () => {
    const { wal } = await Wal.open({ dir, storage });
    const iterator = wal.tail(0)[Symbol.asyncIterator]();
    const ended = assert.rejects(iterator.next(), (e) => isWalError(e, 'WAL_CLOSED'));
    await wal.close();
    await ended;
  });

  test('offsetForTimestamp finds the first record at or after a time', async () => {
    const clock = new FakeClock(1000);
    const wal = await open({ clock: clock.now, segmentSizeBytes: 4096 });
    for (let i = 0; i < 100; i++) {
      clock.advance(10);
      await wal.append([v(`t${clock.nowMs}`.padEnd(80, '.'))]);
    }
    assert.equal(await wal.offsetForTimestamp(0), 0);
    assert.equal(await wal.offsetForTimestamp(1010), 0);
    assert.equal(await wal.offsetForTimestamp(1011), 1);
    assert.equal(await wal.offsetForTimestamp(1500), 49);
    assert.equal(await wal.offsetForTimestamp(99_999), 100);
  });

  test('offsetForTimestamp finds a record in a frame larger than its read chunk', async () => {
    const clock = new FakeClock(1000);
    const wal = await open({ clock: clock.now, segmentSizeBytes: 1 << 20 });
    await wal.append([v('small')]);
    clock.advance(10);
    await wal.append([{ value: Buffer.alloc(200 * 1024, 1) }, { value: Buffer.alloc(100 * 1024, 2) }]);
    clock.advance(10);
    await wal.append([v('after')]);
    assert.equal(await wal.offsetForTimestamp(1001), 1, 'the big batch starts at offset 1');
    assert.equal(await wal.offsetForTimestamp(1011), 3);
  });

  test('offsetForTimestamp racing a compaction answers with a retained offset', async () => {
    const clock = new FakeClock(1000);
    const wal = await open({ clock: clock.now, segmentSizeBytes: 4096 });
    for (let i = 0; i < 100; i++) {
      clock.advance(10);
      await wal.append([v(`t${clock.nowMs}`.padEnd(80, '.'))]);
    }
    const finding = wal.offsetForTimestamp(1015);
    const deleted = await wal.deleteSegmentsBefore(60);
    assert.ok(deleted > 0);
    const found = await finding;
    assert.equal(found, wal.firstOffset, 'the first retained record is the first at or after that time now');
    assert.deepEqual((await wal.read(found, { limit: 1 })).map((r) => r.offset), [found], 'a read from it works');
  });
});

describe('segments and the directory', () => {
  test('deleteSegmentsBefore removes whole sealed segments only, never the active one', async () => {
    const wal = await open({ segmentSizeBytes: 4096 });
    for (let i = 0; i < 100; i++) await wal.append([v(String(i).padEnd(100, '.'))]);
    const segments = wal.stats().segmentCount;
    const deleted = await wal.deleteSegmentsBefore(60);
    assert.ok(deleted > 0 && deleted < segments);
    assert.ok(wal.firstOffset <= 60 && wal.firstOffset > 0);
    await assert.rejects(wal.read(0), (e) => isWalError(e, 'WAL_OFFSET_COMPACTED') && e.details['firstOffset'] === wal.firstOffset);
    assert.equal((await wal.read(wal.firstOffset, { limit: 1 }))[0]!.offset, wal.firstOffset);
    await wal.deleteSegmentsBefore(1_000_000);
    assert.equal(wal.stats().segmentCount, 1, 'the active segment stays');
    const first = wal.firstOffset;
    await wal.close();
    opened.length = 0;
    const reopened = await open({ segmentSizeBytes: 4096 });
    assert.equal(reopened.firstOffset, first);
    assert.equal(reopened.nextOffset, 100);
  });

  test('every close() resolves only once the log is closed, so it can be opened again at once', async () => {
    const wal = await open({ syncPolicy: 'none' });
    await wal.append([v('a')]);
    const first = wal.close();
    await wal.close();
    assert.equal(wal.status, 'closed');
    const again = await Wal.open({ dir, storage });
    assert.deepEqual((await again.wal.read(0)).map((r) => r.value.toString()), ['a']);
    await again.wal.close();
    await first;
  });

  test('a second open of the same directory fails with WAL_LOCKED', async () => {
    await open();
    await assert.rejects(Wal.open({ dir, storage }), (e) => isWalError(e, 'WAL_LOCKED'));
  });

  test('options are checked, naming the key', async () => {
    await assert.rejects(Wal.open({ dir, storage, segmentSizeBytes: 10 }), /segmentSizeBytes/);
    await assert.rejects(Wal.open({ dir, storage, syncPolicy: 'sometimes' as 'always' }), /syncPolicy/);
  });
});
