import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RECORD_TYPE_NAMES, type WalRecord } from '../../../src/codec/record.js';
import { ReadResponse } from '../../../src/gen/wald/v1/read.js';
import { toRecordMessage } from '../../../src/server/record-message.js';
import { decodeReadResponse } from '../../../src/wire/read-response-decoder.js';
import { testSeed } from '../../support/seed.js';

const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const offset = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

const recordArb: fc.Arbitrary<WalRecord> = fc.record({
  offset,
  timestamp: offset,
  type: fc.constantFrom(...RECORD_TYPE_NAMES),
  key: fc.option(bytes(20), { nil: undefined }),
  value: bytes(200),
  headers: fc.dictionary(fc.string({ maxLength: 6 }).filter((n) => n !== '__proto__'), bytes(10), { maxKeys: 3 }).map((h) => h as Record<string, Buffer>),
});

function plain(record: WalRecord): unknown {
  return { ...record, key: record.key === undefined ? undefined : Buffer.from(record.key), value: Buffer.from(record.value), headers: { ...record.headers } };
}

test('the Read response decoder reads what the generated encoder writes', () => {
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 8 }), offset, offset, fc.option(offset, { nil: undefined }), (records, nextOffset, firstOffset, highWatermark) => {
      const message: ReadResponse = {
        records: records.map(toRecordMessage),
        nextOffset: BigInt(nextOffset),
        firstOffset: BigInt(firstOffset),
        highWatermark: highWatermark === undefined ? undefined : BigInt(highWatermark),
      };
      const page = decodeReadResponse(Buffer.from(ReadResponse.encode(message).finish()));
      assert.deepEqual({ ...page, records: page.records.map(plain) }, { records: records.map(plain), nextOffset, firstOffset, highWatermark });
    }),
    { seed: testSeed('read response decoder'), numRuns: 500 },
  );
});

test('the Read response decoder throws only RangeError on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
      try {
        decodeReadResponse(Buffer.from(input));
      } catch (error) {
        assert.ok(error instanceof RangeError, String(error));
      }
    }),
    { seed: testSeed('read response decoder robustness'), numRuns: 2000 },
  );
});
