/**
 * A tail with `skipKeylessPuts` (the key-value view's): it delivers exactly the log's records
 * minus the PUTs without a key, in order, with batches whose `nextOffset` covers what was left out
 * (a batch of none when every record read was such a PUT), each batch spanning at most `maxRecords`
 * offsets; from the recent frames and from the files alike, across segments and the gaps key
 * compaction leaves.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AppendRecord, WalRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { MemDisk } from '../../support/mem-disk.js';

const recordArb: fc.Arbitrary<AppendRecord> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ value: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) }) },
  { weight: 1, arbitrary: fc.record({ value: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)), headers: fc.constant({ h: Buffer.from('x') }) }) },
  { weight: 2, arbitrary: fc.record({ key: fc.constantFrom('a', 'b', 'c').map((k) => Buffer.from(k)), value: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('delete' as const), key: fc.constantFrom('a', 'b').map((k) => Buffer.from(k)), value: fc.constant(Buffer.alloc(0)) }) },
  // Keyless, but not PUTs: delivered (a FLUSH_ALL clears the view).
  { weight: 1, arbitrary: fc.record({ type: fc.constantFrom('flush_all' as const, 'checkpoint' as const), value: fc.constant(Buffer.alloc(0)) }) },
);

const isKeylessPut = (r: WalRecord): boolean => r.type === 'put' && r.key === undefined;
const shape = (r: WalRecord): string => `${r.offset}:${r.type}:${r.key?.toString() ?? '-'}:${r.value.toString('hex')}:${Object.keys(r.headers).join(',')}`;

describe('tails that skip keyless PUTs', { timeout: 120_000 }, () => {
  test('deliver every other record once, in order, and batches that cover the skipped ones', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(recordArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.constantFrom(0, 1 << 20),
        fc.boolean(),
        async (batches, maxRecords, maxBytes, tailCacheBytes, rewrites) => {
          const { wal } = await Wal.open({ dir: '/data', storage: new MemDisk().mount(), preallocate: false, segmentSizeBytes: 4096, tailCacheBytes });
          try {
            for (const batch of batches) await wal.append(batch);
            if (rewrites) await wal.rewriteSegments({ keep: (record) => record.offset % 3 !== 0, thresholdPercent: 0 });
            const all = await wal.read(0, { limit: 1_000_000 });
            const expected = all.filter((r) => !isKeylessPut(r)).map(shape);
            const got: string[] = [];
            let position = 0;
            const tail = wal.openTail(0, { maxRecords, maxBytes, skipKeylessPuts: true });
            for (let events = 0; events < 10_000; events++) {
              const next = await tail.next();
              assert.ok(next.done !== true);
              const event = next.value;
              if (event.kind === 'idle') break;
              assert.ok(event.nextOffset > position, 'every batch moves on');
              for (const record of event.records) {
                assert.ok(record.offset >= position && record.offset < event.nextOffset, 'inside the batch');
                got.push(shape(record));
              }
              // At most maxRecords offsets that hold a record: skipped and delivered records alike.
              assert.ok(all.filter((r) => r.offset >= position && r.offset < event.nextOffset).length <= maxRecords);
              position = event.nextOffset;
            }
            await tail.return();
            assert.deepEqual(got, expected);
            assert.equal(position, wal.highWatermark + 1, 'the last batch reached the end of the log');
          } finally {
            await wal.close();
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  test('a log of keyless PUTs alone: batches of no record, each maxRecords on', async () => {
    const { wal } = await Wal.open({ dir: '/data', storage: new MemDisk().mount(), preallocate: false });
    try {
      await wal.append(Array.from({ length: 25 }, () => ({ value: Buffer.from('v') })));
      const tail = wal.openTail(0, { maxRecords: 10, skipKeylessPuts: true });
      const events = [];
      for (let i = 0; i < 4; i++) events.push((await tail.next()).value);
      assert.deepEqual(
        events.map((e) => (e?.kind === 'records' ? [e.records.length, e.nextOffset] : e?.kind)),
        [[0, 10], [0, 20], [0, 25], 'idle'],
      );
      await tail.return();
    } finally {
      await wal.close();
    }
  });
});
