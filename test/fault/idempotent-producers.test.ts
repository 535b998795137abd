/**
 * The idempotent-producer table across the failures that used to corrupt it: an append sharing a
 * flush with a rotation, a failed append, a failed sync, and compaction of every sealed segment.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeIndexFile } from '../../src/codec/index-file.js';
import { truncateLogFrom } from '../../src/engine/truncate-log-from.js';
import { Wal } from '../../src/engine/wal.js';
import type { WalOptions } from '../../src/engine/wal-options.js';
import { isWalError } from '../../src/errors.js';
import { MemDisk } from '../support/mem-disk.js';

const DIR = '/data';
const SEGMENT_SIZE_BYTES = 4096;
const record = (s: string): { value: Buffer } => ({ value: Buffer.from(s.padEnd(200, '.')) });

async function open(disk: MemDisk, extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open({ dir: DIR, storage: disk.mount(), segmentSizeBytes: SEGMENT_SIZE_BYTES, preallocate: false, ...extra });
  return wal;
}

describe('idempotent producers', () => {
  test('an append that shares a flush with a rotation is still recognised after a crash', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    // Fill the first segment nearly to the end, so that one flush writes the producer's batch into
    // it and rotates for the batch after: the index written at that rotation must name the producer.
    while (wal.stats().segmentCount === 1 && wal.stats().bytesOnDisk < SEGMENT_SIZE_BYTES - 700) await wal.append([record('filler')]);
    const [first] = await Promise.all([
      wal.append([record('idempotent')], { producerId: 'p', sequence: 7 }),
      wal.append([record('x'.repeat(1000))]),
      wal.append([record('y'.repeat(1000))]),
    ]);
    assert.equal(wal.stats().segmentCount, 2, 'the flush rotated');
    disk.crash();
    const reopened = await open(disk);
    const retry = await reopened.append([record('idempotent')], { producerId: 'p', sequence: 7 });
    assert.equal(retry.duplicate, true, 'the retry is recognised, not written again');
    assert.equal(retry.firstOffset, first.firstOffset);
    assert.equal(reopened.nextOffset, first.firstOffset + 3, 'nothing was written twice');
    await reopened.close();
  });

  test('a failed append leaves the producer as its last acknowledged append left it', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    const one = await wal.append([record('one')], { producerId: 'p', sequence: 1 });
    disk.inject({ op: 'writev', code: 'EIO' });
    await assert.rejects(wal.append([record('two')], { producerId: 'p', sequence: 2 }), (e) => isWalError(e, 'WAL_IO_ERROR'));
    await assert.rejects(async () => wal.append([record('zero')], { producerId: 'p', sequence: 0 }), (e) => isWalError(e, 'WAL_SEQUENCE_STALE'));
    const late = await wal.append([record('one')], { producerId: 'p', sequence: 1 });
    assert.deepEqual(late, { ...one, duplicate: true }, 'a late retry of 1 is not written twice');
    const two = await wal.append([record('two')], { producerId: 'p', sequence: 2 });
    assert.equal(two.duplicate, false, 'the retry of the failed sequence is written');
    assert.equal(two.firstOffset, one.lastOffset + 1);
    await wal.close();
  });

  test('a failed sync puts the producer back; after a restart the rejected sequence is written, the acknowledged one is not', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    const one = await wal.append([record('one')], { producerId: 'p', sequence: 1 });
    disk.inject({ op: 'datasync', code: 'EIO', path: /\.seg$/ });
    await assert.rejects(wal.append([record('two')], { producerId: 'p', sequence: 2 }), (e) => isWalError(e, 'WAL_IO_ERROR'));
    const again = await wal.append([record('one')], { producerId: 'p', sequence: 1 });
    assert.deepEqual(again, { ...one, duplicate: true }, 'still known while read-only');
    await wal.close();
    disk.crash();
    const reopened = await open(disk);
    assert.deepEqual(await reopened.append([record('one')], { producerId: 'p', sequence: 1 }), { ...one, duplicate: true });
    const two = await reopened.append([record('two')], { producerId: 'p', sequence: 2 });
    assert.equal(two.duplicate, false);
    assert.equal(two.firstOffset, one.lastOffset + 1);
    await reopened.close();
  });

  test('a producer evicted from a full table by a frame that is cut off again comes back', async () => {
    const disk = new MemDisk();
    const wal = await open(disk, { maxProducers: 1 });
    const p = await wal.append([record('p')], { producerId: 'p', sequence: 1 });
    disk.inject({ op: 'datasync', code: 'EIO', path: /\.seg$/ });
    await assert.rejects(wal.append([record('q')], { producerId: 'q', sequence: 1 }), (e) => isWalError(e, 'WAL_IO_ERROR'));
    assert.deepEqual(await wal.append([record('p')], { producerId: 'p', sequence: 1 }), { ...p, duplicate: true }, 'p is still known');
    await wal.close();
  });

  test('compacting away every sealed segment, on a full disk, keeps the producer table across a crash', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    const one = await wal.append([record('one')], { producerId: 'p', sequence: 1 });
    while (wal.stats().segmentCount < 2) await wal.append([record('filler')]);
    // On a full disk: the table must be saved without needing new space (the one sealed segment
    // is the last, so no earlier deletion frees any first).
    disk.capacityBytes = disk.usedBytes();
    assert.equal(await wal.deleteSegmentsBefore(wal.nextOffset), 1);
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    assert.equal(wal.stats().segmentCount, 1);
    disk.crash();
    const reopened = await open(disk);
    const retry = await reopened.append([record('one')], { producerId: 'p', sequence: 1 });
    assert.deepEqual(retry, { ...one, duplicate: true }, 'the retry is recognised though its segment is gone');
    await assert.rejects(async () => reopened.append([record('zero')], { producerId: 'p', sequence: 0 }), (e) => isWalError(e, 'WAL_SEQUENCE_STALE'));
    await reopened.close();
  });

  test('a sealed index rebuilt at open holds the producers as of its segment, so a cut above it forgets the later sequences', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([record('first')], { producerId: 'p', sequence: 1 });
    // The index of the first segment is not written at its rotation (rebuilt at the next open).
    disk.inject({ op: 'create', code: 'EIO', path: /\.idx/ });
    while (wal.stats().segmentCount === 1) await wal.append([record('filler')]);
    await wal.append([record('second segment')]);
    const second = await wal.append([record('second')], { producerId: 'p', sequence: 2 });
    await wal.close();
    // The open rebuilds the first segment's index: as of that segment's end, p is at sequence 1.
    await (await open(disk)).close();
    // A follower's divergence cut at the second sequence: its record is no longer in the log.
    truncateLogFrom(disk.mount(), DIR, second.firstOffset);
    const reopened = await open(disk);
    try {
      assert.equal(reopened.nextOffset, second.firstOffset);
      const retry = await reopened.append([record('second')], { producerId: 'p', sequence: 2 });
      assert.deepEqual({ firstOffset: retry.firstOffset, duplicate: retry.duplicate }, { firstOffset: second.firstOffset, duplicate: false }, 'written, not answered as a duplicate of a record the log lost');
      assert.equal((await reopened.read(second.firstOffset, { limit: 1 }))[0]?.value.toString().trimEnd().replace(/\.+$/, ''), 'second');
    } finally {
      await reopened.close();
    }
  });
  test('a sealed index rebuilt at open holds at most max_producers producers, the most recently written', async () => {
    const disk = new MemDisk();
    const wal = await open(disk, { maxProducers: 2 });
    for (const producerId of ['a', 'b', 'c']) await wal.append([record(producerId)], { producerId, sequence: 1 });
    disk.inject({ op: 'create', code: 'EIO', path: /\.idx/ });
    while (wal.stats().segmentCount === 1) await wal.append([record('filler')]);
    await wal.close();
    // The open rebuilds the first segment's index from a scan that saw three producers.
    await (await open(disk, { maxProducers: 2 })).close();
    const mount = disk.mount();
    const index = mount.list(DIR).find((name) => name.endsWith('.idx'));
    assert.ok(index !== undefined, 'the rebuilt index was written');
    const decoded = decodeIndexFile(mount.readFile(`${DIR}/${index}`));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.index.producers.map((p) => p.producerId), ['b', 'c']);
  });
});
