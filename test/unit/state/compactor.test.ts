/**
 * Compactor over a real log on a MemDisk: a compaction snapshots at the head (or reuses a snapshot
 * still there), appends a checkpoint naming it, deletes only covered sealed segments that
 * retention does not keep (the byte cap winning over age), prunes old snapshots, and a reopen
 * gives the same view; a dry run changes nothing and counts redundancy; DeleteSegmentsBefore
 * refuses what no snapshot covers unless forced.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeCheckpointValue } from '../../../src/codec/checkpoint-value.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { Compactor, type CompactionOptionValues } from '../../../src/state/compactor.js';
import { planSegmentDeletion } from '../../../src/state/segment-retention.js';
import { prunableSnapshots } from '../../../src/state/snapshot-pruning.js';
import { listSnapshots } from '../../../src/state/snapshot-reader.js';
import type { SnapshotInfo } from '../../../src/state/snapshot-info.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import type { Storage } from '../../../src/storage/storage.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';

const DIR = '/data';
const SNAPSHOTS = '/data/snapshots';
const HOUR_MS = 60 * 60 * 1000;

/** No retention, no cap: everything covered goes. */
const NO_RETENTION: CompactionOptionValues = { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0 };

interface Opened {
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  readonly compactor: Compactor;
  close(): Promise<void>;
}

async function open(storage: Storage, clock: FakeClock, options: CompactionOptionValues = NO_RETENTION): Promise<Opened> {
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096, clock: clock.now });
  const { keeper } = await StateKeeper.open({ wal, storage });
  const compactor = new Compactor({ wal, state: keeper, storage, options, clock: clock.now });
  return {
    wal,
    keeper,
    compactor,
    async close() {
      await keeper.close();
      await wal.close();
    },
  };
}

/** `count` puts over `keys` keys, one append each, values of 100 bytes (so segments of 4 KiB fill fast). */
async function putMany(wal: Wal, count: number, keys: number, tag = 'v'): Promise<void> {
  for (let i = 0; i < count; i++) {
    await wal.append([{ key: Buffer.from(`key-${i % keys}`), value: Buffer.alloc(100, `${tag}${i}`) }]);
  }
}

async function view(keeper: StateKeeper): Promise<string[]> {
  const page = await keeper.listKeys({ limit: 1000, maxBytes: 1 << 20 });
  const rows: string[] = [];
  for (const info of page.keys) {
    const entry = (await keeper.get(info.key))!;
    rows.push(`${info.key.toString()}=${entry.value.toString().slice(0, 8)}@${entry.offset}`);
  }
  return rows;
}

describe('Compactor', { timeout: 60_000 }, () => {
  test('snapshots at the head, appends a checkpoint naming it, deletes the covered sealed segments, and reopens to the same view', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const first = await open(disk.mount(), clock);
    await putMany(first.wal, 200, 20);
    const before = await view(first.keeper);
    const segmentsBefore = first.wal.listSegments();
    assert.ok(segmentsBefore.length > 3, `${segmentsBefore.length} segments`);
    const head = first.wal.highWatermark + 1;
    const result = await first.compactor.compact();
    assert.equal(result.isDryRun, false);
    assert.equal(result.snapshotsCreated, 1);
    assert.equal(result.snapshotOffset, head);
    assert.equal(result.checkpointOffset, head);
    // The checkpoint may seal the active segment too: then it goes as well.
    assert.ok(result.segmentsDeleted >= segmentsBefore.length - 1, 'every sealed segment is below the snapshot');
    assert.ok(result.bytesReclaimed >= segmentsBefore.slice(0, -1).reduce((sum, s) => sum + s.sizeBytes, 0));
    const after = first.wal.listSegments();
    assert.equal(result.walSegments, after.length);
    for (const segment of after) assert.ok(segment.isActive || segment.nextOffset > head, 'no covered sealed segment is left');
    assert.equal(result.firstOffset, after[0]!.baseOffset);
    assert.equal(result.firstOffset, first.wal.firstOffset);
    assert.equal(result.totalSnapshots, 1);
    const [checkpoint] = await first.wal.read(head, { limit: 1 });
    assert.equal(checkpoint?.type, 'checkpoint');
    assert.deepEqual(decodeCheckpointValue(checkpoint!.value), { snapshotId: result.snapshotId, walOffset: head });
    await assert.rejects(first.wal.read(0), (error: unknown) => isWalError(error, 'WAL_OFFSET_COMPACTED'));
    await first.close();
    const second = await open(disk.mount(), clock);
    try {
      assert.deepEqual(await view(second.keeper), before);
      assert.equal(second.wal.firstOffset, result.firstOffset);
      assert.equal(second.wal.nextOffset, head + 1);
    } finally {
      await second.close();
    }
  });

  test('reuses the newest snapshot while only checkpoints follow it, unless forced', async () => {
    const clock = new FakeClock();
    const opened = await open(new MemDisk().mount(), clock);
    try {
      await putMany(opened.wal, 100, 10);
      const first = await opened.compactor.compact();
      const again = await opened.compactor.compact();
      assert.equal(again.snapshotsCreated, 0);
      assert.equal(again.snapshotId, first.snapshotId);
      assert.equal(again.checkpointOffset, undefined, 'the checkpoint after it names it already');
      assert.equal(opened.wal.nextOffset, first.checkpointOffset! + 1, 'no second checkpoint');
      const forced = await opened.compactor.compact({ forceSnapshot: true });
      assert.equal(forced.snapshotsCreated, 1);
      assert.notEqual(forced.snapshotId, first.snapshotId);
      await putMany(opened.wal, 1, 10);
      const afterWrite = await opened.compactor.compact();
      assert.equal(afterWrite.snapshotsCreated, 1, 'a put after the snapshot needs a new one');
    } finally {
      await opened.close();
    }
  });

  test('key compaction rewrites no segment at or after the lowest standing lease: a follower tailing from there gets the records as stored', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const clock = new FakeClock();
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096, clock: clock.now });
    const { keeper } = await StateKeeper.open({ wal, storage });
    let leases = [{ holder: 'follower-1', fromOffset: 0 }];
    // Retention keeps every segment (all young), so that only key compaction could touch them.
    const options = { ...STATE_OPTIONS.defaults.compaction, retentionMs: HOUR_MS };
    const rules = { leaseMaxBytes: 1 << 30, leaseMaxAgeMs: HOUR_MS };
    const compactor = new Compactor({ wal, state: keeper, storage, options, clock: clock.now, leases: { current: () => leases, rules } });
    try {
      await putMany(wal, 300, 10);
      const segments = wal.listSegments();
      assert.ok(segments.length > 5, `${segments.length} segments`);
      const leaseOffset = segments[2]!.baseOffset + 1;
      leases = [{ holder: 'follower-1', fromOffset: leaseOffset }];
      const asStored = (await wal.read(leaseOffset, { limit: 1000 })).map((record) => record.offset);
      await keeper.caughtUp();
      const result = await compactor.compact({ aggressive: true, thresholdPercent: 0 });
      assert.ok(result.keyCompaction !== undefined && result.keyCompaction.segmentsRewritten > 0, 'the segments wholly below the lease are rewritten');
      assert.equal(result.keyCompaction.segmentsRewritten, 2, 'only the two segments below the lease');
      const after = (await wal.read(leaseOffset, { limit: 1000 })).map((record) => record.offset);
      assert.deepEqual(after.slice(0, asStored.length), asStored, 'every record from the lease on is still there');
    } finally {
      await compactor.idle();
      await keeper.close();
      await wal.close();
    }
  });

  test('a key compaction threshold outside 0..100 is refused before anything is snapshotted or deleted', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await open(disk.mount(), clock);
    try {
      await putMany(opened.wal, 100, 10);
      const segments = opened.wal.listSegments().length;
      await assert.rejects(opened.compactor.compact({ aggressive: true, thresholdPercent: 150 }), RangeError);
      assert.equal(opened.wal.listSegments().length, segments, 'no segment deleted');
      assert.equal(opened.keeper.snapshotSummary().count, 0, 'no snapshot written');
    } finally {
      await opened.close();
    }
  });

  test('a dry run reports what a compaction would reclaim and the redundancy, and changes nothing', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const opened = await open(disk.mount(), clock);
    try {
      // 100 puts over 10 keys, then 5 deletes: live are the last put of the 5 keys not deleted.
      await putMany(opened.wal, 100, 10);
      for (let k = 0; k < 5; k++) await opened.wal.append([{ key: Buffer.from(`key-${k}`), value: Buffer.alloc(0), type: 'delete' }]);
      await opened.wal.append([{ value: Buffer.from('keyless') }]);
      const segments = opened.wal.listSegments();
      const nextOffset = opened.wal.nextOffset;
      const dry = await opened.compactor.compact({ dryRun: true });
      assert.equal(dry.isDryRun, true);
      assert.equal(dry.snapshotsCreated, 1);
      assert.equal(dry.segmentsDeleted, segments.length - 1);
      assert.equal(dry.bytesReclaimed, segments.slice(0, -1).reduce((sum, s) => sum + s.sizeBytes, 0));
      assert.equal(dry.walSegments, 1);
      // 106 records: 5 live puts and one keyless record are not redundant.
      assert.equal(dry.redundancyRatio, 100 / 106);
      assert.deepEqual(opened.wal.listSegments(), segments);
      assert.equal(opened.wal.nextOffset, nextOffset, 'no checkpoint');
      assert.equal(listSnapshots(disk.mount(), SNAPSHOTS).snapshots.length, 0, 'no snapshot');
      assert.equal(opened.compactor.reclaimableBytes(), dry.bytesReclaimed);
    } finally {
      await opened.close();
    }
  });

  test('retention keeps the segments younger than retention_ms, and the byte cap deletes the oldest of them anyway', async () => {
    const clock = new FakeClock();
    const retained = { ...NO_RETENTION, retentionMs: HOUR_MS };
    const disk = new MemDisk();
    const opened = await open(disk.mount(), clock, retained);
    try {
      await putMany(opened.wal, 100, 10, 'old');
      const oldSegments = opened.wal.listSegments().length - 1;
      clock.advance(2 * HOUR_MS);
      await putMany(opened.wal, 100, 10, 'new');
      const segments = opened.wal.listSegments();
      const young = segments.filter((s) => !s.isActive && s.lastTimestamp >= clock.nowMs - HOUR_MS).length;
      assert.ok(young > 1, `${young} young sealed segments`);
      const kept = await opened.compactor.compact();
      assert.ok(kept.segmentsDeleted >= oldSegments && kept.segmentsDeleted < segments.length - 1, `${kept.segmentsDeleted} deleted`);
      for (const segment of opened.wal.listSegments()) {
        if (!segment.isActive) assert.ok(segment.lastTimestamp >= clock.nowMs - HOUR_MS, 'every sealed segment left is young');
      }
      const capBytes = opened.wal.stats().bytesOnDisk - 1;
      const capped = new Compactor({ wal: opened.wal, state: opened.keeper, storage: disk.mount(), options: { ...retained, maxLogBytes: capBytes }, clock: clock.now });
      const result = await capped.compact();
      assert.ok(result.segmentsDeleted >= 1, 'the cap deletes young segments');
      assert.ok(opened.wal.stats().bytesOnDisk <= capBytes);
    } finally {
      await opened.close();
    }
  });

  test('DeleteSegmentsBefore refuses what no snapshot covers, names the newest snapshot, and deletes with force', async () => {
    const clock = new FakeClock();
    const opened = await open(new MemDisk().mount(), clock);
    try {
      await putMany(opened.wal, 50, 10);
      const snapshot = await opened.keeper.createSnapshot();
      await putMany(opened.wal, 100, 10);
      const segments = opened.wal.listSegments();
      const end = segments.at(-2)!.nextOffset;
      assert.ok(end > snapshot.walOffset);
      await assert.rejects(opened.compactor.deleteSegmentsBefore(end), (error: unknown) => {
        assert.ok(isWalError(error, 'WAL_NOT_COVERED'));
        assert.equal(error.details['snapshotId'], snapshot.id);
        assert.equal(error.details['snapshotOffset'], snapshot.walOffset);
        return true;
      });
      assert.equal(opened.wal.listSegments().length, segments.length, 'nothing deleted');
      const covered = await opened.compactor.deleteSegmentsBefore(snapshot.walOffset);
      assert.ok(covered.firstOffset <= snapshot.walOffset);
      assert.equal(covered.segmentsDeleted, segments.filter((s) => s.nextOffset <= snapshot.walOffset).length);
      const forced = await opened.compactor.deleteSegmentsBefore(end, { force: true });
      assert.equal(forced.firstOffset, end);
      const backwards = await opened.compactor.deleteSegmentsBefore(0);
      assert.deepEqual(backwards, { segmentsDeleted: 0, bytesReclaimed: 0, firstOffset: end }, 'the trim point only moves forward');
    } finally {
      await opened.close();
    }
  });

  test('keeps keep_snapshots snapshots and every one at or above the first offset, deleting older ones', async () => {
    const clock = new FakeClock();
    const disk = new MemDisk();
    const opened = await open(disk.mount(), clock, { ...NO_RETENTION, keepSnapshots: 2 });
    try {
      const ids: string[] = [];
      for (let round = 0; round < 4; round++) {
        await putMany(opened.wal, 80, 10, `r${round}`);
        ids.push((await opened.compactor.compact()).snapshotId!);
      }
      const left = listSnapshots(disk.mount(), SNAPSHOTS).snapshots.map((s) => s.id);
      assert.deepEqual(left, ids.slice(-2));
    } finally {
      await opened.close();
    }
  });
});

describe('planSegmentDeletion', () => {
  const seg = (baseOffset: number, nextOffset: number, lastTimestamp: number, isActive = false) => ({ baseOffset, nextOffset, sizeBytes: 100, dataBytes: 100, lastTimestamp, isActive });
  const segments = [seg(0, 10, 1000), seg(10, 20, 2000), seg(20, 30, 3000), seg(30, 35, 4000, true)];

  test('deletes the covered prefix, never the active segment', () => {
    assert.deepEqual(planSegmentDeletion(segments, 100, 10_000, { retentionMs: 0, maxLogBytes: 0 }), { trimOffset: 30, segmentCount: 3, bytes: 300, segmentsLeft: 1 });
    assert.equal(planSegmentDeletion(segments, 19, 10_000, { retentionMs: 0, maxLogBytes: 0 }).segmentCount, 1, 'a segment reaching past the cover stays');
  });

  test('keeps segments whose newest record is younger than retention, unless over the cap', () => {
    assert.equal(planSegmentDeletion(segments, 100, 4000, { retentionMs: 2500, maxLogBytes: 0 }).segmentCount, 1);
    assert.equal(planSegmentDeletion(segments, 100, 4000, { retentionMs: 2500, maxLogBytes: 250 }).segmentCount, 2, 'over the cap, the oldest go');
    assert.equal(planSegmentDeletion(segments, 15, 4000, { retentionMs: 2500, maxLogBytes: 1 }).segmentCount, 1, 'the cap never passes the cover');
  });
});

describe('prunableSnapshots', () => {
  const info = (walOffset: number, type: SnapshotInfo['type'], baseId?: string): SnapshotInfo => ({
    id: `${String(walOffset).padStart(20, '0')}-000000000000000-00000000`,
    type,
    walOffset,
    entryCount: 0,
    tombstoneCount: 0,
    createdMs: 0,
    isCompressed: false,
    baseId,
    sizeBytes: 0,
    path: '',
  });

  test('prunes below the first offset beyond the newest kept, never a point snapshot or the base of a kept incremental', () => {
    const full = info(10, 'full');
    const point = info(15, 'point');
    const full2 = info(20, 'full');
    const incremental = info(30, 'incremental', full2.id);
    const full3 = info(40, 'full');
    assert.deepEqual(prunableSnapshots([full, point, full2, incremental, full3], 50, 2), [full]);
    assert.deepEqual(prunableSnapshots([full, point, full2, incremental, full3], 50, 1), [full, full2, incremental]);
    assert.deepEqual(prunableSnapshots([full, full2, full3], 15, 1), [full], 'those at or above the first offset stay');
  });
});
