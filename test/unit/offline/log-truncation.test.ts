/**
 * `planTruncation` + `applyTruncation` (`wald repair --truncate-at`) on real directories: the log
 * ends before the offset, what is cut is kept byte for byte in the side directory, the log
 * reopens and appends go on at the offset; offsets inside a batch, past damage or outside the log
 * are refused with nothing changed; snapshots above the offset and the recovery point follow.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodeRecoveryPoint } from '../../../src/codec/recovery-point-file.js';
import { isWalError, Wal, type AppendRecord } from '../../../src/index.js';
import { verifyDataDir } from '../../../src/offline/data-dir-verifier.js';
import { readEpochHistoryFile } from '../../../src/engine/epoch-history.js';
import { applyTruncation, isNothingToCut, planTruncation, type TruncationReport } from '../../../src/offline/log-truncation.js';
import { compactKeys } from '../../../src/state/key-compaction.js';
import { ReplicationState } from '../../../src/server/replication-state.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { NodeStorage } from '../../../src/storage/node-storage.js';
import { assertRecordsEqual, readAllRecords } from '../../support/expect-records.js';
import { flipByte, indexName, segmentName, testBatch, testLogOptions, writeTestLog, writeTestSnapshot } from '../../support/offline-log.js';
import { makeTempDir } from '../../support/temp-dir.js';

const storage = new NodeStorage();
const NOW_MS = Date.UTC(2026, 11, 1, 15, 0, 0);

async function truncate(dir: string, offset: number): Promise<TruncationReport> {
  const plan = await planTruncation(storage, dir, offset, 'snapshots');
  return applyTruncation(storage, dir, plan, NOW_MS);
}

/** Every file of a directory tree with its bytes, to show that nothing changed. */
function snapshotOfDir(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name !== 'LOCK') files.set(join(entry.parentPath, entry.name), readFileSync(join(entry.parentPath, entry.name)));
  }
  return files;
}

/** Opens the log, checks its records are the first `offset` written, appends one batch and checks where it lands. */
async function assertReopensAt(dir: string, records: readonly AppendRecord[], offset: number): Promise<void> {
  const { wal } = await Wal.open(testLogOptions(dir));
  try {
    assert.equal(wal.nextOffset, offset);
    assertRecordsEqual(await readAllRecords(wal), records.slice(0, offset));
    assert.equal((await wal.append(testBatch(1000))).firstOffset, offset);
  } finally {
    await wal.close();
  }
  assert.deepEqual((await verifyDataDir(storage, dir, { snapshotDir: 'snapshots' })).faults, []);
}

describe('truncating a log offline', () => {
  test('cuts inside a sealed segment at a frame, removes the later segments, keeps every cut byte, and the log goes on at the offset', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 80);
      // Reopened once: the recovery point now says the whole log is durable.
      await (await Wal.open(testLogOptions(dir))).wal.close();
      assert.equal(decodeRecoveryPoint(readFileSync(join(dir, 'RECOVERY')))?.durableNext, 160);
      const holder = log.bases[1]!;
      const frames = log.framesOf(holder);
      const cut = frames[3]!;
      const holderBytes = readFileSync(join(dir, segmentName(holder)));
      const later = log.bases.slice(2).map((base) => [segmentName(base), readFileSync(join(dir, segmentName(base)))] as const);
      assert.ok(later.length > 0);

      const report = await truncate(dir, cut.baseOffset);
      assert.equal(report.segment, segmentName(holder));
      assert.equal(report.cutPosition, cut.position);
      assert.equal(report.logEnd, 160);
      assert.deepEqual(report.removedSegments, later.map(([name]) => name));
      assert.equal(report.savedTo, 'repair-20261201T150000000Z');
      const side = join(dir, report.savedTo);
      assert.deepEqual(readFileSync(join(side, `${segmentName(holder)}.${cut.position}.cut`)), holderBytes.subarray(cut.position));
      for (const [name, bytes] of later) {
        assert.deepEqual(readFileSync(join(side, name)), bytes, `${name} kept whole`);
        assert.ok(!existsSync(join(dir, name)), `${name} gone from the log`);
      }
      assert.equal(readFileSync(join(dir, segmentName(holder))).length, cut.position);
      assert.equal((JSON.parse(readFileSync(join(side, 'REPAIR.json'), 'utf8')) as { offset: number }).offset, cut.baseOffset);
      assert.equal(decodeRecoveryPoint(readFileSync(join(dir, 'RECOVERY')))?.durableNext, cut.baseOffset, 'recovery point lowered');
      await assertReopensAt(dir, log.records, cut.baseOffset);
    } finally {
      remove();
    }
  });

  test('at the first offset of a segment, removes it whole and cuts nothing of the one before', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 80);
      const offset = log.bases[2]!;
      const report = await truncate(dir, offset);
      assert.equal(report.segment, segmentName(log.bases[1]!));
      assert.equal(report.cutBytes, 0);
      assert.deepEqual(report.removedSegments, log.bases.slice(2).map(segmentName));
      await assertReopensAt(dir, log.records, offset);
    } finally {
      remove();
    }
  });

  test('at the first offset of the log, keeps the first segment with its header only', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 20);
      await truncate(dir, 0);
      assert.equal(readFileSync(join(dir, segmentName(0))).length, 64);
      await assertReopensAt(dir, log.records, 0);
    } finally {
      remove();
    }
  });

  test('refuses an offset inside a batch, past the end, or below the first offset, and changes nothing', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 40);
      const before = snapshotOfDir(dir);
      const frame = log.framesOf(log.bases[1]!)[2]!;
      await assert.rejects(planTruncation(storage, dir, frame.baseOffset + 1, 'snapshots'), (error) => {
        assert.ok(isWalError(error, 'WAL_INVALID_ARGUMENT'), String(error));
        assert.equal(error.details['field'], 'truncateAt');
        assert.equal(error.details['batchFirstOffset'], frame.baseOffset);
        assert.equal(error.details['batchNextOffset'], frame.baseOffset + frame.recordCount);
        return true;
      });
      await assert.rejects(planTruncation(storage, dir, 81, 'snapshots'), (error) => isWalError(error, 'WAL_OFFSET_OUT_OF_RANGE'));
      assert.deepEqual(snapshotOfDir(dir), before);
    } finally {
      remove();
    }
  });

  test('refuses a cut inside a segment key compaction rewrote; at its end it cuts what follows', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const { wal } = await Wal.open({ dir, storage, segmentSizeBytes: 16 * 1024, preallocate: false });
      const { keeper } = await StateKeeper.open({ wal, storage });
      for (let i = 0; i < 1200; i++) await keeper.append([{ key: Buffer.from(i % 10 === 0 ? `once-${i}` : `hot-${i % 20}`), value: Buffer.alloc(60, 0x61) }]);
      await compactKeys(keeper, wal, { thresholdPercent: 0 });
      const compacted = wal.listSegments()[1]!;
      await keeper.close();
      await wal.close();
      const before = snapshotOfDir(dir);
      await assert.rejects(planTruncation(storage, dir, compacted.baseOffset + 1, 'snapshots'), (error) => {
        assert.ok(isWalError(error, 'WAL_INVALID_ARGUMENT'), String(error));
        assert.equal(error.details['segmentNextOffset'], compacted.nextOffset);
        return true;
      });
      assert.deepEqual(snapshotOfDir(dir), before, 'nothing changed');
      const report = await truncate(dir, compacted.nextOffset);
      assert.equal(report.offset, compacted.nextOffset);
      const { wal: reopened } = await Wal.open({ dir, storage });
      try {
        assert.equal(reopened.nextOffset, compacted.nextOffset, 'the log goes on at the cut');
      } finally {
        await reopened.close();
      }
    } finally {
      remove();
    }
  });

  test('at the start of a key-compacted first segment, cuts every record and its compacted end: the log goes on at 0', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const { wal } = await Wal.open({ dir, storage, segmentSizeBytes: 16 * 1024, preallocate: false });
      const { keeper } = await StateKeeper.open({ wal, storage });
      for (let i = 0; i < 1200; i++) await keeper.append([{ key: Buffer.from(`hot-${i % 20}`), value: Buffer.alloc(60, 0x61) }]);
      await compactKeys(keeper, wal, { thresholdPercent: 0 });
      assert.ok(wal.listSegments()[0]!.nextOffset > 0);
      await keeper.close();
      await wal.close();
      const report = await truncate(dir, 0);
      assert.equal(report.offset, 0);
      const { wal: reopened } = await Wal.open({ dir, storage });
      try {
        assert.equal(reopened.nextOffset, 0, 'the log goes on at the cut, not at the compacted end');
        assert.equal((await reopened.append([{ value: Buffer.from('again') }])).firstOffset, 0);
      } finally {
        await reopened.close();
      }
    } finally {
      remove();
    }
  });

  test('refuses an offset past damage, naming the furthest cut; cutting there makes a corrupt log open', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 40);
      const active = log.bases.at(-1)!;
      const frames = log.framesOf(active);
      const damaged = frames[1]!;
      flipByte(join(dir, segmentName(active)), damaged.position + 20);
      await assert.rejects(planTruncation(storage, dir, frames[2]!.baseOffset, 'snapshots'), (error) => {
        assert.ok(isWalError(error, 'WAL_OFFSET_OUT_OF_RANGE'), String(error));
        assert.equal(error.details['maxTruncateAt'], damaged.baseOffset);
        assert.equal(error.details['position'], damaged.position);
        return true;
      });
      await truncate(dir, damaged.baseOffset);
      await assertReopensAt(dir, log.records, damaged.baseOffset);
    } finally {
      remove();
    }
  });

  test('refuses an offset past damage in an earlier sealed segment too, naming the furthest cut', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 40);
      assert.ok(log.bases.length >= 2);
      const damaged = log.framesOf(log.bases[0]!)[3]!;
      flipByte(join(dir, segmentName(log.bases[0]!)), damaged.position + 20);
      const later = log.framesOf(log.bases.at(-1)!)[1]!.baseOffset;
      const before = snapshotOfDir(dir);
      await assert.rejects(planTruncation(storage, dir, later, 'snapshots'), (error) => {
        assert.ok(isWalError(error, 'WAL_OFFSET_OUT_OF_RANGE'), String(error));
        assert.equal(error.details['maxTruncateAt'], damaged.baseOffset);
        assert.equal(error.details['segment'], segmentName(log.bases[0]!));
        return true;
      });
      assert.deepEqual(snapshotOfDir(dir), before, 'nothing changed');
    } finally {
      remove();
    }
  });

  test('refuses an offset past a missing segment, naming the furthest cut, which makes the log open', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 130);
      assert.ok(log.bases.length >= 3, `${log.bases.length} segments`);
      // The second segment is gone (a file deleted by hand): the log refuses to open.
      rmSync(join(dir, segmentName(log.bases[1]!)));
      rmSync(join(dir, segmentName(log.bases[1]!).replace(/\.seg$/, '.idx')), { force: true });
      const later = log.framesOf(log.bases[2]!)[1]!.baseOffset;
      const before = snapshotOfDir(dir);
      await assert.rejects(planTruncation(storage, dir, later, 'snapshots'), (error) => {
        assert.ok(isWalError(error, 'WAL_OFFSET_OUT_OF_RANGE'), String(error));
        assert.equal(error.details['maxTruncateAt'], log.bases[1]);
        return true;
      });
      assert.deepEqual(snapshotOfDir(dir), before, 'nothing changed');
      await truncate(dir, log.bases[1]!);
      await assertReopensAt(dir, log.records, log.bases[1]!);
    } finally {
      remove();
    }
  });

  test('moves the snapshots above the offset into the side directory and keeps those at or below it', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 40);
      const offset = log.framesOf(log.bases[1]!)[1]!.baseOffset;
      const kept = await writeTestSnapshot(join(dir, 'snapshots'), offset);
      const moved = await writeTestSnapshot(join(dir, 'snapshots'), offset + 2);
      const report = await truncate(dir, offset);
      assert.deepEqual(report.snapshots, [moved]);
      assert.ok(existsSync(kept));
      assert.ok(!existsSync(moved));
      assert.ok(existsSync(join(dir, report.savedTo, 'snapshots', moved.slice(moved.lastIndexOf('/') + 1))));
      await assertReopensAt(dir, log.records, offset);
    } finally {
      remove();
    }
  });

  test('in a compacted log, refuses a cut that would set aside every snapshot reaching its first offset', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 40);
      const firstOffset = log.bases[1]!;
      // Compacted: the first segment is gone, a snapshot inside the second covers what it held.
      const { wal } = await Wal.open(testLogOptions(dir));
      assert.equal(await wal.deleteSegmentsBefore(firstOffset), 1);
      await wal.close();
      const frames = log.framesOf(firstOffset);
      const snapshotAt = frames[3]!.baseOffset;
      const only = await writeTestSnapshot(join(dir, 'snapshots'), snapshotAt);
      // A point snapshot below the cut holds one key: it never rebuilds the view, so it does not count.
      await writeTestSnapshot(join(dir, 'snapshots'), frames[0]!.baseOffset, 'point');
      const before = snapshotOfDir(dir);
      const inside = frames[1]!.baseOffset;
      await assert.rejects(truncate(dir, inside), (error: unknown) => isWalError(error, 'WAL_OFFSET_COMPACTED') && error.details['minTruncateAt'] === snapshotAt);
      assert.deepEqual(snapshotOfDir(dir), before, 'nothing changed');
      assert.ok(existsSync(only));
      // At the snapshot's offset the cut keeps it, and the log goes on there.
      const report = await truncate(dir, snapshotAt);
      assert.deepEqual(report.snapshots, []);
      assert.ok(existsSync(only));
    } finally {
      remove();
    }
  });

  test('forgets a producer whose last append is cut, so that its retry is written again rather than acknowledged at a cut offset', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const log = await writeTestLog(dir, 40, true);
      const wal = log.wal!;
      assert.deepEqual(log.bases, [0, 64]);
      // Without the sealed index, compaction saves the producer table as of the log's end in PRODUCERS.
      rmSync(join(dir, indexName(0)));
      assert.equal(await wal.deleteSegmentsBefore(64), 1);
      await wal.close();
      assert.ok(existsSync(join(dir, 'PRODUCERS')));
      // Batch 35 (offsets 70-71) is producer-1's last append, sequence 35.
      await truncate(dir, 70);
      const reopened = await Wal.open(testLogOptions(dir));
      try {
        const retry = await reopened.wal.append(testBatch(35), { producerId: 'producer-1', sequence: 35 });
        assert.equal(retry.duplicate ?? false, false);
        assert.equal(retry.firstOffset, 70);
      } finally {
        await reopened.wal.close();
      }
    } finally {
      remove();
    }
  });

  test('the epochs a repair cuts raise the floor, so that the next promotion goes above them rather than reusing one', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const { wal } = await Wal.open(testLogOptions(dir));
      await wal.append(testBatch(0));
      await wal.beginEpoch(1);
      await wal.append(testBatch(1));
      await wal.beginEpoch(2);
      const cut = wal.nextOffset;
      await wal.append(testBatch(2));
      await wal.close();
      const report = await truncate(dir, cut);
      assert.deepEqual(report.epochs, [{ epoch: 2, startOffset: cut }]);
      const reopened = await Wal.open(testLogOptions(dir));
      try {
        assert.equal(reopened.wal.epoch, 1, 'the log goes on in the epoch of its last kept frame');
        assert.equal(reopened.wal.epochFloor, 2, 'but remembers the epoch it cut');
        // A follower may hold epoch 2's cut records: the promotion must not hand out 2 again.
        const started = await new ReplicationState().promote(reopened.wal, undefined);
        assert.deepEqual(started, { epoch: 3, startOffset: cut });
        await assert.rejects(new ReplicationState().promote(reopened.wal, 3), (error: unknown) => isWalError(error, 'WAL_EPOCH_MISMATCH'));
      } finally {
        await reopened.wal.close();
      }
      const again = await Wal.open(testLogOptions(dir));
      assert.equal(again.wal.epochFloor, 2, 'the floor is durable');
      await again.wal.close();
    } finally {
      remove();
    }
  });

  test('cuts the epoch history too: an epoch starting after the offset goes, the log reopens in the epoch before it and verifies', async () => {
    const { dir, remove } = makeTempDir('wald-repair-');
    try {
      const opened = await Wal.open(testLogOptions(dir));
      const records: AppendRecord[] = [];
      for (let b = 0; b < 50; b++) {
        // Epoch 3 from batch 10 (offset 20), epoch 7 from batch 30 (offset 60).
        if (b === 10) await opened.wal.beginEpoch(3);
        if (b === 30) await opened.wal.beginEpoch(7);
        await opened.wal.append(testBatch(b));
        records.push(...testBatch(b));
      }
      assert.deepEqual(opened.wal.epochHistory(), [{ epoch: 3, startOffset: 20 }, { epoch: 7, startOffset: 60 }]);
      await opened.wal.close();
      // Below the second epoch's start: it has no frame left.
      const plan = await planTruncation(storage, dir, 40, 'snapshots');
      assert.deepEqual(plan.epochs, [{ epoch: 7, startOffset: 60 }]);
      const report = applyTruncation(storage, dir, plan, NOW_MS);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, report.savedTo, 'REPAIR.json'), 'utf8')).epochs, [{ epoch: 7, startOffset: 60 }]);
      const reopened = await Wal.open(testLogOptions(dir));
      try {
        assert.deepEqual(reopened.wal.epochHistory(), [{ epoch: 3, startOffset: 20 }]);
        assert.equal(reopened.wal.epoch, 3);
        assertRecordsEqual(await readAllRecords(reopened.wal), records.slice(0, 40));
        // What is appended now is epoch 3's: a frame at 40 carries it.
        assert.equal((await reopened.wal.append(testBatch(1000))).firstOffset, 40);
        const run = await reopened.wal.readFrames(40, 1 << 20);
        assert.equal(run.frames[0]?.epoch, 3);
      } finally {
        await reopened.wal.close();
      }
      assert.deepEqual((await verifyDataDir(storage, dir, { snapshotDir: 'snapshots' })).faults, []);
      // At the first epoch's start exactly, that epoch goes too; a second run has nothing left to cut.
      const atStart = await truncate(dir, 20);
      assert.deepEqual(atStart.epochs, [{ epoch: 3, startOffset: 20 }]);
      assert.deepEqual(readEpochHistoryFile(storage, dir)?.entries, []);
      assert.ok(isNothingToCut(await planTruncation(storage, dir, 20, 'snapshots')));
      assert.deepEqual((await verifyDataDir(storage, dir, { snapshotDir: 'snapshots' })).faults, []);
    } finally {
      remove();
    }
  });
});
