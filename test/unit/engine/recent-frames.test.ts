/**
 * The recent frames (recent-frames.ts): reads, tails and frame runs of what was just written come
 * from memory, with no file read, and answer exactly what the files answer (a twin log without the
 * cache, fed the same appends, is the reference); frames of a segment deleted by compaction or
 * replaced by key compaction are never served; a write that failed leaves nothing of it behind.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AppendRecord, WalRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import { isWalError } from '../../../src/errors.js';
import { MemDisk } from '../../support/mem-disk.js';

const SEGMENT_SIZE_BYTES = 8192;

async function open(disk: MemDisk, extra: Partial<WalOptions> = {}): Promise<Wal> {
  return (await Wal.open({ dir: '/data', storage: disk.mount(), preallocate: false, segmentSizeBytes: SEGMENT_SIZE_BYTES, ...extra })).wal;
}

const shape = (records: readonly WalRecord[]): unknown[] =>
  records.map((r) => ({ offset: r.offset, timestamp: r.timestamp, type: r.type, key: r.key?.toString('hex'), value: r.value.toString('hex'), headers: Object.entries(r.headers).map(([k, v]) => [k, v.toString('hex')]) }));

const recordArb: fc.Arbitrary<AppendRecord> = fc.record({
  key: fc.option(fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => Buffer.from(b)), { nil: undefined }),
  value: fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
  headers: fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), { maxKeys: 2 }), { nil: undefined }),
});

/** The base offset of every frame of the log. */
async function frameStarts(wal: Wal): Promise<number[]> {
  const starts: number[] = [];
  for (let offset = wal.firstOffset; offset <= wal.highWatermark; ) {
    const run = await wal.readFrames(offset, 1 << 30);
    for (const frame of run.frames) starts.push(frame.baseOffset);
    offset = run.nextOffset;
  }
  return starts;
}

describe('recent frames', () => {
  test('reads and frame runs answer what the files answer, from memory for what was just written', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(recordArb, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.record({ from: fc.nat(), limit: fc.integer({ min: 1, max: 30 }), maxBytes: fc.integer({ min: 1, max: 5000 }) }), { minLength: 1, maxLength: 12 }),
        fc.constantFrom(2048, 1 << 20),
        async (batches, reads, cacheBytes) => {
          // The same log is read twice: open with the cache (what was just written is in memory),
          // then reopened without it, where every read is of the files.
          const disk = new MemDisk();
          const answers = async (wal: Wal): Promise<unknown[]> => {
            const out: unknown[] = [];
            const end = wal.highWatermark + 1;
            const starts = await frameStarts(wal);
            for (const { from, limit, maxBytes } of reads) {
              const start = from % end;
              out.push(shape(await wal.read(start, { limit, maxBytes })));
              // A frame run starts at a frame's first offset.
              const runStart = starts[starts.findLastIndex((o) => o <= start)] ?? 0;
              const run = await wal.readFrames(runStart, maxBytes);
              out.push(run.nextOffset, run.segmentHeader?.toString('hex'), run.frames.map((f) => [f.baseOffset, f.recordCount, f.epoch, f.crc32c, f.timestamp, f.bytes.toString('hex')]));
            }
            return out;
          };
          const cached = await open(disk, { tailCacheBytes: cacheBytes });
          for (const batch of batches) await cached.append(batch);
          const readsBefore = cached.stats().io.reads;
          const fromMemory = await answers(cached);
          const fileReads = cached.stats().io.reads - readsBefore;
          await cached.close();
          const files = await open(disk, { tailCacheBytes: 0 });
          try {
            const readsBeforeFiles = files.stats().io.reads;
            assert.deepEqual(fromMemory, await answers(files));
            const filesOnlyReads = files.stats().io.reads - readsBeforeFiles;
            // A cache of 2 KiB may hold none of what is read; one of 1 MiB holds the whole log.
            if (cacheBytes === 1 << 20) assert.ok(fileReads < filesOnlyReads, `the cache saved file reads (${fileReads} against ${filesOnlyReads})`);
            else assert.ok(fileReads <= filesOnlyReads, `never more file reads with the cache (${fileReads} against ${filesOnlyReads})`);
          } finally {
            await files.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test('a tail and a read of what was just appended read no file', async () => {
    const wal = await open(new MemDisk());
    try {
      // The segment's first frame: a frame run from it carries the segment header, read from the file.
      await wal.append([{ value: Buffer.from('first') }]);
      const tail = wal.openTail(1, { maxRecords: 100 });
      assert.deepEqual(await tail.next(), { done: false, value: { kind: 'idle', nextOffset: 1 } });
      const before = wal.stats().io.reads;
      const arrival = tail.next();
      await wal.append([{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
      const event = (await arrival).value;
      assert.ok(event !== undefined && event.kind === 'records');
      assert.deepEqual(event.records.map((r) => r.value.toString()), ['a', 'b']);
      assert.deepEqual((await wal.read(2)).map((r) => r.value.toString()), ['b']);
      assert.deepEqual((await wal.read(0)).map((r) => r.value.toString()), ['first', 'a', 'b']);
      const run = await wal.readFrames(1, 1 << 20);
      assert.deepEqual([run.frames.length, run.nextOffset, run.segmentHeader], [1, 3, undefined]);
      assert.equal(wal.stats().io.reads, before, 'no file read');
      await tail.return();
    } finally {
      await wal.close();
    }
  });

  test('with the cache off, the same reads go to the file', async () => {
    const wal = await open(new MemDisk(), { tailCacheBytes: 0 });
    try {
      await wal.append([{ value: Buffer.from('a') }]);
      const before = wal.stats().io.reads;
      assert.equal((await wal.read(0)).length, 1);
      assert.ok(wal.stats().io.reads > before);
    } finally {
      await wal.close();
    }
  });

  test('frames of a segment deleted by compaction are not served: WAL_OFFSET_COMPACTED', async () => {
    const wal = await open(new MemDisk());
    try {
      while (wal.stats().segmentCount < 3) await wal.append([{ value: Buffer.alloc(500, 1) }]);
      const second = wal.listSegments()[1]!.baseOffset;
      // Everything is still in memory (2 MiB of cache, a few KiB written).
      const before = wal.stats().io.reads;
      assert.equal((await wal.read(0, { limit: 1 }))[0]?.offset, 0);
      assert.equal(wal.stats().io.reads, before);
      assert.equal(await wal.deleteSegmentsBefore(second), 1);
      await assert.rejects(wal.read(0, { limit: 1 }), (e) => isWalError(e, 'WAL_OFFSET_COMPACTED'));
      const tail = wal.openTail(second);
      assert.equal((await tail.next()).value?.kind, 'records');
      await tail.return();
      assert.equal((await wal.read(second, { limit: 1 }))[0]?.offset, second);
    } finally {
      await wal.close();
    }
  });

  test('frames of a segment key compaction rewrote are not served: reads see the rewritten file', async () => {
    const wal = await open(new MemDisk());
    try {
      for (let i = 0; wal.stats().segmentCount < 3; i++) await wal.append([{ key: Buffer.from(`k${i % 2}`), value: Buffer.alloc(300, i) }]);
      const active = wal.listSegments().at(-1)!.baseOffset;
      const result = await wal.rewriteSegments({ keep: (record) => record.offset % 2 === 0, thresholdPercent: 0 });
      assert.ok(result.segmentsRewritten > 0);
      const offsets = (await wal.read(0, { limit: active })).map((r) => r.offset).filter((o) => o < active);
      assert.ok(offsets.length > 0);
      assert.deepEqual(offsets.filter((o) => o % 2 !== 0), [], 'only what the rewrite kept');
      const run = await wal.readFrames(2, 1 << 20);
      assert.ok(run.frames.length > 1);
      assert.deepEqual(run.frames.map((f) => f.baseOffset).filter((o) => o % 2 !== 0), [], 'frame runs too');
    } finally {
      await wal.close();
    }
  });

  test('a write that failed leaves nothing behind: the records written after it read as the file has them', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    try {
      await wal.append([{ value: Buffer.from('a') }]);
      disk.inject({ op: 'writev', code: 'EIO', times: 1 });
      await assert.rejects(wal.append([{ value: Buffer.from('lost') }]), (e) => isWalError(e, 'WAL_IO_ERROR'));
      await wal.append([{ value: Buffer.from('b') }]);
      const fromMemory = (await wal.read(0)).map((r) => `${r.offset}:${r.value.toString()}`);
      assert.deepEqual(fromMemory, ['0:a', '1:b']);
      await wal.close();
      const reopened = await open(disk, { tailCacheBytes: 0 });
      assert.deepEqual((await reopened.read(0)).map((r) => `${r.offset}:${r.value.toString()}`), fromMemory);
      await reopened.close();
    } finally {
      if (wal.status === 'open') await wal.close();
    }
  });

  test('tailCacheBytes takes 0 and refuses a negative size', async () => {
    await assert.rejects(Wal.open({ dir: '/data', storage: new MemDisk().mount(), tailCacheBytes: -1 }), (e) => e instanceof RangeError && /tailCacheBytes/.test(e.message));
    const wal = await open(new MemDisk(), { tailCacheBytes: 0 });
    await wal.close();
  });
});
