/**
 * Epochs: the history grows only with greater epochs, frames carry the epoch they were appended
 * under (48 bits, split over the header), the history survives reopening and a power cut, an
 * entry past the recovered end is dropped at open, a damaged history refuses the open, and an
 * append's `expectedEpoch` is checked in call order with `beginEpoch`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeEpochHistory } from '../../../src/codec/epoch-history-file.js';
import { Wal } from '../../../src/engine/wal.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import { isWalError } from '../../../src/errors.js';
import type { Storage } from '../../../src/storage/storage.js';
import { MemDisk } from '../../support/mem-disk.js';
import { segmentFrames } from '../../support/segment-frames.js';

const DIR = '/data';
const v = (s: string): { value: Buffer } => ({ value: Buffer.from(s) });

async function open(disk: MemDisk, extra: Partial<WalOptions> = {}): Promise<Wal> {
  return (await Wal.open({ dir: DIR, storage: disk.mount(), preallocate: false, ...extra })).wal;
}

/** [base offset, epoch] of every frame of every segment, read from the bytes (epoch: u32 at 32 + u16 at 10 as the high bits). */
function frameEpochs(storage: Storage): [number, number][] {
  const out: [number, number][] = [];
  for (const name of storage.list(DIR).filter((n) => n.endsWith('.seg')).sort()) {
    const bytes = storage.readFile(join(DIR, name));
    for (const frame of segmentFrames(bytes)) {
      out.push([frame.baseOffset, bytes.readUInt16LE(frame.position + 10) * 2 ** 32 + bytes.readUInt32LE(frame.position + 32)]);
    }
  }
  return out;
}

describe('epochs', () => {
  test('a new log is at epoch 0; beginEpoch starts an entry at the next offset and later frames carry it', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    try {
      assert.equal(wal.epoch, 0);
      assert.deepEqual(wal.epochHistory(), []);
      await wal.append([v('a'), v('b')]);
      assert.deepEqual(await wal.beginEpoch(3), { epoch: 3, startOffset: 2 });
      await wal.append([v('c')]);
      const big = 2 ** 40 + 7;
      assert.deepEqual(await wal.beginEpoch(big), { epoch: big, startOffset: 3 });
      await wal.append([v('d')]);
      assert.equal(wal.epoch, big);
      assert.deepEqual(wal.epochHistory(), [
        { epoch: 3, startOffset: 2 },
        { epoch: big, startOffset: 3 },
      ]);
      assert.deepEqual(frameEpochs(disk.mount()), [
        [0, 0],
        [2, 3],
        [3, big],
      ]);
      assert.deepEqual((await wal.read(0)).map((r) => r.value.toString()), ['a', 'b', 'c', 'd'], 'the epoch bits do not disturb reading');
    } finally {
      await wal.close();
    }
  });

  test('beginEpoch refuses an epoch that is not greater, or beyond 48 bits, and changes nothing', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    try {
      await wal.beginEpoch(5);
      for (const epoch of [5, 4, 0]) {
        await assert.rejects(wal.beginEpoch(epoch), (e) => isWalError(e, 'WAL_EPOCH_MISMATCH') && e.details['epoch'] === epoch && e.details['currentEpoch'] === 5, `epoch ${epoch}`);
      }
      await assert.rejects(wal.beginEpoch(2 ** 48), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'epoch');
      await assert.rejects(wal.beginEpoch(1.5), RangeError);
      assert.equal(wal.epoch, 5);
      assert.deepEqual(wal.epochHistory(), [{ epoch: 5, startOffset: 0 }]);
    } finally {
      await wal.close();
    }
  });

  test('the history survives a clean reopen and a power cut right after beginEpoch resolved', async () => {
    const disk = new MemDisk();
    const wal = await open(disk, { syncPolicy: 'none' });
    await wal.append([v('a')]);
    await wal.beginEpoch(2);
    await wal.append([v('b')]);
    await wal.close();
    const second = await open(disk, { syncPolicy: 'none' });
    assert.equal(second.epoch, 2);
    assert.deepEqual(second.epochHistory(), [{ epoch: 2, startOffset: 1 }]);
    await second.append([v('c')]);
    await second.beginEpoch(9);
    // Power cut: nothing after this is synced; beginEpoch made its entry (and what came before it) durable.
    disk.crash();
    const third = await open(disk, { syncPolicy: 'none' });
    try {
      assert.equal(third.epoch, 9);
      assert.deepEqual(third.epochHistory(), [
        { epoch: 2, startOffset: 1 },
        { epoch: 9, startOffset: 3 },
      ]);
      assert.equal(third.nextOffset, 3, 'the records before the entry were synced with it');
      await third.append([v('d')]);
      assert.deepEqual(frameEpochs(disk.mount()), [
        [0, 0],
        [1, 2],
        [2, 2],
        [3, 9],
      ]);
    } finally {
      await third.close();
    }
  });

  test('an entry that starts past the recovered end of the log is dropped at open, and the file rewritten', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.append([v('a'), v('b')]);
    await wal.close();
    const storage = disk.mount();
    storage.mkdirp(DIR);
    const file = storage.open(join(DIR, 'EPOCHS'), 'create-new');
    file.writev([encodeEpochHistory({ entries: [{ epoch: 1, startOffset: 2 }, { epoch: 4, startOffset: 5 }], isReplicated: false })], 0);
    file.datasync();
    file.close();
    const reopened = await open(disk);
    await reopened.close();
    const again = await open(disk);
    try {
      assert.equal(again.epoch, 1);
      assert.deepEqual(again.epochHistory(), [{ epoch: 1, startOffset: 2 }], 'the entry at 5 (the log ends at 2) is gone for good');
    } finally {
      await again.close();
    }
  });

  test('an epoch history that does not check out refuses the open with WAL_CORRUPTION', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    await wal.beginEpoch(3);
    await wal.close();
    const storage = disk.mount();
    const path = join(DIR, 'EPOCHS');
    const bytes = storage.readFile(path);
    bytes[16] ^= 1;
    const file = storage.open(path, 'read-write');
    file.writev([bytes], 0);
    file.close();
    await assert.rejects(open(disk), (e) => isWalError(e, 'WAL_CORRUPTION') && e.details['file'] === 'EPOCHS');
  });

  test('epochEnd answers where an epoch ends: the next entry start, or the next offset for the newest', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    try {
      assert.deepEqual(wal.epochEnd(0), { epoch: 0, endOffset: 0 }, 'a log never promoted: epoch 0 runs to the end');
      await wal.append([v('0'), v('1'), v('2'), v('3'), v('4')]);
      await wal.beginEpoch(2);
      await wal.append([v('5'), v('6'), v('7'), v('8')]);
      await wal.beginEpoch(4);
      await wal.append([v('9'), v('10'), v('11')]);
      assert.deepEqual(wal.epochEnd(0), { epoch: 0, endOffset: 5 });
      assert.deepEqual(wal.epochEnd(1), { epoch: 1, endOffset: 5 }, 'below every entry: the asked epoch, ending where the first begins');
      assert.deepEqual(wal.epochEnd(2), { epoch: 2, endOffset: 9 });
      assert.deepEqual(wal.epochEnd(3), { epoch: 2, endOffset: 9 }, 'an epoch this log never had: the greatest below it');
      assert.deepEqual(wal.epochEnd(4), { epoch: 4, endOffset: 12 });
      assert.deepEqual(wal.epochEnd(100), { epoch: 4, endOffset: 12 });
    } finally {
      await wal.close();
    }
  });
});

describe('expectedEpoch', () => {
  test('an append whose expectedEpoch differs from the log epoch is refused and writes nothing', async () => {
    const disk = new MemDisk();
    const wal = await open(disk);
    try {
      assert.equal((await wal.append([v('a')], { expectedEpoch: 0 })).firstOffset, 0);
      await assert.rejects(
        async () => wal.append([v('x')], { expectedEpoch: 1 }),
        (e) => isWalError(e, 'WAL_EPOCH_MISMATCH') && e.details['expectedEpoch'] === 1 && e.details['epoch'] === 0,
      );
      await wal.beginEpoch(7);
      await assert.rejects(async () => wal.append([v('x')], { expectedEpoch: 0 }), (e) => isWalError(e, 'WAL_EPOCH_MISMATCH') && e.details['epoch'] === 7);
      assert.equal((await wal.append([v('b')], { expectedEpoch: 7 })).firstOffset, 1);
      assert.deepEqual((await wal.read(0)).map((r) => r.value.toString()), ['a', 'b']);
      assert.throws(() => wal.append([v('x')], { expectedEpoch: -1 }), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'expectedEpoch');
    } finally {
      await wal.close();
    }
  });

  test('is ordered with beginEpoch: a batch queued before it keeps the old epoch, one after is fenced off', async () => {
    const disk = new MemDisk();
    const wal = await open(disk, { syncPolicy: 'always' });
    try {
      await wal.beginEpoch(1);
      const queued = wal.append([v('queued')], { expectedEpoch: 1 });
      const begun = wal.beginEpoch(2);
      assert.throws(() => wal.append([v('late')], { expectedEpoch: 1 }), (e) => isWalError(e, 'WAL_EPOCH_MISMATCH'));
      assert.deepEqual(await begun, { epoch: 2, startOffset: 1 }, 'the queued batch was synced first, under epoch 1');
      assert.equal((await queued).firstOffset, 0);
      await wal.append([v('new')], { expectedEpoch: 2 });
      assert.deepEqual(frameEpochs(disk.mount()), [
        [0, 1],
        [1, 2],
      ]);
    } finally {
      await wal.close();
    }
  });
});
