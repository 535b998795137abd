/**
 * StateKeeper over a real log on a MemDisk: the view follows appends (read-your-writes), flushes,
 * refuses new keys past its cap, and is rebuilt on open from the newest usable snapshot plus the
 * log after it, equal to a plain `Map` model whatever the sequence of PUTs, DELETEs, keyless
 * records and flushes, with or without a snapshot; it refuses to open a compacted log whose
 * compacted part no snapshot covers.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AppendRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { ENTRY_OVERHEAD_BYTES, KeyState } from '../../../src/state/key-state.js';
import { listSnapshots } from '../../../src/state/snapshot-reader.js';
import { writeSnapshot } from '../../../src/state/snapshot-writer.js';
import { KEY_INFO_FRAMING_BYTES } from '../../../src/state/key-info-page.js';
import { Compactor } from '../../../src/state/compactor.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { TXN_OVERHEAD_BYTES } from '../../../src/state/txn-table.js';
import { encodeTxnWrites } from '../../../src/codec/txn-writes.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import type { Storage } from '../../../src/storage/storage.js';
import { MemDisk } from '../../support/mem-disk.js';
import { testSeed } from '../../support/seed.js';

const DIR = '/data';
const SNAPSHOTS = '/data/snapshots';

interface ModelEntry {
  readonly value: Buffer;
  readonly offset: number;
  readonly timestamp: number;
}

/** Keys by hex, sorted independently of the state (Buffer.compare). */
type Model = Map<string, ModelEntry>;

interface Opened {
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  /** Compacts with no retention (every covered sealed segment goes), keeping one snapshot. */
  readonly compactor: Compactor;
  readonly report: Awaited<ReturnType<typeof StateKeeper.open>>['report'];
  close(): Promise<void>;
}

async function openKeeper(storage: Storage, options: { maxStateBytes?: number; segmentSizeBytes?: number } = {}): Promise<Opened> {
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: options.segmentSizeBytes });
  try {
    const { keeper, report } = await StateKeeper.open({ wal, storage, options: { maxStateBytes: options.maxStateBytes } });
    const compactor = new Compactor({ wal, state: keeper, storage, options: { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0, keepSnapshots: 1 } });
    return {
      wal,
      keeper,
      compactor,
      report,
      async close() {
        await keeper.close();
        await wal.close();
      },
    };
  } catch (error) {
    await wal.close();
    throw error;
  }
}

/** Every key of the keeper's view, in order, with offset, timestamp and value (read by Get). */
async function contents(keeper: StateKeeper): Promise<{ key: string; value: string; offset: number; timestamp: number }[]> {
  const listed = await keeper.listKeys({ limit: 1000, maxBytes: 1 << 20 });
  assert.equal(listed.nextPageToken, '');
  const result = [];
  for (const info of listed.keys) {
    const entry = (await keeper.get(info.key))!;
    assert.equal(entry.value.length, info.valueSizeBytes);
    result.push({ key: info.key.toString('hex'), value: entry.value.toString('hex'), offset: entry.offset, timestamp: entry.timestamp });
  }
  return result;
}

function modelContents(model: Model): { key: string; value: string; offset: number; timestamp: number }[] {
  return [...model]
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'hex'), Buffer.from(b, 'hex')))
    .map(([key, e]) => ({ key, value: e.value.toString('hex'), offset: e.offset, timestamp: e.timestamp }));
}

type Op =
  | { readonly kind: 'put'; readonly key: number; readonly value: Uint8Array }
  | { readonly kind: 'delete'; readonly key: number }
  | { readonly kind: 'keyless' }
  | { readonly kind: 'flush' }
  | { readonly kind: 'snapshot'; readonly compress: boolean }
  | { readonly kind: 'incremental'; readonly compress: boolean }
  | { readonly kind: 'bulk' }
  | { readonly kind: 'compact'; readonly forceSnapshot: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.integer({ min: 0, max: 7 }), value: fc.uint8Array({ maxLength: 5 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'keyless' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), compress: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('incremental' as const), compress: fc.boolean() }) },
);

/** The ops of {@link opArb} plus compactions, and large keyless records so that segments fill and compactions delete them. */
const opWithCompactionArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 16, arbitrary: opArb },
  { weight: 3, arbitrary: fc.constant({ kind: 'bulk' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), forceSnapshot: fc.boolean() }) },
);

/** Key `n` of the property: a few bytes that make order and prefix mistakes show (0x00, 0xff, shared prefixes). */
function keyOf(n: number): Buffer {
  return Buffer.from([0x61, 0xff, 0x00, 0x61, 0x80, 0x61, 0x7f, 0x00].slice(0, 1 + (n % 4)).map((byte, i) => (i === 0 ? byte + (n >> 2) : byte)));
}

/** Segments the compactions of the property tests deleted, to check that they delete some. */
let compactedSegments = 0;

/** Runs `ops` through the log (each put or delete a one-record append), keeping `model` as the view should be. */
async function runOps(opened: Opened, ops: readonly Op[], model: Model): Promise<void> {
  for (const op of ops) {
    switch (op.kind) {
      case 'put': {
        const key = keyOf(op.key);
        const { firstOffset, timestamp } = await opened.wal.append([{ key, value: op.value }]);
        model.set(key.toString('hex'), { value: Buffer.from(op.value), offset: firstOffset, timestamp });
        break;
      }
      case 'delete': {
        const key = keyOf(op.key);
        await opened.wal.append([{ key, value: Buffer.alloc(0), type: 'delete' }]);
        model.delete(key.toString('hex'));
        break;
      }
      case 'keyless':
        await opened.wal.append([{ value: Buffer.from('plain') }]);
        break;
      case 'bulk':
        await opened.wal.append([{ value: Buffer.alloc(1500, 'bulk') }]);
        break;
      case 'compact':
        compactedSegments += (await opened.compactor.compact({ forceSnapshot: op.forceSnapshot })).segmentsDeleted;
        break;
      case 'flush': {
        const { keysRemoved } = await opened.keeper.flushAll();
        assert.equal(keysRemoved, model.size);
        model.clear();
        break;
      }
      case 'snapshot':
        await opened.keeper.createSnapshot({ compress: op.compress });
        break;
      case 'incremental':
        // Refused without a base it can build on (none yet, or one taken before a flush): then no snapshot is written.
        await opened.keeper.createSnapshot({ compress: op.compress, incremental: true }).catch((error: unknown) => {
          if (!isWalError(error, 'WAL_SNAPSHOT_NO_BASE')) throw error;
        });
        break;
    }
  }
}

describe('StateKeeper', { timeout: 60_000 }, () => {
  test('equals a Map model while running and after a reopen, with and without snapshots', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
        const disk = new MemDisk();
        const storage = disk.mount();
        const model: Model = new Map();
        const first = await openKeeper(storage);
        await runOps(first, ops, model);
        assert.deepEqual(await contents(first.keeper), modelContents(model));
        const records = first.wal.nextOffset;
        await first.close();
        const second = await openKeeper(storage);
        try {
          assert.deepEqual(await contents(second.keeper), modelContents(model));
          const snapshotOffset = second.report.snapshot?.walOffset ?? 0;
          assert.equal(second.report.snapshot !== undefined, ops.some((op) => op.kind === 'snapshot'));
          if (second.report.snapshot !== undefined) assert.equal(second.report.snapshot.walOffset, listSnapshots(storage, SNAPSHOTS).snapshots.at(-1)?.walOffset);
          assert.equal(second.report.replayedFrom, snapshotOffset);
          assert.equal(second.report.recordsReplayed, records - snapshotOffset);
          assert.equal(second.report.keyCount, model.size);
        } finally {
          await second.close();
        }
      }),
      { seed: testSeed('state keeper model'), numRuns: 40 },
    );
  });

  test('equals a Map model while running and after a reopen, with compactions deleting the log below their snapshots', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opWithCompactionArb, { minLength: 20, maxLength: 80 }), async (ops) => {
        const disk = new MemDisk();
        const storage = disk.mount();
        const model: Model = new Map();
        const first = await openKeeper(storage, { segmentSizeBytes: 4096 });
        await runOps(first, ops, model);
        assert.deepEqual(await contents(first.keeper), modelContents(model));
        const nextOffset = first.wal.nextOffset;
        await first.close();
        const second = await openKeeper(storage, { segmentSizeBytes: 4096 });
        try {
          assert.deepEqual(await contents(second.keeper), modelContents(model));
          assert.equal(second.wal.nextOffset, nextOffset, 'no offset lost or reused');
          assert.ok(second.report.replayedFrom >= second.wal.firstOffset);
          // Compact once more, reopen: the same again.
          await second.compactor.compact();
        } finally {
          await second.close();
        }
        const third = await openKeeper(storage, { segmentSizeBytes: 4096 });
        try {
          assert.deepEqual(await contents(third.keeper), modelContents(model));
        } finally {
          await third.close();
        }
      }),
      { seed: testSeed('state keeper model with compaction'), numRuns: 30 },
    );
    assert.ok(compactedSegments > 10, `compactions deleted ${compactedSegments} segments`);
  });

  test('a read sees every append acknowledged before it, without waiting for the tail', async () => {
    const storage = new MemDisk().mount();
    const opened = await openKeeper(storage);
    try {
      for (let i = 0; i < 20; i++) {
        const { firstOffset } = await opened.wal.append([{ key: Buffer.from('k'), value: Buffer.from(`v${i}`) }]);
        // No turn of the event loop between the acknowledgement and the read.
        const entry = await opened.keeper.get(Buffer.from('k'));
        assert.equal(entry?.value.toString(), `v${i}`);
        assert.equal(entry?.offset, firstOffset);
      }
    } finally {
      await opened.close();
    }
  });

  test('a flush removes every key, is counted, and holds after a reopen; later puts apply', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const first = await openKeeper(storage);
    await first.wal.append([
      { key: Buffer.from('a'), value: Buffer.from('1') },
      { key: Buffer.from('b'), value: Buffer.from('2') },
    ]);
    const flushed = await first.keeper.flushAll();
    assert.deepEqual(flushed, { keysRemoved: 2, offset: 2 });
    const [record] = await first.wal.read(2);
    assert.equal(record?.type, 'flush_all');
    assert.equal(await first.keeper.get(Buffer.from('a')), undefined);
    await first.wal.append([{ key: Buffer.from('c'), value: Buffer.from('3') }]);
    assert.equal((await first.keeper.get(Buffer.from('c')))?.value.toString(), '3');
    assert.equal(first.keeper.keyCount, 1);
    await first.close();
    const second = await openKeeper(storage);
    try {
      assert.deepEqual(
        (await contents(second.keeper)).map((e) => Buffer.from(e.key, 'hex').toString()),
        ['c'],
      );
    } finally {
      await second.close();
    }
  });

  test('a listing page stays within its byte budget (one long key alone passes) and its token goes on', async () => {
    const storage = new MemDisk().mount();
    const opened = await openKeeper(storage);
    try {
      const key = (c: string, length = 100): Buffer => Buffer.alloc(length, c);
      await opened.wal.append(['a', 'b', 'c', 'd'].map((c) => ({ key: key(c), value: Buffer.from('v') })));
      await opened.wal.append([{ key: key('e', 1000), value: Buffer.from('v') }]);
      const maxBytes = 2 * (100 + KEY_INFO_FRAMING_BYTES) + 10;
      const pages: string[][] = [];
      let pageToken: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await opened.keeper.listKeys({ limit: 1000, maxBytes, pageToken });
        pages.push(page.keys.map((info) => `${info.key.toString('latin1', 0, 1)}${info.key.length}`));
        if (page.nextPageToken === '') break;
        pageToken = page.nextPageToken;
      }
      assert.deepEqual(pages, [['a100', 'b100'], ['c100', 'd100'], ['e1000']]);
    } finally {
      await opened.close();
    }
  });

  test('new keys past max_state_bytes are refused naming the cap; overwrites and deletes pass', async () => {
    const storage = new MemDisk().mount();
    const maxStateBytes = 3 * (1 + 4 + ENTRY_OVERHEAD_BYTES);
    const opened = await openKeeper(storage, { maxStateBytes });
    try {
      const put = (key: string, value = 'vvvv'): AppendRecord => ({ key: Buffer.from(key), value: Buffer.from(value) });
      opened.keeper.checkCapacity([put('a'), put('b')]);
      await opened.wal.append([put('a'), put('b')]);
      await opened.keeper.get(Buffer.from('a'));
      // Each fits alone, not both: the second is named.
      assert.throws(
        () => opened.keeper.checkCapacity([put('c'), put('d')]),
        (e) =>
          isWalError(e, 'WAL_STATE_FULL') &&
          e.details['field'] === 'records[1]' &&
          e.details['configKey'] === 'max_state_bytes' &&
          e.details['limit'] === maxStateBytes &&
          e.details['stateBytes'] === 2 * (1 + 4 + ENTRY_OVERHEAD_BYTES),
      );
      // The same new key twice in a batch counts once.
      opened.keeper.checkCapacity([put('c'), put('c')]);
      await opened.wal.append([put('c')]);
      await opened.keeper.get(Buffer.from('c'));
      assert.throws(() => opened.keeper.checkCapacity([put('d', '')]), (e) => isWalError(e, 'WAL_STATE_FULL') && e.details['field'] === 'records[0]');
      // At the cap: overwrites (even growing ones), deletes and keyless records pass.
      opened.keeper.checkCapacity([put('a', 'a much longer value'), { key: Buffer.from('b'), value: Buffer.alloc(0), type: 'delete' }, { value: Buffer.from('x') }]);
      opened.keeper.checkCapacity([{ key: Buffer.from('new'), value: Buffer.alloc(0), type: 'delete' }]);
      await opened.wal.append([put('a', 'a much longer value'), { key: Buffer.from('b'), value: Buffer.alloc(0), type: 'delete' }]);
      assert.equal(await opened.keeper.get(Buffer.from('b')), undefined);
      // The deletion is remembered (for the next incremental snapshot) and counted until a snapshot.
      assert.throws(() => opened.keeper.checkCapacity([put('d', '')]), (e) => isWalError(e, 'WAL_STATE_FULL'));
    } finally {
      await opened.close();
    }
  });

  test('near the cap, a retry of an idempotent PREPARE or put the log already took is answered as a duplicate, not refused', async () => {
    const storage = new MemDisk().mount();
    const id = Buffer.from('txn-1');
    const writes = encodeTxnWrites([{ op: 'put', key: Buffer.from('k'), value: Buffer.from('v') }]);
    const prepareBytes = 2 * id.length + writes.length + TXN_OVERHEAD_BYTES;
    const opened = await openKeeper(storage, { maxStateBytes: prepareBytes + 8 });
    try {
      const prepare: AppendRecord = { type: 'prepare', key: id, value: writes };
      const first = await opened.keeper.append([prepare], { producerId: 'p', sequence: 1 });
      await opened.keeper.get(Buffer.from('x'));
      const retry = await opened.keeper.append([prepare], { producerId: 'p', sequence: 1 });
      assert.deepEqual({ duplicate: retry.duplicate, firstOffset: retry.firstOffset }, { duplicate: true, firstOffset: first.firstOffset });
    } finally {
      await opened.close();
    }
    // A put of a new key that fills the cap, retried before the view applied it: its bytes are pending already.
    const full = await openKeeper(new MemDisk().mount(), { maxStateBytes: 1 + ENTRY_OVERHEAD_BYTES });
    try {
      const put: AppendRecord = { key: Buffer.from('n'), value: Buffer.alloc(0) };
      const written = full.keeper.append([put], { producerId: 'q', sequence: 1 });
      const again = full.keeper.append([put], { producerId: 'q', sequence: 1 });
      assert.equal((await again).firstOffset, (await written).firstOffset);
    } finally {
      await full.close();
    }
  });

  test('a retry made while its original is in flight, when the original then fails: both callers get the error, nothing goes unhandled', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const opened = await openKeeper(storage);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      disk.inject({ op: 'writev', code: 'EIO', path: /\.seg$/ });
      const record: AppendRecord = { key: Buffer.from('k'), value: Buffer.from('v') };
      const original = opened.keeper.append([record], { producerId: 'p', sequence: 1 });
      const retry = opened.keeper.append([record], { producerId: 'p', sequence: 1 });
      await assert.rejects(original, (error) => isWalError(error, 'WAL_IO_ERROR'));
      await assert.rejects(retry, (error) => isWalError(error, 'WAL_IO_ERROR'));
      // Unhandled rejections are reported once the microtasks and a turn of the loop have run.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(unhandled, [], 'no promise rejected unobserved');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await opened.close().catch(() => undefined);
    }
  });

  test('close stops a snapshot under way: it rejects with WAL_CLOSED, leaves no file, and close returns after it', async () => {
    const storage = new MemDisk().mount();
    const opened = await openKeeper(storage);
    try {
      for (let i = 0; i < 20; i++) await opened.wal.append(Array.from({ length: 100 }, (_, j) => ({ key: Buffer.from(`key-${100 * i + j}`), value: Buffer.alloc(100, j) })));
      await opened.keeper.caughtUp();
      // 64-byte chunks: the write takes many turns of the event loop.
      let settled = false;
      const snapshot = opened.keeper.createSnapshot({ chunkBytes: 64 }).finally(() => (settled = true));
      snapshot.catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      await opened.keeper.close();
      assert.ok(settled, 'close returned only once the snapshot had stopped');
      await assert.rejects(snapshot, (error) => isWalError(error, 'WAL_CLOSED'));
      assert.deepEqual(storage.exists(SNAPSHOTS) ? storage.list(SNAPSHOTS) : [], [], 'neither a snapshot nor its temp file is left');
    } finally {
      await opened.close();
    }
  });

  test('appends in flight or not yet applied count against the cap; a failed one gives its bytes back', async () => {
    const storage = new MemDisk().mount();
    const entryBytes = 2 + 1 + ENTRY_OVERHEAD_BYTES;
    const opened = await openKeeper(storage, { maxStateBytes: 2 * entryBytes });
    try {
      const put = (key: string): AppendRecord => ({ key: Buffer.from(key), value: Buffer.from('v') });
      // Both checked before either is written: the second sees the first as pending.
      const first = opened.keeper.append([put('k1')]);
      const second = opened.keeper.append([put('k2')]);
      const third = assert.rejects(opened.keeper.append([put('k3')]), (e) => isWalError(e, 'WAL_STATE_FULL') && e.details['stateBytes'] === 2 * entryBytes);
      await Promise.all([first, second, third]);
      assert.equal((await opened.keeper.get(Buffer.from('k2')))?.value.toString(), 'v');
      // Applied: the reservations are gone, the state itself is at the cap.
      assert.throws(() => opened.keeper.checkCapacity([put('k3')]), (e) => isWalError(e, 'WAL_STATE_FULL') && e.details['stateBytes'] === 2 * entryBytes);
      await opened.wal.append([{ key: Buffer.from('k1'), value: Buffer.alloc(0), type: 'delete' }]);
      await opened.keeper.flushAll();
      // A refused append (a lost condition) gives back what it reserved.
      await assert.rejects(opened.keeper.append([put('k4'), put('k5')], { expectedOffset: 0 }), (e) => isWalError(e, 'WAL_OFFSET_MISMATCH'));
      assert.equal(opened.keeper.checkCapacity([put('k4'), put('k5')]), 2 * entryBytes);
      await opened.keeper.append([put('k4'), put('k5')]);
    } finally {
      await opened.close();
    }
  });

  test('recovery starts from the newest snapshot, skipping a damaged one and setting one beyond the log aside, and says so', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const first = await openKeeper(storage);
    await first.wal.append([{ key: Buffer.from('a'), value: Buffer.from('1') }]);
    await first.keeper.get(Buffer.alloc(0));
    const older = await writeSnapshot(storage, SNAPSHOTS, first.keeper.captureView(), { type: 'full' });
    await first.wal.append([{ key: Buffer.from('b'), value: Buffer.from('2') }]);
    await first.keeper.get(Buffer.alloc(0));
    const newer = await writeSnapshot(storage, SNAPSHOTS, first.keeper.captureView(), { type: 'full' });
    await first.wal.append([{ key: Buffer.from('a'), value: Buffer.alloc(0), type: 'delete' }]);
    await first.close();
    // A snapshot of records the log does not have (as after a power cut under a lax sync policy).
    const ahead = new KeyState();
    ahead.apply({ offset: 10, timestamp: 1, type: 'put', key: Buffer.from('ghost'), value: Buffer.from('x') });
    const beyond = await writeSnapshot(storage, SNAPSHOTS, ahead.captureView(), { type: 'full' });

    const second = await openKeeper(storage);
    try {
      assert.equal(second.report.snapshot?.id, newer.id);
      assert.equal(second.report.snapshot?.walOffset, 2);
      assert.equal(second.report.snapshot?.keyCount, 2);
      assert.equal(second.report.recordsReplayed, 1);
      const setAside = `${beyond.path}.set-aside`;
      assert.deepEqual(second.report.skippedSnapshots.map((s) => s.file), [setAside], 'the one beyond the log, set aside');
      assert.ok(disk.fileBytes(setAside) !== undefined && disk.fileBytes(beyond.path) === undefined);
      assert.deepEqual((await contents(second.keeper)).map((e) => Buffer.from(e.key, 'hex').toString()), ['b']);
    } finally {
      await second.close();
    }

    const bytes = disk.fileBytes(newer.path)!;
    bytes[bytes.length - 60]! ^= 0x10;
    const third = await openKeeper(storage);
    try {
      assert.equal(third.report.snapshot?.id, older.id);
      assert.equal(third.report.recordsReplayed, 2);
      assert.deepEqual(third.report.skippedSnapshots.map((s) => s.file), [newer.path]);
      assert.deepEqual((await contents(third.keeper)).map((e) => Buffer.from(e.key, 'hex').toString()), ['b']);
    } finally {
      await third.close();
    }
  });

  test('snapshots on demand: a full one, an incremental on it, a point one; an incremental without a base is refused', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const first = await openKeeper(storage);
    try {
      await first.wal.append([{ key: Buffer.from('a'), value: Buffer.from('1') }]);
      await assert.rejects(first.keeper.createSnapshot({ incremental: true }), (error) => isWalError(error, 'WAL_SNAPSHOT_NO_BASE'));
      await first.wal.append([{ key: Buffer.from('b'), value: Buffer.from('2') }]);
      // No wait for the view: the snapshot holds every acknowledged write.
      const full = await first.keeper.createSnapshot({ compress: true });
      assert.deepEqual([full.type, full.walOffset, full.entryCount, full.isCompressed], ['full', 2, 2, true]);
      assert.match(full.checksum, /^[0-9a-f]{64}$/);
      await first.wal.append([
        { key: Buffer.from('a'), value: Buffer.alloc(0), type: 'delete' },
        { key: Buffer.from('c'), value: Buffer.from('3') },
      ]);
      const incremental = await first.keeper.createSnapshot({ incremental: true });
      assert.deepEqual([incremental.type, incremental.baseId, incremental.walOffset, incremental.entryCount, incremental.tombstoneCount], ['incremental', full.id, 4, 1, 1]);
      const point = await first.keeper.snapshotKey(Buffer.from('c'));
      assert.deepEqual([point?.type, point?.walOffset, point?.entryCount], ['point', 4, 1]);
      assert.equal(await first.keeper.snapshotKey(Buffer.from('a')), undefined);
    } finally {
      await first.close();
    }
    const second = await openKeeper(storage);
    try {
      assert.equal(second.report.snapshot?.type, 'incremental');
      assert.equal(second.report.snapshot?.chainLength, 2);
      assert.equal(second.report.recordsReplayed, 0);
      assert.deepEqual((await contents(second.keeper)).map((e) => Buffer.from(e.key, 'hex').toString()), ['b', 'c']);
      // The view loaded from the chain lists the changes since its head: an incremental builds on it.
      await second.wal.append([{ key: Buffer.from('b'), value: Buffer.from('4') }]);
      const next = await second.keeper.createSnapshot({ incremental: true });
      assert.deepEqual([next.walOffset, next.entryCount, next.tombstoneCount], [5, 1, 0]);
      // After a flush the changes since the last snapshot are not known: a full snapshot is needed.
      await second.keeper.flushAll();
      await assert.rejects(second.keeper.createSnapshot({ incremental: true }), (error) => isWalError(error, 'WAL_SNAPSHOT_NO_BASE'));
    } finally {
      await second.close();
    }
  });

  test('a durable snapshot lets the view forget the deleted keys below it', async () => {
    const storage = new MemDisk().mount();
    const opened = await openKeeper(storage);
    try {
      for (let i = 0; i < 50; i++) await opened.wal.append([{ key: Buffer.from(`k${i}`), value: Buffer.alloc(100) }]);
      for (let i = 0; i < 50; i++) await opened.wal.append([{ key: Buffer.from(`k${i}`), value: Buffer.alloc(0), type: 'delete' }]);
      await opened.keeper.get(Buffer.alloc(0));
      const held = opened.keeper.memoryBytes;
      await opened.keeper.createSnapshot();
      assert.ok(opened.keeper.memoryBytes < held, `memory ${opened.keeper.memoryBytes} after the snapshot, ${held} before`);
      assert.equal(opened.keeper.keyCount, 0);
    } finally {
      await opened.close();
    }
  });

  test('the .snap.tmp files a crash left are removed on open; snapshots stay', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const first = await openKeeper(storage);
    await first.wal.append([{ key: Buffer.from('a'), value: Buffer.from('1') }]);
    const kept = await first.keeper.createSnapshot();
    await first.close();
    const file = storage.open(`${SNAPSHOTS}/00000000000000000001-000000000000001-00000000.snap.tmp`, 'create-new');
    file.writev([Buffer.from('half a snapshot')], 0);
    file.close();
    const second = await openKeeper(storage);
    try {
      assert.deepEqual(listSnapshots(storage, SNAPSHOTS).tempFiles, []);
      assert.deepEqual(listSnapshots(storage, SNAPSHOTS).snapshots.map((info) => info.id), [kept.id]);
    } finally {
      await second.close();
    }
  });

  test('a compacted log opens only with a snapshot that reaches its first offset', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    const first = await openKeeper(storage, { segmentSizeBytes: 4096 });
    const value = Buffer.alloc(1000, 'v');
    await first.wal.append([{ key: Buffer.from('early'), value }]);
    await first.keeper.get(Buffer.alloc(0));
    const early = await writeSnapshot(storage, SNAPSHOTS, first.keeper.captureView(), { type: 'full' });
    for (let i = 0; i < 12; i++) await first.wal.append([{ key: Buffer.from(`k${i % 3}`), value }]);
    assert.ok((await first.wal.deleteSegmentsBefore(first.wal.nextOffset)) > 0);
    const firstOffset = first.wal.firstOffset;
    assert.ok(firstOffset > early.walOffset);
    await first.close();

    await assert.rejects(
      openKeeper(storage, { segmentSizeBytes: 4096 }),
      (e) => isWalError(e, 'WAL_STATE_LOST') && e.details['firstOffset'] === firstOffset && e.details['snapshotOffset'] === early.walOffset && e.details['dir'] === DIR,
    );
    storage.unlink(early.path);
    await assert.rejects(
      openKeeper(storage, { segmentSizeBytes: 4096 }),
      (e) => isWalError(e, 'WAL_STATE_LOST') && e.details['snapshotOffset'] === undefined && e.details['snapshotDir'] === SNAPSHOTS,
    );
    // A snapshot at the first offset covers everything compacted: the state of the dropped records is in it.
    const covering = new KeyState();
    covering.apply({ offset: firstOffset - 1, timestamp: 1, type: 'put', key: Buffer.from('kept'), value: Buffer.from('x') });
    await writeSnapshot(storage, SNAPSHOTS, covering.captureView(), { type: 'full' });
    const reopened = await openKeeper(storage, { segmentSizeBytes: 4096 });
    try {
      assert.equal(reopened.report.replayedFrom, firstOffset);
      assert.equal((await reopened.keeper.get(Buffer.from('kept')))?.value.toString(), 'x');
    } finally {
      await reopened.close();
    }
  });

  test('a log closed under the view ends it without reporting a failure; calls never hang', async () => {
    const storage = new MemDisk().mount();
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false });
    const failures: unknown[] = [];
    const { keeper } = await StateKeeper.open({ wal, storage, onFailure: (error) => failures.push(error) });
    await wal.close();
    // The state as last applied, or WAL_CLOSED once the tail has seen the close: never a hang.
    await keeper.get(Buffer.from('k')).catch((error: unknown) => assert.ok(isWalError(error, 'WAL_CLOSED'), String(error)));
    await keeper.close();
    await assert.rejects(keeper.flushAll(), (e) => isWalError(e, 'WAL_CLOSED'));
    assert.deepEqual(failures, []);
  });

  test('a failed read of the log stops the view: calls fail with that error', async () => {
    const disk = new MemDisk();
    const storage = disk.mount();
    // Without the recent frames, so that the view reads the record from the file.
    const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, tailCacheBytes: 0 });
    const failures: unknown[] = [];
    const { keeper } = await StateKeeper.open({ wal, storage, onFailure: (error) => failures.push(error) });
    try {
      disk.inject({ op: 'read', code: 'EIO', path: /\.seg$/, times: 1000 });
      await wal.append([{ key: Buffer.from('k'), value: Buffer.from('v') }]);
      await assert.rejects(keeper.get(Buffer.from('k')), (e) => isWalError(e, 'WAL_IO_ERROR'));
      await assert.rejects(keeper.flushAll(), (e) => isWalError(e, 'WAL_IO_ERROR'));
      assert.equal(failures.length, 1);
    } finally {
      disk.clearFaults();
      await keeper.close();
      await wal.close();
    }
  });

  test('a snapshot beyond the log\'s end after a power cut is set aside, never loaded once the log grows past it', async () => {
    const disk = new MemDisk();
    const open = async (): Promise<{ wal: Wal; keeper: StateKeeper; report: Awaited<ReturnType<typeof StateKeeper.open>>['report'] }> => {
      const storage = disk.mount();
      const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, syncPolicy: 'none' });
      const { keeper, report } = await StateKeeper.open({ wal, storage });
      return { wal, keeper, report };
    };
    const first = await open();
    for (let i = 0; i < 10; i++) await first.keeper.append([{ key: Buffer.from(`a${i}`), value: Buffer.from('kept') }]);
    await first.wal.sync();
    // Under `none` the snapshot covers records only written: durable itself, ahead of the log.
    for (let i = 0; i < 10; i++) await first.keeper.append([{ key: Buffer.from('lost'), value: Buffer.from(`lost${i}`) }]);
    const snapshot = await first.keeper.createSnapshot();
    assert.equal(snapshot.walOffset, 20);
    disk.crash();

    const second = await open();
    assert.equal(second.wal.nextOffset, 10, 'the power cut took the unsynced records');
    assert.equal(await second.keeper.get(Buffer.from('lost')), undefined);
    assert.ok(second.report.skippedSnapshots.some((p) => /set aside/.test(p.reason)), 'reported as set aside');
    assert.deepEqual(listSnapshots(disk.mount(), SNAPSHOTS).snapshots, [], 'no longer listed as a snapshot');
    assert.ok(disk.mount().list(SNAPSHOTS).some((name) => name.endsWith('.snap.set-aside')), 'kept beside them, renamed');
    // The log reuses the lost offsets and grows past the snapshot's.
    for (let i = 0; i < 15; i++) await second.keeper.append([{ key: Buffer.from('new'), value: Buffer.from(`new${i}`) }]);
    await second.wal.sync();
    await second.keeper.close();
    await second.wal.close();

    const third = await open();
    try {
      assert.equal(third.report.snapshot, undefined, 'the stale snapshot is not loaded');
      assert.equal(await third.keeper.get(Buffer.from('lost')), undefined, 'nothing of the lost records');
      assert.equal((await third.keeper.get(Buffer.from('new')))?.value.toString(), 'new14');
      assert.equal((await third.keeper.get(Buffer.from('a9')))?.value.toString(), 'kept');
    } finally {
      await third.keeper.close();
      await third.wal.close();
    }
  });
});
