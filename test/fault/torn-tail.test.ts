import assert from 'node:assert/strict';
import { cpSync, existsSync, openSync, closeSync, readFileSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Wal, type AppendRecord, type WalOptions } from '../../src/index.js';
import { copyLogDir } from '../support/copy-log-dir.js';
import { assertRecordsEqual, readAllRecords } from '../support/expect-records.js';
import { segmentFrames, type FrameExtent } from '../support/segment-frames.js';
import { UnsyncedStorage } from '../support/unsynced-storage.js';
import { FakeClock } from '../support/fake-clock.js';
import { makeTempDir } from '../support/temp-dir.js';

const SEGMENT = '00000000000000000000.seg';
const INDEX = '00000000000000000000.idx';
const PRODUCER = 'torn-tail-producer';

function bytes(text: string, length: number): Buffer {
  return Buffer.from(text.padEnd(length, '~'));
}

/** Written and closed by the first process: covered by the active segment's index. */
const FIRST_PROCESS: AppendRecord[][] = [
  [{ key: bytes('a0', 8), value: bytes('first batch, record 0', 30) }, { value: bytes('first batch, record 1', 24) }],
  [{ key: new Uint8Array(0), value: new Uint8Array(0), type: 'delete' }],
];
/** Written by the second process, which "crashes" after its last batch: past that index. */
const SECOND_PROCESS: AppendRecord[][] = [
  [{ value: bytes('c0', 17) }, { key: bytes('c1', 3), value: bytes('c1', 9), headers: { h: bytes('x', 2) } }, { value: bytes('c2', 5) }],
];
/** The last frame, the one torn: about 110 bytes (one byte-position sweep each), with padding. */
const LAST_BATCH: AppendRecord[] = [
  { key: bytes('key-d0', 6), value: bytes('last, record 0', 14), headers: { trace: bytes('t-1', 4), 'ünï': bytes('u', 1) } },
  { value: bytes('last, record 1', 14), type: 'checkpoint' },
];

interface Fixture {
  readonly root: string;
  /** The data directory as the crashed second process left it (CLEAN absent, index stale). */
  readonly crashed: string;
  /** The last frame, as it lies in the segment. */
  readonly last: FrameExtent;
  readonly lastBytes: Buffer;
  /** Records before the last frame. */
  readonly prefix: AppendRecord[];
}

/**
 * Two processes write one segment: the first closes cleanly, the second appends more (the last
 * batch with a producer stamp) and its directory is copied while still open: a crash after an
 * acknowledged `always` append. Recovery must scan what the stale index does not cover.
 */
async function writeFixture(preallocate: boolean): Promise<Fixture> {
  const { dir: root } = makeTempDir('wald-torn-tail-');
  const live = join(root, 'live');
  const crashed = join(root, 'crashed');
  const clock = new FakeClock();
  const options: WalOptions = { dir: live, syncPolicy: 'always', segmentSizeBytes: 4096, preallocate, clock: clock.now };
  const first = await Wal.open(options);
  for (const batch of FIRST_PROCESS) await first.wal.append(batch);
  await first.wal.close();
  const second = await Wal.open(options);
  for (const batch of SECOND_PROCESS) await second.wal.append(batch, { producerId: PRODUCER, sequence: 1 });
  const lastResult = await second.wal.append(LAST_BATCH, { producerId: PRODUCER, sequence: 2 });
  copyLogDir(live, crashed);
  await second.wal.close();

  assert.ok(!existsSync(join(crashed, 'CLEAN')), 'the crashed copy has no clean-shutdown marker');
  assert.ok(!existsSync(join(crashed, INDEX)), 'the active segment index was removed when the second process opened it');
  const segment = readFileSync(join(crashed, SEGMENT));
  const last = segmentFrames(segment).at(-1)!;
  assert.equal(segment.length, preallocate ? 4096 : last.position + last.alignedLength, 'zeros follow the last frame only when preallocated');
  assert.equal(last.baseOffset, lastResult.firstOffset);
  assert.ok(last.length >= 100 && last.length <= 200, `last frame is ${last.length} bytes`);
  assert.ok(last.alignedLength > last.length, 'the last frame has padding');
  return {
    root,
    crashed,
    last,
    lastBytes: Buffer.from(segment.subarray(last.position, last.position + last.alignedLength)),
    prefix: [...FIRST_PROCESS, ...SECOND_PROCESS].flat(),
  };
}

/** Tears the last frame `cut` bytes in: what a crash mid-write leaves in each kind of file. */
function tear(dir: string, fixture: Fixture, cut: number, preallocate: boolean): void {
  const path = join(dir, SEGMENT);
  const { position, alignedLength } = fixture.last;
  if (!preallocate) {
    truncateSync(path, position + cut);
    return;
  }
  // Preallocated space was zeros before the write: a torn write leaves zeros after the cut.
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(alignedLength - cut), 0, alignedLength - cut, position + cut);
  } finally {
    closeSync(fd);
  }
}

function isZero(buf: Buffer): boolean {
  return buf.every((b) => b === 0);
}

async function checkCut(fixture: Fixture, cut: number, preallocate: boolean): Promise<void> {
  const dir = join(fixture.root, `cut-${cut}`);
  cpSync(fixture.crashed, dir, { recursive: true });
  tear(dir, fixture, cut, preallocate);
  const { last, lastBytes, prefix } = fixture;
  // Reopened twice per cut byte: without fsyncs (see UnsyncedStorage).
  const options: WalOptions = { dir, syncPolicy: 'always', segmentSizeBytes: 4096, preallocate, storage: new UnsyncedStorage() };
  const isWhole = cut >= last.length;
  const kept = lastBytes.subarray(0, Math.min(cut, last.length));

  const { wal, report } = await Wal.open(options);
  try {
    if (isWhole) {
      // A file that ends inside the padding gets it back (a preallocated one holds zeros there already).
      const padding = preallocate || cut >= last.alignedLength ? [] : [{ kind: 'padding-restored', segment: SEGMENT, position: last.position + cut, bytesAdded: last.alignedLength - cut }];
      assert.deepEqual(report.faults, padding, 'a frame cut only in its padding is whole');
      assert.equal(report.nextOffset, last.baseOffset + last.recordCount);
    } else {
      assert.equal(report.nextOffset, last.baseOffset);
      assert.equal(report.records, last.baseOffset);
      if (isZero(kept)) {
        assert.deepEqual(report.faults, [], 'nothing of the last frame reached the disk');
        assert.equal(report.bytesCut, 0);
      } else {
        assert.equal(report.faults.length, 1, 'one fault');
        const fault = report.faults[0]!;
        assert.equal(fault.kind, 'torn-tail');
        if (fault.kind !== 'torn-tail') return;
        assert.equal(fault.segment, SEGMENT);
        assert.equal(fault.position, last.position);
        // The cut keeps every byte of the torn frame that reached the disk; trailing zeros are
        // indistinguishable from unwritten space and may be left out.
        assert.ok(fault.bytesCut >= 1 && fault.bytesCut <= kept.length, `bytesCut ${fault.bytesCut} of ${kept.length} kept`);
        assert.ok(isZero(kept.subarray(fault.bytesCut)), 'only zeros are left out of the side file');
        assert.equal(report.bytesCut, fault.bytesCut);
        assert.deepEqual(readFileSync(join(dir, fault.savedTo)), kept.subarray(0, fault.bytesCut), 'side file holds the cut bytes');
      }
    }
    const whole = isWhole ? [...prefix, ...LAST_BATCH] : prefix;
    assertRecordsEqual(await readAllRecords(wal), whole);

    // The producer's retry of the last batch is written again where the torn frame was, or is
    // recognised as a duplicate when the frame survived whole.
    const retry = await wal.append(LAST_BATCH, { producerId: PRODUCER, sequence: 2 });
    assert.equal(retry.firstOffset, last.baseOffset);
    assert.equal(retry.duplicate, isWhole);
    const another = await wal.append([{ value: bytes('after the cut', 20) }]);
    assert.equal(another.firstOffset, last.baseOffset + last.recordCount);
  } finally {
    await wal.close();
  }

  // A full re-scan of the active segment after the repair finds a clean log holding everything.
  rmSync(join(dir, 'CLEAN'));
  rmSync(join(dir, INDEX));
  const reopened = await Wal.open(options);
  try {
    assert.deepEqual(reopened.report.faults, []);
    assert.equal(reopened.report.nextOffset, last.baseOffset + last.recordCount + 1);
    assertRecordsEqual(await readAllRecords(reopened.wal), [...prefix, ...LAST_BATCH, { value: bytes('after the cut', 20) }]);
  } finally {
    await reopened.wal.close();
  }
  rmSync(dir, { recursive: true, force: true });
}

for (const preallocate of [false, true]) {
  const how = preallocate ? 'zeroed from the cut in a preallocated segment' : 'truncated';
  describe(`torn last frame, ${how}`, () => {
    test('recovers the prefix before a torn last frame at every byte, keeps the cut bytes, and appends on', async () => {
      const fixture = await writeFixture(preallocate);
      try {
        for (let cut = 0; cut < fixture.last.alignedLength; cut++) {
          try {
            await checkCut(fixture, cut, preallocate);
          } catch (error) {
            if (error instanceof Error) error.message = `cut at byte ${cut} of the last frame: ${error.message}`;
            throw error;
          }
        }
      } finally {
        rmSync(fixture.root, { recursive: true, force: true });
      }
    });
  });
}
