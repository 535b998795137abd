/**
 * The engine half of key compaction (`Wal.rewriteSegments`): sealed segments rewritten with only
 * the records a plan keeps, offsets unchanged; the threshold, the active segment never touched,
 * reopening (from the index or a scan), a deletion or a close while a rewrite runs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../../src/engine/wal.js';
import type { WalRecord } from '../../../src/engine/types.js';
import { isWalError } from '../../../src/errors.js';
import { activeBase, DIR, filledLog, options, readAll, valueOf } from '../../support/compacted-log.js';
import { FakeClock } from '../../support/fake-clock.js';
import { GatedStorage } from '../../support/gated-storage.js';
import { MemDisk } from '../../support/mem-disk.js';

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
    const gate = new GatedStorage(disk.mount());
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

  test('a failed directory sync after the swap: the rewrite is done (the segment is in place), reported as a warning', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const warnings: string[] = [];
    const wal = await filledLog(disk, clock, 60, { onWarning: (message) => warnings.push(message) });
    const first = wal.listSegments()[0]!;
    const before = await readAll(wal);
    // The new index's own directory sync passes; the one after the segment's rename fails.
    disk.inject({ op: 'syncDir', code: 'EIO', path: /^\/data$/, after: 1 });
    const result = await wal.rewriteSegments({ keep: (record) => record.offset % 2 === 0, thresholdPercent: 0, belowOffset: first.nextOffset });
    assert.equal(result.segmentsRewritten, 1, 'reported as rewritten');
    assert.ok(warnings.some((message) => message.includes('the rewritten segment is in place')), warnings.join('; '));
    const after = await readAll(wal);
    assert.deepEqual(
      after.map((r) => r.offset),
      before.filter((r) => r.offset >= first.nextOffset || r.offset % 2 === 0).map((r) => r.offset),
      'the log reads the rewritten segment',
    );
    await wal.close();
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
