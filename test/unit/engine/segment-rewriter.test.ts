/**
 * The engine half of key compaction (`Wal.rewriteSegments`): sealed segments rewritten with only
 * the records a plan keeps, offsets unchanged; reads, ranges, tails and time lookups step over the
 * gaps; the active segment is never touched; reads in the old file finish there.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../../src/engine/wal.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import type { WalRecord } from '../../../src/engine/types.js';
import { isWalError } from '../../../src/errors.js';
import type { Storage, StorageFile } from '../../../src/storage/storage.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';

const DIR = '/data';

function options(storage: Storage, clock: FakeClock, extra: Partial<WalOptions> = {}): WalOptions {
  return { dir: DIR, storage, segmentSizeBytes: 4096, indexIntervalBytes: 256, preallocate: false, clock: clock.now, onWarning: () => {}, ...extra };
}

/** The value of the record at `offset`: recognisable when read back. */
const valueOf = (offset: number): Buffer => Buffer.from(`record ${offset} `.padEnd(60, '.'));

/** A log of `batches` batches of 1-5 records (timestamps 1 ms apart per batch), several segments. */
async function filledLog(disk: MemDisk, clock: FakeClock, batches = 60, extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open(options(disk.mount(), clock, extra));
  let offset = 0;
  for (let b = 0; b < batches; b++) {
    clock.advance(1);
    const count = 1 + (b % 5);
    const records = Array.from({ length: count }, (_, r) => ({ key: Buffer.from(`k${(offset + r) % 7}`), value: valueOf(offset + r) }));
    const producer = b % 4 === 0 ? { producerId: 'p', sequence: b } : {};
    await wal.append(records, producer);
    offset += count;
  }
  return wal;
}

async function readAll(wal: Wal, from = wal.firstOffset): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(from)) out.push(record);
  return out;
}

/** The active segment's base offset: the first offset no rewrite may touch. */
function activeBase(wal: Wal): number {
  return (wal as unknown as { segments: { active: { baseOffset: number } } }).segments.active.baseOffset;
}

describe('rewriteSegments', () => {
  test('keeps exactly the records the plan keeps, at their offsets, in sealed segments only', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    const before = await readAll(wal);
    const active = activeBase(wal);
    assert.ok(active > 40, 'several sealed segments');
    const judged: number[] = [];
    const result = await wal.rewriteSegments({
      keep: (record) => {
        judged.push(record.offset);
        return record.offset % 3 === 0;
      },
      thresholdPercent: 0,
    });
    assert.deepEqual(judged, before.filter((r) => r.offset < active).map((r) => r.offset), 'every sealed record judged once, in order');
    assert.ok(result.segmentsRewritten > 1);
    assert.equal(result.recordsDropped, before.filter((r) => r.offset < active && r.offset % 3 !== 0).length);
    assert.ok(result.afterSizeBytes < result.beforeSizeBytes);
    const expected = before.filter((r) => r.offset >= active || r.offset % 3 === 0);
    const after = await readAll(wal);
    assert.deepEqual(
      after.map((r) => [r.offset, r.timestamp, r.key?.toString(), r.value.toString()]),
      expected.map((r) => [r.offset, r.timestamp, r.key?.toString(), r.value.toString()]),
    );
    assert.equal(wal.nextOffset, before.length, 'the next offset does not move');
    assert.equal(wal.firstOffset, 0);
    const appended = await wal.append([{ value: Buffer.from('after') }]);
    assert.equal(appended.firstOffset, before.length, 'offsets are never reused');
    await wal.close();
  });

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

  test('a tail in a gap that runs up to the high watermark signals idle, then follows, without spinning on empty reads', async () => {
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
    // Drop the last 10 offsets of the sealed segments: a gap from there to the high watermark.
    await wal.rewriteSegments({ keep: (record) => record.offset < sealedEnd - 10, thresholdPercent: 0 });
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
    assert.deepEqual(first.value, { kind: 'idle', nextOffset: sealedEnd }, 'caught up, past the gap');
    assert.ok(reads <= 2, `a read or two, not a loop of them (${reads})`);
    const arriving = tail.next();
    await wal.sync();
    const next = await arriving;
    assert.ok(next.value?.kind === 'records');
    assert.equal(next.value.records[0]!.offset, sealedEnd);
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

  test('a segment is rewritten only when at least the threshold share of its records is judged out', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    // About 10% judged out everywhere.
    const keep = (record: WalRecord): boolean => record.offset % 10 !== 5;
    const dry = await wal.rewriteSegments({ keep, thresholdPercent: 20, dryRun: true });
    assert.equal(dry.segmentsRewritten, 0);
    assert.ok(dry.redundantRecords > 0 && dry.segments.every((s) => s.redundantRecords * 100 < 20 * s.records));
    const none = await wal.rewriteSegments({ keep, thresholdPercent: 20 });
    assert.equal(none.segmentsRewritten, 0);
    assert.equal((await readAll(wal)).length, wal.nextOffset, 'nothing dropped under the threshold');
    const estimate = await wal.rewriteSegments({ keep, thresholdPercent: 5, dryRun: true });
    assert.equal((await readAll(wal)).length, wal.nextOffset, 'a dry run changes nothing');
    const done = await wal.rewriteSegments({ keep, thresholdPercent: 5 });
    assert.ok(done.segmentsRewritten > 0);
    assert.equal(done.segmentsRewritten, estimate.segmentsRewritten);
    assert.equal(done.afterSizeBytes, estimate.afterSizeBytes, 'the dry run predicts the size exactly');
    assert.equal(done.beforeSizeBytes, estimate.beforeSizeBytes);
    await wal.close();
  });

  test('the active segment is never judged nor rewritten, and belowOffset bounds what is', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    const active = activeBase(wal);
    const sealed = [...(wal as unknown as { segments: Iterable<{ baseOffset: number; nextOffset: number }> }).segments].slice(0, -1);
    assert.ok(sealed.length >= 3);
    const bound = sealed[1]!.nextOffset;
    const judged: number[] = [];
    await wal.rewriteSegments({
      keep: (record) => {
        judged.push(record.offset);
        return false;
      },
      thresholdPercent: 0,
      belowOffset: bound + 1,
    });
    assert.deepEqual(judged, Array.from({ length: bound }, (_, i) => i), 'the segments wholly below belowOffset, no more');
    let after = (await readAll(wal)).map((r) => r.offset);
    assert.equal(after[0], bound, 'those segments are empty now');
    assert.equal(wal.firstOffset, 0, 'and still part of the log');
    await wal.rewriteSegments({ keep: () => false, thresholdPercent: 0 });
    after = (await readAll(wal)).map((r) => r.offset);
    assert.deepEqual(after, Array.from({ length: wal.nextOffset - active }, (_, i) => active + i), 'every record of the active segment stays');
    await wal.close();
  });

  test('reopens with the rewritten segments, from their index or from a scan when the index is lost, and appends go on', async () => {
    const clock = new FakeClock();
    for (const loseIndex of [false, true]) {
      const disk = new MemDisk();
      const wal = await filledLog(disk, clock);
      await wal.rewriteSegments({ keep: (record) => record.offset % 5 === 1 || record.offset % 9 === 0, thresholdPercent: 0 });
      const expected = await readAll(wal);
      const next = wal.nextOffset;
      await wal.close();
      const storage = disk.mount();
      if (loseIndex) for (const name of storage.list(DIR)) if (name.endsWith('.idx')) storage.unlink(`${DIR}/${name}`);
      const { wal: reopened, report } = await Wal.open(options(storage, clock));
      if (loseIndex) assert.ok(report.faults.some((f) => f.kind === 'index-rebuilt'));
      assert.deepEqual((await readAll(reopened)).map((r) => [r.offset, r.value.toString()]), expected.map((r) => [r.offset, r.value.toString()]));
      assert.equal(reopened.nextOffset, next);
      const appended = await reopened.append([{ value: Buffer.from('after reopen') }]);
      assert.equal(appended.firstOffset, next);
      // A retry of the last idempotent append is still recognised.
      const retry = await reopened.append([{ key: Buffer.from('x'), value: Buffer.from('x') }], { producerId: 'p', sequence: 56 });
      assert.equal(retry.duplicate, true, `the producer table survives (${loseIndex ? 'index lost' : 'index kept'})`);
      await reopened.close();
    }
  });

  test('a segment can be compacted again; its producers stay in its index', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    await wal.rewriteSegments({ keep: (record) => record.offset % 2 === 0, thresholdPercent: 0 });
    await wal.rewriteSegments({ keep: (record) => record.offset % 4 === 0, thresholdPercent: 0 });
    const active = activeBase(wal);
    const offsets = (await readAll(wal)).map((r) => r.offset);
    assert.deepEqual(offsets.filter((o) => o < active), Array.from({ length: Math.ceil(active / 4) }, (_, i) => i * 4));
    await wal.close();
  });

  test('a read that started in the old file finishes there while the rewrite swaps the file', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const gate = new ReadGate(disk.mount());
    const { wal } = await Wal.open(options(gate, clock));
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

  test('close stops a rewrite under way; the log reopens whole, with no debris', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    const expected = await readAll(wal);
    let isSettled = false;
    const rewriting = wal.rewriteSegments({ keep: () => false, thresholdPercent: 0 }).finally(() => (isSettled = true));
    // Under way: the first segment's new file is being written.
    await disk.whenSynced(/\.compact\.tmp$/);
    await wal.close();
    assert.equal(isSettled, true, 'close waited for the rewrite to stop');
    assert.deepEqual(disk.mount().list(DIR).filter((n) => n.endsWith('.tmp')), [], 'its file removed before close resolved');
    await assert.rejects(rewriting, (error) => isWalError(error) && error.code === 'WAL_CLOSED');
    const storage = disk.mount();
    const { wal: reopened } = await Wal.open(options(storage, clock));
    const after = await readAll(reopened);
    // Either untouched or with some leading segments compacted: never a record of the active
    // segment lost, never an offset moved.
    for (const record of after) assert.equal(record.value.toString(), valueOf(record.offset).toString());
    assert.equal(reopened.nextOffset, expected.length);
    await reopened.close();
  });

  test('a segment deleted (compaction by snapshot) while it is rewritten stays deleted; the rewrite removes its file', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await filledLog(disk, clock);
    const firstEnd = [...(wal as unknown as { segments: Iterable<{ nextOffset: number }> }).segments][0]!.nextOffset;
    // Just after the first segment's new file is synced, before the swap.
    void disk.whenSynced(/\.compact\.tmp$/).then(() => wal.deleteSegmentsBefore(firstEnd));
    const result = await wal.rewriteSegments({ keep: (record) => record.offset % 2 === 0, thresholdPercent: 0 });
    assert.equal(wal.firstOffset, firstEnd, 'the deletion happened');
    assert.ok(result.segments.length > 1);
    const storage = disk.mount();
    assert.deepEqual(storage.list(DIR).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
    assert.equal(storage.exists(`${DIR}/00000000000000000000.seg`), false, 'the deleted segment is not brought back');
    const offsets = (await readAll(wal)).map((r) => r.offset);
    assert.equal(offsets[0], firstEnd + (firstEnd % 2), "the next segment was compacted: its first even offset");
    await wal.close();
    const { wal: reopened } = await Wal.open(options(disk.mount(), clock));
    assert.equal(reopened.firstOffset, firstEnd);
    assert.deepEqual((await readAll(reopened)).map((r) => r.offset), offsets);
    await reopened.close();
  });

  test('close waits for a rewrite held in its fdatasync: when it resolves, the rewrite has stopped and removed its file', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const gate = new ReadGate(disk.mount());
    const { wal } = await Wal.open(options(gate, clock));
    for (let o = 0; o < 100; o++) await wal.append([{ key: Buffer.from(`k${o % 3}`), value: valueOf(o) }]);
    gate.arm(/\.compact\.tmp$/, 'datasyncAsync');
    const rewriting = wal.rewriteSegments({ keep: () => false, thresholdPercent: 0 });
    rewriting.catch(() => undefined);
    await gate.held;
    let tempsWhenClosed: string[] | undefined;
    const closing = wal.close().then(() => {
      tempsWhenClosed = gate.list(DIR).filter((n) => n.endsWith('.tmp'));
    });
    gate.openGate();
    await closing;
    assert.deepEqual(tempsWhenClosed, [], 'nothing of the rewrite left once close resolved');
    await assert.rejects(rewriting, (error) => isWalError(error) && error.code === 'WAL_CLOSED');
  });

  test('refuses a malformed plan', async () => {
    const disk = new MemDisk();
    const wal = await filledLog(disk, new FakeClock(), 5);
    assert.throws(() => wal.rewriteSegments({} as never), TypeError);
    assert.throws(() => wal.rewriteSegments({ keep: () => true, thresholdPercent: 101 }), RangeError);
    assert.throws(() => wal.rewriteSegments({ keep: () => true, belowOffset: -1 }), RangeError);
    await wal.close();
  });
});

/** A storage whose next read (or `datasyncAsync`) of a file matching a pattern waits until the test opens the gate. */
class ReadGate implements Storage {
  private pattern: RegExp | undefined;
  private op: 'read' | 'datasyncAsync' = 'read';
  private release: (() => void) | undefined;
  private readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  private holding: (() => void) | undefined;
  /** Resolves once a read is held at the gate. */
  readonly held = new Promise<void>((resolve) => (this.holding = resolve));

  constructor(private readonly inner: Storage) {}

  arm(pattern: RegExp, op: 'read' | 'datasyncAsync' = 'read'): void {
    this.pattern = pattern;
    this.op = op;
  }

  /** Holds the call if it is the one armed for. */
  private async pass(op: 'read' | 'datasyncAsync', path: string): Promise<void> {
    if (this.op !== op || this.pattern?.test(path) !== true) return;
    this.pattern = undefined;
    this.holding?.();
    await this.opened;
  }

  open(path: string, mode: Parameters<Storage['open']>[1]): StorageFile {
    const file = this.inner.open(path, mode);
    const gate = this;
    return {
      path: file.path,
      writev: (buffers, position) => file.writev(buffers, position),
      readSync: (buffer, length, position) => file.readSync(buffer, length, position),
      // The file's name now: a segment is written under a temp name, then renamed.
      read: async (buffer, length, position) => {
        await gate.pass('read', file.path);
        return file.read(buffer, length, position);
      },
      fillZeros: (position, end) => file.fillZeros(position, end),
      datasync: () => file.datasync(),
      datasyncAsync: async () => {
        await gate.pass('datasyncAsync', file.path);
        return file.datasyncAsync();
      },
      sync: () => file.sync(),
      truncate: (length) => file.truncate(length),
      size: () => file.size(),
      close: () => file.close(),
    };
  }

  /** Lets the held read go on. */
  openGate(): void {
    this.release?.();
  }

  list = (dir: string): string[] => this.inner.list(dir);
  exists = (path: string): boolean => this.inner.exists(path);
  size = (path: string): number => this.inner.size(path);
  mkdirp = (dir: string): void => this.inner.mkdirp(dir);
  rename = (from: string, to: string): void => this.inner.rename(from, to);
  unlink = (path: string): void => this.inner.unlink(path);
  syncDir = (dir: string): void => this.inner.syncDir(dir);
  readFile = (path: string): Buffer => this.inner.readFile(path);
  lock = (dir: string): ReturnType<Storage['lock']> => this.inner.lock(dir);
}
