import assert from 'node:assert/strict';
import { closeSync, cpSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Wal, isWalError, type AppendRecord, type WalError, type WalOptions } from '../../src/index.js';
import { copyLogDir } from '../support/copy-log-dir.js';
import { assertRecordsEqual, readAllRecords } from '../support/expect-records.js';
import { segmentFrames, type FrameExtent } from '../support/segment-frames.js';
import { UnsyncedStorage } from '../support/unsynced-storage.js';
import { FakeClock } from '../support/fake-clock.js';
import { makeTempDir } from '../support/temp-dir.js';

const SEGMENT_SIZE_BYTES = 4096;

function segmentName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.seg`;
}

function indexName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.idx`;
}

/** Batch `b`: two records whose bytes name the batch, so a misplaced record shows. */
function batch(b: number): AppendRecord[] {
  return [
    { key: Buffer.from(`key-${b}`), value: Buffer.from(`batch ${b} record 0 `.padEnd(40 + (b % 7), '.')) },
    { value: Buffer.from(`batch ${b} record 1 `.padEnd(30, '-')), headers: { n: Buffer.from(String(b)) } },
  ];
}

/** XORs the byte at `position` of a file with 0xff; doing it twice restores the byte. */
function flipByte(path: string, position: number): void {
  const fd = openSync(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, position);
    one[0]! ^= 0xff;
    writeSync(fd, one, 0, 1, position);
  } finally {
    closeSync(fd);
  }
}

function writeAt(path: string, bytes: Buffer, position: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, position);
  } finally {
    closeSync(fd);
  }
}

/** The `WAL_CORRUPTION` error `open` fails with; fails the test if the log opens. */
async function openFailure(options: WalOptions): Promise<WalError> {
  let opened: Wal | undefined;
  try {
    ({ wal: opened } = await Wal.open(options));
  } catch (error) {
    assert.ok(isWalError(error, 'WAL_CORRUPTION'), `expected WAL_CORRUPTION, got ${String(error)}`);
    return error;
  }
  await opened.close();
  assert.fail('the log opened although it is corrupt');
}

/** The `WAL_CORRUPTION` error `action` rejects with. */
async function corruptionOf(action: () => Promise<unknown>): Promise<WalError> {
  try {
    await action();
  } catch (error) {
    assert.ok(isWalError(error, 'WAL_CORRUPTION'), `expected WAL_CORRUPTION, got ${String(error)}`);
    return error;
  }
  assert.fail('expected WAL_CORRUPTION, but it succeeded');
}

/** Runs `check` once per byte position, naming the position in any failure. */
async function forEachByte(from: number, to: number, check: (position: number) => Promise<void>): Promise<void> {
  for (let position = from; position < to; position++) {
    try {
      await check(position);
    } catch (error) {
      if (error instanceof Error) error.message = `byte ${position}: ${error.message}`;
      throw error;
    }
  }
}

function segmentBases(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => /^\d{20}\.seg$/.test(name))
    .sort()
    .map((name) => Number(name.slice(0, 20)));
}

interface SegmentedLog {
  readonly dir: string;
  readonly options: WalOptions;
  readonly records: AppendRecord[];
  /** Base offsets of the segments, oldest first; the last is active. */
  readonly bases: number[];
  framesOf(baseOffset: number): FrameExtent[];
}

/** A cleanly closed log of four or more 4 KiB segments. */
async function writeSegmentedLog(dir: string): Promise<SegmentedLog> {
  const options: WalOptions = { dir, syncPolicy: 'none', segmentSizeBytes: SEGMENT_SIZE_BYTES, preallocate: false, clock: new FakeClock().now };
  const { wal } = await Wal.open(options);
  const records: AppendRecord[] = [];
  for (let b = 0; b < 100; b++) {
    await wal.append(batch(b));
    records.push(...batch(b));
  }
  await wal.close();
  const bases = segmentBases(dir);
  assert.ok(bases.length >= 4, `${bases.length} segments`);
  // The sweeps reopen the log once per byte: without fsyncs (see UnsyncedStorage).
  const sweepOptions: WalOptions = { ...options, storage: new UnsyncedStorage() };
  return { dir, options: sweepOptions, records, bases, framesOf: (base) => segmentFrames(readFileSync(join(dir, segmentName(base)))) };
}

/** A frame in the middle of a segment: whole frames before and after it. */
function middleFrame(frames: readonly FrameExtent[]): { frame: FrameExtent; next: FrameExtent } {
  const i = Math.floor(frames.length / 2);
  assert.ok(i > 0 && i + 1 < frames.length);
  return { frame: frames[i]!, next: frames[i + 1]! };
}

describe('a flipped byte in a sealed segment', () => {
  test('refuses to open when the segment is re-scanned, naming the segment, the frame and the offsets around it', async () => {
    const { dir, remove } = makeTempDir('wald-bit-flip-');
    try {
      const log = await writeSegmentedLog(dir);
      const sealed = log.bases[1]!;
      rmSync(join(dir, indexName(sealed)));
      const { frame, next } = middleFrame(log.framesOf(sealed));
      const path = join(dir, segmentName(sealed));
      await forEachByte(frame.position, frame.position + frame.length, async (position) => {
        flipByte(path, position);
        const error = await openFailure(log.options);
        flipByte(path, position);
        assert.equal(error.details['segment'], segmentName(sealed));
        assert.equal(error.details['position'], frame.position);
        assert.equal(typeof error.details['reason'], 'string');
        assert.equal(error.details['lastGoodOffset'], frame.baseOffset - 1);
        assert.equal(error.details['nextGoodOffset'], next.baseOffset);
        assert.equal(error.details['nextGoodPosition'], next.position);
      });
      // With every byte restored the same directory opens and holds every record.
      const { wal, report } = await Wal.open(log.options);
      try {
        assert.deepEqual(
          report.faults.map((fault) => [fault.kind, 'segment' in fault ? fault.segment : undefined]),
          [['index-rebuilt', segmentName(sealed)]],
        );
        assertRecordsEqual(await readAllRecords(wal), log.records);
      } finally {
        await wal.close();
      }
    } finally {
      remove();
    }
  });

  test('treats a flipped byte in the last frame of a sealed segment as corruption, not as a torn tail', async () => {
    const { dir, remove } = makeTempDir('wald-bit-flip-');
    try {
      const log = await writeSegmentedLog(dir);
      const sealed = log.bases[0]!;
      rmSync(join(dir, indexName(sealed)));
      const last = log.framesOf(sealed).at(-1)!;
      const path = join(dir, segmentName(sealed));
      await forEachByte(last.position, last.position + last.length, async (position) => {
        flipByte(path, position);
        const error = await openFailure(log.options);
        flipByte(path, position);
        assert.equal(error.details['segment'], segmentName(sealed));
        assert.equal(error.details['position'], last.position);
        assert.equal(error.details['lastGoodOffset'], last.baseOffset - 1);
        assert.equal(error.details['nextGoodOffset'], undefined);
      });
      assert.deepEqual(
        readdirSync(dir).filter((name) => name.endsWith('.torn')),
        [],
        'nothing was cut',
      );
    } finally {
      remove();
    }
  });

  test('opens from a valid index without reading the segment, and a read of the damaged frame fails naming it', async () => {
    const { dir, remove } = makeTempDir('wald-bit-flip-');
    try {
      const log = await writeSegmentedLog(dir);
      const sealed = log.bases[1]!;
      const { frame } = middleFrame(log.framesOf(sealed));
      const path = join(dir, segmentName(sealed));
      await forEachByte(frame.position, frame.position + frame.length, async (position) => {
        flipByte(path, position);
        const { wal, report } = await Wal.open(log.options);
        try {
          assert.deepEqual(report.faults, []);
          assert.equal(report.bytesScanned, 0);
          const error = await corruptionOf(() => wal.read(frame.baseOffset, { limit: 1 }));
          assert.equal(error.details['segment'], segmentName(sealed));
          assert.equal(error.details['position'], frame.position);
          assert.equal(error.details['lastGoodOffset'], frame.baseOffset - 1);
          // What lies before the damage still reads.
          const before = await wal.read(0, { limit: frame.baseOffset });
          assertRecordsEqual(before, log.records.slice(0, frame.baseOffset));
        } finally {
          await wal.close();
          flipByte(path, position);
        }
      });
    } finally {
      remove();
    }
  });
});

interface ActiveLog {
  readonly root: string;
  /** The directory as a process that crashed after its last acknowledged append left it. */
  readonly crashed: string;
  readonly records: AppendRecord[];
  readonly frames: FrameExtent[];
  /** Frames the (stale) index of the active segment covers. */
  readonly indexedFrames: number;
}

/**
 * One segment written by two processes: the first closes cleanly after 3 batches (so an index of
 * the active segment exists), the second appends 6 more and is copied while open, as after a crash.
 */
async function writeActiveLog(preallocate: boolean): Promise<ActiveLog> {
  const { dir: root } = makeTempDir('wald-bit-flip-active-');
  const live = join(root, 'live');
  const crashed = join(root, 'crashed');
  const options: WalOptions = { dir: live, syncPolicy: 'always', segmentSizeBytes: SEGMENT_SIZE_BYTES, preallocate, clock: new FakeClock().now };
  const records: AppendRecord[] = [];
  const first = await Wal.open(options);
  for (let b = 0; b < 3; b++) {
    await first.wal.append(batch(b));
    records.push(...batch(b));
  }
  await first.wal.close();
  const second = await Wal.open(options);
  for (let b = 3; b < 9; b++) {
    await second.wal.append(batch(b));
    records.push(...batch(b));
  }
  copyLogDir(live, crashed);
  await second.wal.close();
  assert.deepEqual(segmentBases(crashed), [0], 'one segment');
  const frames = segmentFrames(readFileSync(join(crashed, segmentName(0))));
  assert.equal(frames.length, 9);
  return { root, crashed, records, frames, indexedFrames: 3 };
}

function activeOptions(dir: string, preallocate: boolean): WalOptions {
  // Reopened once per byte: without fsyncs (see UnsyncedStorage).
  return { dir, syncPolicy: 'none', segmentSizeBytes: SEGMENT_SIZE_BYTES, preallocate, storage: new UnsyncedStorage() };
}

for (const preallocate of [false, true]) {
  const kind = preallocate ? 'preallocated' : 'grown';
  describe(`a flipped byte in the active segment (${kind})`, () => {
    test('refuses to open when valid frames follow the damaged one, naming the place and the next good offset', async () => {
      const log = await writeActiveLog(preallocate);
      try {
        const damaged = log.frames[5]!;
        const next = log.frames[6]!;
        const path = join(log.crashed, segmentName(0));
        await forEachByte(damaged.position, damaged.position + damaged.length, async (position) => {
          flipByte(path, position);
          const error = await openFailure(activeOptions(log.crashed, preallocate));
          flipByte(path, position);
          assert.equal(error.details['segment'], segmentName(0));
          assert.equal(error.details['position'], damaged.position);
          assert.equal(error.details['lastGoodOffset'], damaged.baseOffset - 1);
          assert.equal(error.details['nextGoodOffset'], next.baseOffset);
          assert.equal(error.details['nextGoodPosition'], next.position);
        });
        assert.deepEqual(
          readdirSync(log.crashed).filter((name) => name.endsWith('.torn')),
          [],
          'nothing was cut',
        );
      } finally {
        rmSync(log.root, { recursive: true, force: true });
      }
    });

    test('refuses to open when a middle frame, or only its first 8 bytes, reads as zeros, as after a lost write', async () => {
      const log = await writeActiveLog(preallocate);
      try {
        const damaged = log.frames[5]!;
        const next = log.frames[6]!;
        const path = join(log.crashed, segmentName(0));
        const original = readFileSync(path).subarray(damaged.position, damaged.position + damaged.alignedLength);
        for (const zeroed of [8, damaged.alignedLength]) {
          writeAt(path, Buffer.alloc(zeroed), damaged.position);
          const error = await openFailure(activeOptions(log.crashed, preallocate));
          writeAt(path, original, damaged.position);
          assert.equal(error.details['position'], damaged.position, `${zeroed} bytes zeroed`);
          assert.equal(error.details['lastGoodOffset'], damaged.baseOffset - 1, `${zeroed} bytes zeroed`);
          assert.equal(error.details['nextGoodOffset'], next.baseOffset, `${zeroed} bytes zeroed`);
        }
      } finally {
        rmSync(log.root, { recursive: true, force: true });
      }
    });

    test('cuts a flipped byte in the last frame as a torn tail and keeps every record before it', async () => {
      const log = await writeActiveLog(preallocate);
      try {
        const last = log.frames.at(-1)!;
        const before = log.records.slice(0, last.baseOffset);
        await forEachByte(0, last.length, async (at) => {
          const dir = join(log.root, `flip-${at}`);
          cpSync(log.crashed, dir, { recursive: true });
          const path = join(dir, segmentName(0));
          flipByte(path, last.position + at);
          const damaged = readFileSync(path).subarray(last.position, last.position + last.alignedLength);
          const { wal, report } = await Wal.open(activeOptions(dir, preallocate));
          try {
            assert.equal(report.faults.length, 1);
            const fault = report.faults[0]!;
            assert.equal(fault.kind, 'torn-tail');
            if (fault.kind !== 'torn-tail') return;
            assert.equal(fault.segment, segmentName(0));
            assert.equal(fault.position, last.position);
            assert.ok(fault.bytesCut >= 1 && fault.bytesCut <= last.alignedLength);
            assert.ok(damaged.subarray(fault.bytesCut).every((b) => b === 0), 'only zeros are left out of the side file');
            assert.deepEqual(readFileSync(join(dir, fault.savedTo)), damaged.subarray(0, fault.bytesCut));
            assert.equal(report.nextOffset, last.baseOffset);
            assertRecordsEqual(await readAllRecords(wal), before);
            assert.equal((await wal.append(batch(100))).firstOffset, last.baseOffset);
          } finally {
            await wal.close();
          }
          rmSync(dir, { recursive: true, force: true });
        });
      } finally {
        rmSync(log.root, { recursive: true, force: true });
      }
    });

    test('refuses to open when the damage lies in frames a clean close had indexed (the index is gone after a reopen)', async () => {
      const log = await writeActiveLog(preallocate);
      try {
        const damaged = log.frames[1]!;
        assert.ok(1 < log.indexedFrames);
        flipByte(join(log.crashed, segmentName(0)), damaged.position + Math.floor(damaged.length / 2));
        const error = await openFailure(activeOptions(log.crashed, preallocate));
        assert.equal(error.details['segment'], segmentName(0));
        assert.equal(error.details['position'], damaged.position);
      } finally {
        rmSync(log.root, { recursive: true, force: true });
      }
    });
  });
}

describe('damaged segment files', () => {
  test('refuses to open when a middle segment is missing, naming the gap', async () => {
    const { dir, remove } = makeTempDir('wald-bit-flip-');
    try {
      const log = await writeSegmentedLog(dir);
      const missing = log.bases[1]!;
      const after = log.bases[2]!;
      rmSync(join(dir, segmentName(missing)));
      rmSync(join(dir, indexName(missing)));
      const error = await openFailure(log.options);
      assert.equal(error.details['segment'], segmentName(after));
      assert.match(String(error.details['reason']), /gap/);
      assert.equal(error.details['expectedOffset'], missing);
      assert.equal(error.details['foundOffset'], after);
    } finally {
      remove();
    }
  });

  test('refuses to open when a sealed or the active segment header has any byte changed', async () => {
    const { dir, remove } = makeTempDir('wald-bit-flip-');
    try {
      const log = await writeSegmentedLog(dir);
      for (const base of [log.bases[1]!, log.bases.at(-1)!]) {
        const path = join(dir, segmentName(base));
        await forEachByte(0, 64, async (position) => {
          flipByte(path, position);
          const error = await openFailure(log.options);
          flipByte(path, position);
          assert.equal(error.details['segment'], segmentName(base));
          assert.equal(error.details['position'], 0);
        });
      }
    } finally {
      remove();
    }
  });

  test('refuses to open a segment whose header names another base offset than its file name', async () => {
    const { dir, remove } = makeTempDir('wald-bit-flip-');
    try {
      const log = await writeSegmentedLog(dir);
      const active = log.bases.at(-1)!;
      renameSync(join(dir, segmentName(active)), join(dir, segmentName(active + 1)));
      rmSync(join(dir, indexName(active)));
      const error = await openFailure(log.options);
      assert.equal(error.details['segment'], segmentName(active + 1));
      assert.equal(error.details['position'], 0);
      assert.match(String(error.details['reason']), /base offset/);
    } finally {
      remove();
    }
  });
});
