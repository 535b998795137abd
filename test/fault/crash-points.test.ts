import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Wal } from '../../src/engine/wal.js';
import type { WalRecord } from '../../src/engine/types.js';
import { MemDisk } from '../support/mem-disk.js';
import { FakeClock } from '../support/temp-dir.js';

const DIR = '/data';

/** The value of record `r` of batch `b`: recognisable, so any record read back names its batch. */
function value(b: number, r: number): Buffer {
  return Buffer.from(`batch ${b} record ${r} `.padEnd(40 + ((b * 7 + r) % 50), '.'));
}

interface Acked {
  readonly batch: number;
  readonly firstOffset: number;
  readonly count: number;
}

/**
 * A workload that touches every step the engine takes on disk: appends (single and concurrent),
 * several rotations, a forced sync, a compaction and a close. Returns what was acknowledged before
 * any failure.
 */
async function workload(disk: MemDisk, preallocate: boolean, clock: FakeClock): Promise<Acked[]> {
  const acked: Acked[] = [];
  let wal: Wal | undefined;
  try {
    ({ wal } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 4096, preallocate, indexIntervalBytes: 256, clock: clock.now }));
    const log = wal;
    let b = 0;
    const appendBatch = async (): Promise<void> => {
      const batch = b++;
      const count = 1 + (batch % 4);
      clock.advance(1);
      const records = Array.from({ length: count }, (_, r) => ({ value: value(batch, r) }));
      const result = await log.append(records);
      acked.push({ batch, firstOffset: result.firstOffset, count });
    };
    for (let i = 0; i < 30; i++) await appendBatch();
    await Promise.all([appendBatch(), appendBatch(), appendBatch()]);
    await log.sync();
    await log.deleteSegmentsBefore(40);
    for (let i = 0; i < 10; i++) await appendBatch();
    await log.close();
    // A second process life: starts from a cleanly closed log (its active segment has an index),
    // appends across more rotations, and stops cleanly again.
    ({ wal } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 4096, preallocate, indexIntervalBytes: 256, clock: clock.now }));
    const second = wal;
    for (let i = 0; i < 30; i++) {
      const batch = b++;
      clock.advance(1);
      const result = await second.append([{ value: value(batch, 0) }, { value: value(batch, 1) }]);
      acked.push({ batch, firstOffset: result.firstOffset, count: 2 });
    }
    await second.close();
  } catch {
    // The crash: whatever was acknowledged before it must survive.
  }
  return acked;
}

async function readAll(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(record);
  return out;
}

/** Checks the recovered log against what was acknowledged before the crash. */
async function verify(disk: MemDisk, acked: readonly Acked[], label: string): Promise<void> {
  const { wal } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 4096, indexIntervalBytes: 256 });
  try {
    const records = await readAll(wal);
    const byOffset = new Map(records.map((r) => [r.offset, r]));
    for (let i = 0; i < records.length; i++) assert.equal(records[i]!.offset, wal.firstOffset + i, `${label}: offsets dense`);
    let lastAcked = -1;
    for (const a of acked) {
      for (let r = 0; r < a.count; r++) {
        const offset = a.firstOffset + r;
        lastAcked = Math.max(lastAcked, offset);
        if (offset < wal.firstOffset) continue; // compacted away on purpose
        const got = byOffset.get(offset);
        assert.ok(got, `${label}: acknowledged offset ${offset} lost`);
        assert.deepEqual(got.value, value(a.batch, r), `${label}: offset ${offset} changed`);
      }
    }
    assert.ok(wal.firstOffset <= 40, `${label}: compaction never goes past what was asked`);
    // Nothing unacknowledged in the middle: below the last acknowledged offset, every record is one
    // that was acknowledged (checked above, since offsets are dense and acks cover whole batches).
    const ackedOffsets = new Set(acked.flatMap((a) => Array.from({ length: a.count }, (_, r) => a.firstOffset + r)));
    for (const record of records) {
      if (record.offset <= lastAcked) assert.ok(ackedOffsets.has(record.offset), `${label}: unacknowledged offset ${record.offset} in the middle`);
      else assert.match(record.value.toString(), /^batch \d+ record \d+ /, `${label}: garbage after the end`);
    }
    const next = await wal.append([{ value: Buffer.from('after recovery') }]);
    assert.equal(next.firstOffset, wal.firstOffset + records.length, `${label}: appending goes on after the recovered end`);
    const back = await wal.read(next.firstOffset, { limit: 1 });
    assert.equal(back[0]?.value.toString(), 'after recovery');
  } finally {
    await wal.close();
  }
}

for (const preallocate of [false, true]) {
  describe(`crash points (preallocate: ${preallocate})`, () => {
    test('every acknowledged append survives a crash at any disk operation', async () => {
      const reference = new MemDisk();
      const full = await workload(reference, preallocate, new FakeClock());
      assert.equal(full.length, 73, 'the workload runs to the end without a crash');
      const totalOps = reference.ops;
      console.log(`crash points: ${totalOps} disk operations (preallocate ${preallocate})`);
      assert.ok(totalOps > 100, `the workload exercises the disk (${totalOps} operations)`);
      for (let op = 1; op <= totalOps; op++) {
        const disk = new MemDisk();
        disk.crashAt(op);
        const acked = await workload(disk, preallocate, new FakeClock());
        disk.crash();
        await verify(disk, acked, `crash at operation ${op}/${totalOps}`);
      }
    });

    test('a crash in the middle of writing a batch keeps all of it or none of it', async () => {
      // Crash at the fdatasync that would make a 20-record batch durable, keeping every possible
      // prefix of the unsynced bytes: the batch's frame is cut anywhere.
      const clock = new FakeClock();
      const big = Array.from({ length: 20 }, (_, r) => ({ value: value(1, r) }));
      const outcomes = new Set<number>();
      for (let cut = 0; cut <= 20 * 120; cut += 11) {
        const disk = new MemDisk();
        const first = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate, clock: clock.now });
        await first.wal.append([{ value: value(0, 0) }]);
        const dataEnd = first.wal.stats().io.bytesWritten; // the header and the first frame
        disk.crashWhen('datasync', /0\.seg$/, () => dataEnd + cut);
        await first.wal.append(big).catch(() => undefined);
        const { wal: reopened } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: 1 << 20 });
        const records = await readAll(reopened);
        assert.ok(records.length === 1 || records.length === 21, `cut ${cut}: ${records.length} records (all or nothing)`);
        outcomes.add(records.length);
        if (records.length === 21) for (let r = 0; r < 20; r++) assert.deepEqual(records[r + 1]!.value, value(1, r));
        await reopened.close();
      }
      assert.deepEqual([...outcomes].sort(), [1, 21], 'some cuts lose the whole batch, the last ones keep all of it');
    });
  });
}
