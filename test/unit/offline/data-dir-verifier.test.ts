/**
 * `verifyDataDir` on real directories: a healthy log and its snapshot verify with the right counts;
 * a torn tail, a bit-flipped frame, a damaged or foreign index, a missing segment and a damaged
 * snapshot are each one fault naming the file, the byte position and the offsets around it, and
 * damage is classified as recovery classifies it when the log opens.
 */
import assert from 'node:assert/strict';
import { copyFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isWalError, Wal } from '../../../src/index.js';
import { verifyDataDir, type DataDirVerification } from '../../../src/offline/data-dir-verifier.js';
import { compactKeys } from '../../../src/state/key-compaction.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { NodeStorage } from '../../../src/storage/node-storage.js';
import type { OpenMode, StorageFile } from '../../../src/storage/storage.js';
import { copyLogDir } from '../../support/copy-log-dir.js';
import { flipByte, indexName, segmentName, testLogOptions, writeTestLog, writeTestSnapshot } from '../../support/offline-log.js';
import { makeTempDir } from '../../support/temp-dir.js';

function verify(dir: string): Promise<DataDirVerification> {
  return verifyDataDir(new NodeStorage(), dir, { snapshotDir: 'snapshots' });
}

describe('verifyDataDir', () => {
  test('reports a healthy log with its segments, records, offsets, index files and snapshots, and no fault', async () => {
    const { dir, remove } = makeTempDir('wald-verify-');
    try {
      const log = await writeTestLog(dir, 80);
      assert.ok(log.bases.length >= 3, `${log.bases.length} segments`);
      await writeTestSnapshot(join(dir, 'snapshots'), 40);
      const report = await verify(dir);
      assert.deepEqual(report.faults, []);
      assert.equal(report.recordCount, 160);
      assert.equal(report.firstOffset, 0);
      assert.equal(report.nextOffset, 160);
      assert.deepEqual(report.segments.map((s) => s.baseOffset), log.bases);
      assert.deepEqual(report.segments.map((s) => s.recordCount), log.bases.map((base, i) => (log.bases[i + 1] ?? 160) - base));
      assert.deepEqual(report.segments.map((s) => s.frameCount), log.bases.map((base) => log.framesOf(base).length));
      // A clean close wrote the active segment's index too.
      assert.equal(report.indexFilesChecked, log.bases.length);
      assert.ok(report.segments.every((s) => s.index === 'checked'));
      assert.equal(report.isCleanlyClosed, true);
      assert.equal(report.snapshotsVerified, 1);
      assert.equal(report.snapshots[0]?.walOffset, 40);
    } finally {
      remove();
    }
  });

  test('reads segments rewritten by key compaction, with their gaps and their stated ends, as healthy', async () => {
    const { dir, remove } = makeTempDir('wald-verify-');
    try {
      const storage = new NodeStorage();
      const { wal } = await Wal.open({ dir, storage, segmentSizeBytes: 16 * 1024, preallocate: false });
      const { keeper } = await StateKeeper.open({ wal, storage });
      // Every tenth record's key is written once (kept), the others over 20 keys (mostly superseded).
      for (let i = 0; i < 1200; i++) {
        const key = i % 10 === 0 ? `once-${i}` : `hot-${i % 20}`;
        await keeper.append([{ key: Buffer.from(key), value: Buffer.alloc(60, 0x61) }]);
      }
      const compaction = await compactKeys(keeper, wal, { thresholdPercent: 20 });
      assert.ok(compaction.segmentsRewritten >= 2, `${compaction.segmentsRewritten} segments rewritten`);
      const kept = (await wal.read(0, { limit: 2000 })).length;
      await keeper.close();
      await wal.close();
      const report = await verify(dir);
      assert.deepEqual(report.faults, []);
      assert.equal(report.nextOffset, 1200);
      assert.equal(report.recordCount, kept);
      assert.ok(report.segments.every((s) => s.index === 'checked'));
    } finally {
      remove();
    }
  });

  test('names the segment, the frame and the offsets around a flipped byte anywhere in a sealed frame, and counts the rest', async () => {
    const { dir, remove } = makeTempDir('wald-verify-');
    try {
      const log = await writeTestLog(dir, 80);
      const sealed = log.bases[1]!;
      const frames = log.framesOf(sealed);
      const i = Math.floor(frames.length / 2);
      const frame = frames[i]!;
      const next = frames[i + 1]!;
      const path = join(dir, segmentName(sealed));
      for (let position = frame.position; position < frame.position + frame.length; position++) {
        flipByte(path, position);
        const report = await verify(dir);
        flipByte(path, position);
        const at = `byte ${position}`;
        assert.equal(report.faults.length, 1, `${at}: ${JSON.stringify(report.faults)}`);
        const fault = report.faults[0]!;
        assert.equal(fault.kind, 'corruption', at);
        assert.equal(fault.file, segmentName(sealed), at);
        assert.equal(fault.position, frame.position, at);
        assert.equal(fault.lastGoodOffset, frame.baseOffset - 1, at);
        assert.equal(fault.nextGoodOffset, next.baseOffset, at);
        assert.equal(fault.nextGoodPosition, next.position, at);
        assert.equal(report.recordCount, 160 - frame.recordCount, at);
        assert.equal(report.nextOffset, 160, at);
      }
      assert.deepEqual((await verify(dir)).faults, [], 'every byte restored');
    } finally {
      remove();
    }
  });

  test('classifies the end of the active segment cut inside its last frame as the torn tail recovery cuts', async () => {
    const { dir: root, remove } = makeTempDir('wald-verify-');
    try {
      const live = join(root, 'live');
      const log = await writeTestLog(live, 30, true);
      const crashed = join(root, 'crashed');
      copyLogDir(live, crashed);
      await log.wal!.close();
      const active = log.bases.at(-1)!;
      const last = log.framesOf(active).at(-1)!;
      truncateSync(join(crashed, segmentName(active)), last.position + 20);
      const report = await verify(crashed);
      assert.equal(report.faults.length, 1, JSON.stringify(report.faults));
      const fault = report.faults[0]!;
      assert.equal(fault.kind, 'torn-tail');
      assert.equal(fault.file, segmentName(active));
      assert.equal(fault.position, last.position);
      assert.equal(fault.lastGoodOffset, last.baseOffset - 1);
      assert.ok(fault.bytes !== undefined && fault.bytes > 0 && fault.bytes <= 20, `${fault.bytes} bytes`);
      assert.equal(report.nextOffset, last.baseOffset);
      // Nothing was cut by verify; the open cuts the same bytes.
      const { wal, report: recovery } = await Wal.open(testLogOptions(crashed));
      await wal.close();
      assert.deepEqual(
        recovery.faults.map((f) => (f.kind === 'torn-tail' ? [f.kind, f.segment, f.position, f.bytesCut] : [f.kind])),
        [['torn-tail', segmentName(active), last.position, fault.bytes]],
      );
    } finally {
      remove();
    }
  });

  test('classifies a flipped byte in the active segment before frames that vouch for it as corruption, as the open does', async () => {
    const { dir: root, remove } = makeTempDir('wald-verify-');
    try {
      const live = join(root, 'live');
      const log = await writeTestLog(live, 30, true);
      const crashed = join(root, 'crashed');
      copyLogDir(live, crashed);
      await log.wal!.close();
      const active = log.bases.at(-1)!;
      const frames = log.framesOf(active);
      const damaged = frames[1]!;
      flipByte(join(crashed, segmentName(active)), damaged.position + 30);
      const report = await verify(crashed);
      assert.deepEqual(
        report.faults.map((f) => [f.kind, f.file, f.position, f.lastGoodOffset, f.nextGoodOffset]),
        [['corruption', segmentName(active), damaged.position, damaged.baseOffset - 1, frames[2]!.baseOffset]],
      );
      await assert.rejects(Wal.open(testLogOptions(crashed)), (error) => isWalError(error, 'WAL_CORRUPTION') && error.details['position'] === damaged.position);
    } finally {
      remove();
    }
  });

  test('reports a damaged index file, and one that belongs to another segment, naming the index', async () => {
    const { dir, remove } = makeTempDir('wald-verify-');
    try {
      const log = await writeTestLog(dir, 80);
      const [first, second] = log.bases as [number, number];
      flipByte(join(dir, indexName(first)), 100);
      copyFileSync(join(dir, indexName(second)), join(dir, indexName(log.bases[2]!)));
      const report = await verify(dir);
      assert.deepEqual(
        report.faults.map((f) => [f.kind, f.file]),
        [
          ['index', indexName(first)],
          ['index', indexName(log.bases[2]!)],
        ],
      );
      assert.match(report.faults[0]!.reason, /checksum/);
      assert.match(report.faults[1]!.reason, /another segment/);
      assert.deepEqual(report.segments.map((s) => s.index).slice(0, 3), ['damaged', 'checked', 'damaged']);
    } finally {
      remove();
    }
  });

  test('reports a missing middle segment as a gap, and a missing index only as a note', async () => {
    const { dir, remove } = makeTempDir('wald-verify-');
    try {
      const log = await writeTestLog(dir, 80);
      rmSync(join(dir, indexName(log.bases[0]!)));
      rmSync(join(dir, segmentName(log.bases[1]!)));
      rmSync(join(dir, indexName(log.bases[1]!)));
      const report = await verify(dir);
      assert.deepEqual(
        report.faults.map((f) => [f.kind, f.file, f.position, f.lastGoodOffset, f.nextGoodOffset]),
        [['corruption', segmentName(log.bases[2]!), 0, log.bases[1]! - 1, log.bases[2]!]],
      );
      assert.match(report.faults[0]!.reason, /gap/);
      assert.ok(report.notes.some((note) => note.includes(segmentName(log.bases[0]!)) && note.includes('no index')), report.notes.join('; '));
    } finally {
      remove();
    }
  });

  test('reports a snapshot with a flipped byte, naming its file', async () => {
    const { dir, remove } = makeTempDir('wald-verify-');
    try {
      await writeTestLog(dir, 10);
      const good = await writeTestSnapshot(join(dir, 'snapshots'), 5);
      const damaged = await writeTestSnapshot(join(dir, 'snapshots'), 12);
      flipByte(damaged, 80);
      const report = await verify(dir);
      assert.deepEqual(report.faults.map((f) => [f.kind, f.file]), [['snapshot', damaged]]);
      assert.equal(report.snapshotsVerified, 1);
      assert.deepEqual(report.snapshots.map((s) => [s.path, s.isVerified]), [[good, true], [damaged, false]]);
    } finally {
      remove();
    }
  });

  test('reads a log that is open in this process as it is (what --read-only does with a live server)', async () => {
    const { dir: root, remove } = makeTempDir('wald-verify-');
    try {
      const live = join(root, 'live');
      const log = await writeTestLog(live, 30, true);
      try {
        const report = await verify(live);
        assert.deepEqual(report.faults, []);
        assert.equal(report.nextOffset, 60);
        assert.equal(report.isCleanlyClosed, false);
      } finally {
        await log.wal!.close();
      }
    } finally {
      remove();
    }
  });
});

/**
 * The real file system, except that the first open of `path` sees only its first `visibleBytes`:
 * a reader that met a frame half written by a live server.
 */
class HalfWrittenOnce extends NodeStorage {
  private isCut = true;

  constructor(
    private readonly path: string,
    private readonly visibleBytes: number,
  ) {
    super();
  }

  override open(path: string, mode: OpenMode): StorageFile {
    const file = super.open(path, mode);
    if (path !== this.path || !this.isCut) return file;
    this.isCut = false;
    const visible = this.visibleBytes;
    return Object.assign(Object.create(file) as StorageFile, {
      size: () => Math.min(file.size(), visible),
      read: (buffer: Uint8Array, length: number, position: number) => file.read(buffer, Math.max(0, Math.min(length, visible - position)), position),
      close: () => file.close(),
    });
  }
}

describe('verifyDataDir on a live log (--read-only)', () => {
  test('reads the end of the last segment again before calling it a torn tail: a frame that was being written is a note', async () => {
    const { dir, remove } = makeTempDir('wald-verify-');
    try {
      const log = await writeTestLog(dir, 30);
      const active = log.bases.at(-1)!;
      const last = log.framesOf(active).at(-1)!;
      const path = join(dir, segmentName(active));
      const live = await verifyDataDir(new HalfWrittenOnce(path, last.position + 20), dir, { snapshotDir: 'snapshots', isLive: true });
      assert.deepEqual(live.faults, []);
      assert.equal(live.nextOffset, 60);
      assert.ok(live.notes.some((note) => note.includes('being written')), live.notes.join('; '));
      // Read once only (a directory no server holds), the same view is a torn tail.
      const locked = await verifyDataDir(new HalfWrittenOnce(path, last.position + 20), dir, { snapshotDir: 'snapshots' });
      assert.deepEqual(locked.faults.map((f) => [f.kind, f.position]), [['torn-tail', last.position]]);
    } finally {
      remove();
    }
  });

  test('still reports a torn tail that is there on both reads', async () => {
    const { dir: root, remove } = makeTempDir('wald-verify-');
    try {
      const live = join(root, 'live');
      const log = await writeTestLog(live, 12, true);
      const crashed = join(root, 'crashed');
      copyLogDir(live, crashed);
      await log.wal!.close();
      const last = log.framesOf(log.bases.at(-1)!).at(-1)!;
      truncateSync(join(crashed, segmentName(log.bases.at(-1)!)), last.position + 30);
      const report = await verifyDataDir(new NodeStorage(), crashed, { snapshotDir: 'snapshots', isLive: true });
      assert.deepEqual(report.faults.map((f) => [f.kind, f.position]), [['torn-tail', last.position]]);
    } finally {
      remove();
    }
  });
});
