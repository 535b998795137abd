/**
 * Recovery's rule for damage in the active segment: after the point the log knew to be durable it
 * is a torn tail (cut, kept, reported), whatever its shape; before it, corruption. And the side files
 * that keep cut bytes never stop a log from opening.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodedRecordBytes, encodeFrame, stampFrame } from '../../src/codec/frame.js';
import { encodeSegmentHeader } from '../../src/codec/segment-header.js';
import { Wal } from '../../src/engine/wal.js';
import type { WalOptions } from '../../src/engine/wal-options.js';
import { isWalError } from '../../src/errors.js';
import { MemDisk, PAGE_BYTES } from '../support/mem-disk.js';
import { FakeClock } from '../support/fake-clock.js';

const DIR = '/data';
const SEGMENT = `${DIR}/00000000000000000000.seg`;

async function open(disk: MemDisk, extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate: false, ...extra });
  return wal;
}

async function values(wal: Wal): Promise<string[]> {
  const out: string[] = [];
  for await (const r of wal.range(wal.firstOffset)) out.push(r.value.toString());
  return out;
}

/** A record that fills most of a page, so that each batch lands on pages of its own. */
const pageRecord = (name: string): { value: Buffer } => ({ value: Buffer.from(name.padEnd(PAGE_BYTES - 100, '.')) });

describe('torn tail or corruption', () => {
  for (const syncPolicy of ['none', 'interval'] as const) {
    test(`${syncPolicy}: unsynced pages persisted out of order are a torn tail, not corruption`, async () => {
      const disk = new MemDisk();
      const wal = await open(disk, { syncPolicy, syncIntervalMs: 3_600_000 });
      await wal.append([pageRecord('synced')], { sync: true });
      for (const name of ['a', 'b', 'c', 'd']) await wal.append([pageRecord(name)]);
      // Writeback in any order. Frames: header 0..64, synced 64..4112 (durable), a 4112..8160,
      // b 8160..12208, c 12208..16256, d 16256..20304. The file keeps its length; page 1 (a, the
      // start of b) is lost, pages 2-4 (the rest of b, c, d) reach the disk: c and d are whole.
      const choices = [0, 0.9, 0, 0, 0];
      disk.crash({ randomPages: (path) => (path === SEGMENT ? (choices.shift() ?? 0.9) : 0.9) });
      await wal.close().catch(() => undefined);
      const bytes = disk.fileBytes(SEGMENT)!;
      assert.ok(bytes.includes(pageRecord('d').value) && bytes.includes(pageRecord('c').value) && !bytes.includes(pageRecord('a').value));
      const { wal: reopened, report } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate: false });
      assert.deepEqual(await values(reopened), [pageRecord('synced').value.toString()]);
      assert.deepEqual(report.faults.map((f) => f.kind), ['torn-tail']);
      assert.equal((await reopened.append([pageRecord('after')])).firstOffset, 1);
      await reopened.close();
    });
  }

  test('always: damage in a frame that a later frame says was durable is corruption, naming the place', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([{ value: Buffer.from('first') }]);
    await wal.append([{ value: Buffer.from('second') }]);
    await wal.append([{ value: Buffer.from('third') }]);
    await wal.flush();
    disk.kill();
    // Bit rot in the middle frame, which the third frame's sync lag says was on stable storage.
    const bytes = disk.fileBytes(SEGMENT)!;
    const second = bytes.indexOf('second');
    bytes[second] ^= 0x01;
    await assert.rejects(open(disk), (e) => {
      assert.ok(isWalError(e, 'WAL_CORRUPTION'));
      assert.equal(e.details['lastGoodOffset'], 0);
      assert.equal(e.details['nextGoodOffset'], 2);
      assert.equal(e.details['reason'], 'checksum mismatch');
      return true;
    });
  });

  test('none: damage before a later frame that claims nothing durable is a torn tail', async () => {
    const disk = new MemDisk();
    const wal = await open(disk, { syncPolicy: 'none' });
    await wal.append([{ value: Buffer.from('first') }]);
    await wal.append([{ value: Buffer.from('second') }]);
    await wal.append([{ value: Buffer.from('third') }]);
    disk.kill();
    const bytes = disk.fileBytes(SEGMENT)!;
    bytes[bytes.indexOf('second')] ^= 0x01;
    const reopened = await open(disk);
    assert.deepEqual(await values(reopened), ['first']);
    await reopened.close();
  });
});

describe('the recovery point', () => {
  test('always: bit rot in the last synced frame, with nothing written after it, is corruption once the recovery point covers it', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await open(disk, { clock: clock.now, recoveryPointIntervalMs: 1 });
    await wal.append([{ value: Buffer.from('first') }]);
    clock.advance(10);
    const recorded = disk.whenSynced(/RECOVERY$/);
    await wal.append([{ value: Buffer.from('last') }]);
    await recorded;
    disk.kill();
    const bytes = disk.fileBytes(SEGMENT)!;
    bytes[bytes.indexOf('last')] ^= 0x01;
    await assert.rejects(open(disk), (e) => {
      assert.ok(isWalError(e, 'WAL_CORRUPTION'));
      assert.equal(e.details['lastGoodOffset'], 0);
      assert.equal(e.details['reason'], 'checksum mismatch');
      return true;
    });
  });

  test('a log that ends cleanly before its recovery point lost durable records: corruption', async () => {
    const disk = new MemDisk();
    const clock = new FakeClock();
    const wal = await open(disk, { clock: clock.now, recoveryPointIntervalMs: 1 });
    const first = await wal.append([{ value: Buffer.from('first') }]);
    clock.advance(10);
    const recorded = disk.whenSynced(/RECOVERY$/);
    await wal.append([{ value: Buffer.from('second') }]);
    await recorded;
    disk.kill();
    // The second frame vanishes whole (a file system that lost a synced write).
    const file = disk.mount().open(SEGMENT, 'read-write');
    file.truncate(disk.fileBytes(SEGMENT)!.indexOf('second') - 52);
    file.close();
    await assert.rejects(open(disk), (e) => isWalError(e, 'WAL_CORRUPTION') && /below its recovery point 2/.test(e.message) && e.details['lastGoodOffset'] === first.lastOffset);
  });
});

describe('bytes that look like a frame', () => {
  for (const segmentKind of ['a segment of this engine', 'a version-1 segment this engine continues'] as const) {
    test(`always: a record holding a valid frame (of format version 1, or another log) does not make a power cut read as corruption, in ${segmentKind}`, async () => {
      // A frame with a plain CRC-32C (no seed), claiming offsets up to 1000 durable, as a record's value.
      const inner = encodeFrame([{ value: Buffer.from('inner') }], encodedRecordBytes({ value: Buffer.from('inner') }));
      stampFrame(inner, 1000, 1, 0, 1, 0);
      const disk = new MemDisk();
      if (segmentKind === 'a version-1 segment this engine continues') {
        // A log whose active segment a version-1 engine created: no seed.
        await (await open(disk)).close();
        const file = disk.mount().open(SEGMENT, 'read-write');
        file.writev([encodeSegmentHeader({ formatVersion: 1, baseOffset: 0, segmentId: '00112233445566778899aabbccddeeff', createdAtMs: 1, frameSeed: 0 })], 0);
        file.sync();
        file.close();
        disk.mount().unlink(`${DIR}/00000000000000000000.idx`);
        disk.mount().unlink(`${DIR}/CLEAN`);
      }
      const wal = await open(disk);
      await wal.append([{ value: Buffer.from('acknowledged') }]);
      // The power cut comes in the group commit of the record holding the frame: the page with the
      // outer frame's header is lost, the next one (holding the inner frame) reached the disk.
      // 52 bytes of frame and record header before the value: 4092 more put the inner frame on an
      // 8-byte boundary, where the scan ahead looks.
      const value = Buffer.concat([Buffer.alloc(PAGE_BYTES - 4, 7), inner, Buffer.alloc(PAGE_BYTES, 7)]);
      const choices = [0, 0.9, 0, 0, 0];
      disk.crashWhen('datasync', /\.seg$/, { randomPages: (path) => (path === SEGMENT ? (choices.shift() ?? 0) : 0.9) });
      await wal.append([{ value }]).catch(() => undefined);
      await wal.close().catch(() => undefined);
      assert.ok(disk.fileBytes(SEGMENT)!.includes(inner), 'the inner frame is on disk after the cut');
      const { wal: reopened, report } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate: false });
      assert.deepEqual(await values(reopened), ['acknowledged']);
      assert.deepEqual(report.faults.map((f) => f.kind), ['torn-tail']);
      await reopened.close();
    });
  }
});

describe('torn-tail side files', () => {
  test('a second torn tail at the same position keeps both side files and opens', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([{ value: Buffer.from('kept') }]);
    await wal.close();
    const end = disk.fileBytes(SEGMENT)!.length;
    for (const garbage of [[9, 9, 9, 9, 9, 9, 9, 9, 9, 9], [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]]) {
      disk.kill();
      disk.mount().unlink(`${DIR}/CLEAN`); // as a crash leaves it: the active segment is scanned
      const file = disk.mount().open(SEGMENT, 'read-write');
      file.writev([Buffer.from(garbage)], end);
      file.close();
      const { wal: reopened, report } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate: false });
      assert.deepEqual(await values(reopened), ['kept']);
      assert.equal(report.faults[0]?.kind, 'torn-tail');
      await reopened.close();
    }
    const sides = disk.mount().list(DIR).filter((name) => name.endsWith('.torn')).sort();
    assert.deepEqual(sides, [`00000000000000000000.seg.${end}.1.torn`, `00000000000000000000.seg.${end}.torn`]);
    assert.deepEqual([...disk.fileBytes(`${DIR}/${sides[1]}`)!], [9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
    assert.deepEqual([...disk.fileBytes(`${DIR}/${sides[0]}`)!], [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
  });

  test('a crash between saving the torn bytes and cutting them leaves a log that opens', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([{ value: Buffer.from('kept') }]);
    await wal.close();
    const end = disk.fileBytes(SEGMENT)!.length;
    const file = disk.mount().open(SEGMENT, 'read-write');
    file.writev([Buffer.from([5, 5, 5, 5, 5, 5, 5, 5, 5])], end);
    file.sync();
    disk.kill();
    disk.mount().unlink(`${DIR}/CLEAN`);
    disk.killWhen('truncate', /\.seg$/);
    await assert.rejects(open(disk), (e) => e instanceof Error); // the process died in recovery
    const { wal: reopened, report } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate: false });
    assert.deepEqual(await values(reopened), ['kept']);
    assert.equal(report.faults.find((f) => f.kind === 'torn-tail')?.kind, 'torn-tail');
    assert.deepEqual(disk.mount().list(DIR).filter((name) => name.endsWith('.torn')), [`00000000000000000000.seg.${end}.torn`], 'the same bytes reuse the side file');
    await reopened.close();
  });
});
