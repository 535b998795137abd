/**
 * The open files of sealed segments are bounded by `maxOpenSegmentFiles`: a log of many segments
 * read end to end, at random and concurrently returns every record, while the process's open fds
 * (counted in /proc/self/fd) stay bounded. And an evicted file is never closed under a read in
 * flight (MemDisk files fail with EBADF once closed).
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Segment } from '../../../src/engine/segment.js';
import { SegmentFiles } from '../../../src/engine/segment-files.js';
import { Wal } from '../../../src/engine/wal.js';
import type { WalRecord } from '../../../src/engine/types.js';
import { isWalError } from '../../../src/errors.js';
import { MemDisk } from '../../support/mem-disk.js';
import { random, testSeed } from '../../support/seed.js';
import { makeTempDir } from '../../support/temp-dir.js';

const SEGMENTS = 300;
const SEGMENT_SIZE_BYTES = 4096;
const MAX_OPEN_SEGMENT_FILES = 16;
/** Besides the cached read files: the active segment, the preallocated next one, LOCK, and reads in flight. */
const FD_SLACK = 3 + 8;
const VALUE_BYTES = 900;
const CONCURRENT_READERS = 8;
const RANDOM_READS = 400;

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function valueOf(offset: number): Buffer {
  return Buffer.from(`record ${offset} `.padEnd(VALUE_BYTES, String.fromCharCode(97 + (offset % 26))));
}

function checkRecords(records: readonly WalRecord[], from: number): void {
  records.forEach((record, i) => {
    assert.equal(record.offset, from + i);
    assert.ok(record.value.equals(valueOf(record.offset)), `value of offset ${record.offset}`);
  });
}

describe('segment files', () => {
  test('a log of 300 segments reads back end to end, at random and concurrently with a bounded number of open files', async () => {
    const seed = testSeed('segment files');
    const next = random(seed);
    const { dir, remove } = makeTempDir();
    try {
      const before = openFds();
      const limit = before + MAX_OPEN_SEGMENT_FILES + FD_SLACK;
      let peak = 0;
      const sample = (): void => {
        peak = Math.max(peak, openFds());
      };
      const options = { dir, segmentSizeBytes: SEGMENT_SIZE_BYTES, syncPolicy: 'none' as const, maxOpenSegmentFiles: MAX_OPEN_SEGMENT_FILES };
      let { wal } = await Wal.open(options);
      while (wal.stats().segmentCount < SEGMENTS) {
        await wal.append([{ value: valueOf(wal.nextOffset) }]);
        sample();
      }
      const count = wal.nextOffset;
      assert.ok(peak <= limit, `writing: ${peak - before} fds open, at most ${limit - before} expected`);
      // Reopened, every sealed segment is opened by reads only.
      await wal.close();
      ({ wal } = await Wal.open(options));

      let offset = 0;
      for await (const record of wal.range(0)) {
        assert.equal(record.offset, offset);
        assert.ok(record.value.equals(valueOf(offset)), `value of offset ${offset}`);
        offset++;
        sample();
      }
      assert.equal(offset, count);

      const readAtRandom = async (reads: number): Promise<void> => {
        for (let i = 0; i < reads; i++) {
          const from = Math.floor(next() * count);
          const records = await wal.read(from, { limit: 1 + Math.floor(next() * 20) });
          checkRecords(records, from);
          sample();
        }
      };
      await readAtRandom(RANDOM_READS);
      await Promise.all(Array.from({ length: CONCURRENT_READERS }, () => readAtRandom(RANDOM_READS / CONCURRENT_READERS)));
      assert.ok(peak <= limit, `reading: ${peak - before} fds open, at most ${limit - before} expected`);
      await wal.close();
      assert.equal(openFds(), before, 'close closes every file');
    } finally {
      remove();
    }
  });

  test('SegmentFiles keeps at most the limit open, closes an evicted file after its last read, and never reopens a deleted segment', () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    storage.mkdirp('/d');
    const segments = Array.from({ length: 5 }, (_, i) => new Segment('/d', i * 10, `id${i}`, 64, 64));
    for (const segment of segments) storage.open(segment.path, 'create-new').close();
    const active = segments[4]!;
    active.attach(storage.open(active.path, 'read-write'));
    const files = new SegmentFiles(storage, 2, () => active);
    const read = (segment: Segment): void => {
      assert.ok(files.acquire(segment) !== undefined);
      segment.release();
    };

    for (const segment of segments) read(segment);
    assert.equal(disk.openFiles, 2 + 1, 'two sealed files and the active one');
    const [first, second, third] = segments as [Segment, Segment, Segment];
    const inFlight = files.acquire(first)!;
    read(second);
    read(third);
    assert.equal(disk.openFiles, 3 + 1, 'the evicted file of a read in flight stays open');
    assert.equal(inFlight.size(), 0, 'and usable');
    first.release();
    assert.equal(disk.openFiles, 2 + 1, 'it closes at the end of the read');

    files.delete(second);
    assert.equal(files.acquire(second), undefined);
    files.delete(first);
    assert.equal(files.acquire(first), undefined, 'an evicted segment deleted is not opened again');
    assert.equal(disk.openFiles, 1 + 1);
    active.closeFile();
    third.closeFile();
    assert.equal(disk.openFiles, 0);
  });

  /** A log on a MemDisk (closed files fail with EBADF) whose reads keep one sealed file open. */
  async function memLog(segments: number): Promise<{ wal: Wal; starts: number[] }> {
    const storage = new MemDisk().mount();
    // Without the recent frames: these reads are of the files.
    const { wal } = await Wal.open({ dir: '/data', storage, segmentSizeBytes: SEGMENT_SIZE_BYTES, syncPolicy: 'none', maxOpenSegmentFiles: 1, tailCacheBytes: 0 });
    const starts = [0];
    while (wal.stats().segmentCount < segments + 1) {
      const before = wal.stats().segmentCount;
      const { firstOffset } = await wal.append([{ value: valueOf(wal.nextOffset) }]);
      if (wal.stats().segmentCount > before) starts.push(firstOffset);
    }
    return { wal, starts };
  }

  test('a file evicted while a read is in flight closes only after that read', async () => {
    const { wal, starts } = await memLog(4);
    try {
      // The first read is in flight (its file read not done) when the next ones evict its file.
      const reads = starts.slice(0, 4).map((from) => wal.read(from, { limit: 2 }).then((records) => checkRecords(records, from)));
      await Promise.all(reads);
      // And the evicted files open again when read again.
      for (const from of starts.slice(0, 4)) checkRecords(await wal.read(from, { limit: 2 }), from);
    } finally {
      await wal.close();
    }
  });

  test('a read racing compaction gets WAL_OFFSET_COMPACTED and never opens a deleted segment again', async () => {
    const { wal, starts } = await memLog(4);
    try {
      checkRecords(await wal.read(starts[1]!, { limit: 1 }), starts[1]!);
      checkRecords(await wal.read(starts[2]!, { limit: 1 }), starts[2]!);
      // Segment 1's file is evicted and closed; this read is inside segment 0 when 0 and 1 go.
      const racing = wal.read(0, { limit: starts[3]! });
      assert.equal(await wal.deleteSegmentsBefore(starts[2]!), 2);
      await assert.rejects(racing, (e) => isWalError(e, 'WAL_OFFSET_COMPACTED'));
      checkRecords(await wal.read(starts[2]!, { limit: 1 }), starts[2]!);
    } finally {
      await wal.close();
    }
  });

  test('maxOpenSegmentFiles must be a positive integer', async () => {
    for (const maxOpenSegmentFiles of [0, -1, 1.5]) {
      await assert.rejects(Wal.open({ dir: '/data', storage: new MemDisk().mount(), maxOpenSegmentFiles }), (e) => e instanceof RangeError && /maxOpenSegmentFiles/.test(e.message));
    }
  });
});
