/**
 * Reading a log with compacted segments: reads, paging, tails and time lookups step over the
 * gaps key compaction leaves; a read that started in a segment's old file finishes there.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import type { WalRecord } from '../../../src/engine/types.js';
import { activeBase, filledLog, options, readAll, valueOf } from '../../support/compacted-log.js';
import { FakeClock } from '../../support/fake-clock.js';
import { GatedStorage } from '../../support/gated-storage.js';
import { MemDisk } from '../../support/mem-disk.js';

describe('reading across compacted segments', () => {
  test('a read from any offset, inside a gap too, starts at the next retained record', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    const active = activeBase(wal);
    // Whole stretches dropped, among them the end of some segment: gaps within and across segments.
    await wal.rewriteSegments({ keep: (record) => record.offset % 20 < 4, thresholdPercent: 0 });
    const retained = (await readAll(wal)).map((r) => r.offset);
    for (let from = 0; from <= wal.highWatermark; from++) {
      const next = retained.find((o) => o >= from);
      const got = await wal.read(from, { limit: 3 });
      assert.deepEqual(got.map((r) => r.offset), retained.filter((o) => o >= from).slice(0, 3), `read from ${from}`);
      assert.equal(got[0]?.offset, next, `read from ${from} starts at the next retained record`);
      assert.ok(got.every((r) => r.offset < active ? r.offset % 20 < 4 : true));
    }
    for (const limit of [1, 2, 7, 50]) {
      const pages: number[] = [];
      let from = 0;
      for (let i = 0; i < 1000 && from <= wal.highWatermark; i++) {
        const page = await wal.read(from, { limit });
        if (page.length === 0) break;
        pages.push(...page.map((r) => r.offset));
        from = page[page.length - 1]!.offset + 1;
      }
      assert.deepEqual(pages, retained, `paging with limit ${limit} sees every retained record once`);
    }
    await wal.close();
  });

  test('a tail across rewritten segments, and over a gap that ends at the high watermark, delivers every retained record and then what comes', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    const active = activeBase(wal);
    // Drops everything of the sealed segments from offset 30 on: the log's retained records jump.
    await wal.rewriteSegments({ keep: (record) => record.offset < 30, thresholdPercent: 0 });
    const retained = (await readAll(wal)).map((r) => r.offset);
    const controller = new AbortController();
    const tail = wal.openTail(0, { signal: controller.signal, maxRecords: 4 });
    const seen: number[] = [];
    let idles = 0;
    for (let i = 0; i < 1000; i++) {
      const next = await tail.next();
      assert.equal(next.done, false);
      const event = next.value!;
      if (event.kind === 'idle') {
        idles++;
        if (idles === 1) {
          assert.deepEqual(seen, retained);
          await wal.append([{ value: Buffer.from('live') }]);
        }
        continue;
      }
      assert.equal(event.nextOffset, event.records[event.records.length - 1]!.offset + 1);
      seen.push(...event.records.map((r) => r.offset));
      if (seen.at(-1) === wal.nextOffset - 1 && idles === 1) break;
    }
    assert.deepEqual(seen, [...retained, wal.nextOffset - 1]);
    assert.ok(active > 30);
    controller.abort();
    await tail.return();

    // A log whose records after the first offset are all gaps up to its end: the tail catches up
    // (idle), then gets the next append, instead of spinning on empty reads.
    const disk2 = new MemDisk();
    const wal2 = await filledLog(disk2, new FakeClock(), 60, { segmentSizeBytes: 4096 });
    await wal2.rewriteSegments({ keep: () => false, thresholdPercent: 0 });
    const sealedEnd = activeBase(wal2);
    const stillThere = (await readAll(wal2)).map((r) => r.offset);
    assert.ok(stillThere.every((o) => o >= sealedEnd), 'nothing left of the sealed segments');
    const tail2 = wal2.openTail(0, { maxRecords: 1000 });
    const first = await tail2.next();
    assert.ok(first.value?.kind === 'records' && first.value.records[0]!.offset === sealedEnd, 'the tail starts after the gap');
    await tail2.return();
    await wal.close();
    await wal2.close();
  });

  test('under interval, the rewrite makes the written records durable first; a tail from inside the gap after it gets the records past the gap without spinning', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    // Under `interval` the records of a new active segment are written but not yet durable: the
    // high watermark stays at the end of the sealed segments until the next sync.
    const wal = await filledLog(disk, clock, 60, { syncPolicy: 'interval', syncIntervalMs: 3_600_000 });
    const active = activeBase(wal);
    await wal.sync();
    for (let i = 0; wal.highWatermark >= activeBase(wal) - 1 && activeBase(wal) === active && i < 100; i++) {
      await wal.append([{ value: valueOf(wal.nextOffset) }]);
    }
    const sealedEnd = activeBase(wal);
    assert.equal(wal.highWatermark, sealedEnd - 1, 'the new active segment is not durable yet');
    // Drop the last 10 offsets of the sealed segments: a gap from there to the active segment.
    await wal.rewriteSegments({ keep: (record) => record.offset < sealedEnd - 10, thresholdPercent: 0 });
    // The judge may have relied on the unsynced records: they were synced before the swap.
    assert.equal(wal.highWatermark, wal.nextOffset - 1, 'what was written before the swap is durable');
    let reads = 0;
    const source = (wal as unknown as { tailSource: { readBatch: (...args: number[]) => Promise<unknown> } }).tailSource;
    const readBatch = source.readBatch;
    source.readBatch = (...args: number[]) => {
      // A tail that spins on empty reads fails here instead of hanging the test.
      if (++reads > 50) throw new Error(`the tail read ${reads} times without moving`);
      return readBatch(...args);
    };
    const tail = wal.openTail(sealedEnd - 5);
    const first = await tail.next();
    assert.ok(first.value?.kind === 'records', 'records past the gap');
    assert.equal(first.value.records[0]!.offset, sealedEnd);
    assert.ok(reads <= 2, `a read or two, not a loop of them (${reads})`);
    await tail.return();
    await wal.close();
  });

  test('a read stopped by its limit inside a frame of a compacted segment goes on inside that frame', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    // Keeps whole batches: runs of several records, the last frame of each segment among them.
    await wal.rewriteSegments({ keep: (record) => record.offset % 15 >= 5, thresholdPercent: 0 });
    const retained = (await readAll(wal)).map((r) => r.offset);
    const reader = (wal as unknown as { reader: { read: (from: number, end: number, limit: number, maxBytes: number) => Promise<{ records: WalRecord[]; nextOffset: number }> } }).reader;
    const end = wal.highWatermark + 1;
    for (let from = 0; from < end; from++) {
      for (const limit of [1, 2, 3]) {
        const batch = await reader.read(from, end, limit, Number.MAX_SAFE_INTEGER);
        const last = batch.records.at(-1)?.offset;
        const following = retained.find((o) => o > (last ?? from - 1));
        // nextOffset is where the next record is looked for: past no record the read did not return.
        assert.ok(following === undefined || batch.nextOffset <= following, `from ${from}, limit ${limit}: next offset ${batch.nextOffset} skips ${following}`);
        if (last !== undefined) assert.ok(batch.nextOffset > last);
      }
    }
    await wal.close();
  });

  test('offsetForTimestamp finds the first retained record at or after a time', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock(1000);
    const wal = await filledLog(disk, clock);
    await wal.rewriteSegments({ keep: (record) => record.offset % 4 === 0, thresholdPercent: 0 });
    const retained = await readAll(wal);
    for (let t = 1000; t <= 1062; t++) {
      const expected = retained.find((r) => r.timestamp >= t)?.offset ?? wal.highWatermark + 1;
      const found = await wal.offsetForTimestamp(t);
      // The lookup may answer with a gap's first offset before the record: a read from it starts there.
      const readFrom = (await wal.read(found, { limit: 1 }))[0]?.offset ?? wal.highWatermark + 1;
      assert.equal(readFrom, expected, `time ${t}`);
    }
    await wal.close();
  });

  test('a read that started in the old file finishes there while the rewrite swaps the file', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const gate = new GatedStorage(disk.mount());
    // Without the recent frames, so that the read of records just written goes to the file.
    const { wal } = await Wal.open({ ...options(gate, clock), tailCacheBytes: 0 });
    for (let o = 0; o < 100; o++) await wal.append([{ key: Buffer.from(`k${o % 3}`), value: valueOf(o) }]);
    gate.arm(/00000000000000000000\.seg$/);
    const reading = wal.read(0, { limit: 10 });
    await gate.held;
    const result = await wal.rewriteSegments({ keep: (record) => record.offset % 2 === 0, thresholdPercent: 0 });
    assert.ok(result.segmentsRewritten > 0);
    gate.openGate();
    const old = await reading;
    assert.deepEqual(old.map((r) => r.offset), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'the read sees the file it started in');
    assert.deepEqual((await wal.read(0, { limit: 5 })).map((r) => r.offset), [0, 2, 4, 6, 8], 'a new read sees the new file');
    await wal.close();
    assert.equal(disk.openFiles, 0, 'the old file closed after its last read');
  });

  test('a range to an offset over rewritten segments ends before that offset', async () => {
    const disk = new MemDisk();
    const wal = await filledLog(disk, new FakeClock());
    await wal.rewriteSegments({ keep: (record) => record.offset % 2 === 0, thresholdPercent: 0 });
    const offsets: number[] = [];
    for await (const record of wal.range(0, 10)) offsets.push(record.offset);
    assert.deepEqual(offsets, [0, 2, 4, 6, 8], 'the limit of each read counts records, not offsets: nothing at or past 10');
    await wal.close();
  });

  test('a range hash whose later segments compaction deletes under it fails with WAL_OFFSET_COMPACTED, never hashes part of the range', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const gate = new GatedStorage(disk.mount());
    const { wal } = await Wal.open({ ...options(gate, clock), tailCacheBytes: 0 });
    for (let o = 0; o < 300; o++) await wal.append([{ value: valueOf(o) }]);
    const whole = await wal.hashRange(0);
    assert.equal(whole.toOffset, 300);
    const second = wal.listSegments()[1]!.baseOffset;
    const third = wal.listSegments()[2]!.baseOffset;
    gate.arm(/00000000000000000000\.seg$/);
    const hashing = wal.hashRange(0);
    await gate.held;
    // The scan holds the first segment; the two after it go.
    assert.equal(await wal.deleteSegmentsBefore(wal.listSegments()[3]!.baseOffset), 3);
    gate.openGate();
    await assert.rejects(hashing, (error: unknown) => isWalError(error, 'WAL_OFFSET_COMPACTED'));
    assert.ok(second < third);
    await wal.close();
  });
});
