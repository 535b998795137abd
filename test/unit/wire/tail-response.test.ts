import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { WalRecord } from '../../../src/engine/types.js';
import { TailWalResponse } from '../../../src/gen/wald/v1/tail.js';
import { optionalOffset, toRecordMessage } from '../../../src/server/record-message.js';
import { decodeTailWalResponse } from '../../../src/wire/tail-response-decoder.js';
import { encodeTailWalResponse, type TailResponsePosition } from '../../../src/wire/tail-response-encoder.js';
import { testSeed } from '../../support/seed.js';

const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const offset = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

function recordArb(headerName: fc.Arbitrary<string>): fc.Arbitrary<WalRecord> {
  return fc.record({
    offset,
    timestamp: offset,
    type: fc.constantFrom('put' as const, 'delete' as const, 'checkpoint' as const),
    key: fc.option(bytes(20), { nil: undefined }),
    value: bytes(200),
    headers: fc.dictionary(headerName, bytes(10), { maxKeys: 3 }).map((h) => h as Record<string, Buffer>),
  });
}

const position: fc.Arbitrary<TailResponsePosition> = fc.record({
  highWatermark: fc.oneof(fc.constant(-1), fc.constant(0), offset),
  firstOffset: offset,
  nextOffset: offset,
});

/** What the generated codec produces for the same response (the reference). */
function generatedMessage(records: readonly WalRecord[], at: TailResponsePosition): TailWalResponse {
  return {
    records: records.map(toRecordMessage),
    highWatermark: optionalOffset(at.highWatermark),
    firstOffset: BigInt(at.firstOffset),
    nextOffset: BigInt(at.nextOffset),
  };
}

function plain(record: WalRecord): unknown {
  return { ...record, key: record.key === undefined ? undefined : Buffer.from(record.key), value: Buffer.from(record.value), headers: { ...record.headers } };
}

test('hand-encoded responses decode, with the generated decoder, to what the generated encoder sends', () => {
  // The generated decoder fills maps by assignment, so it cannot hold a header named __proto__.
  const name = fc.string({ maxLength: 6 }).filter((n) => n !== '__proto__');
  fc.assert(
    fc.property(fc.array(recordArb(name), { maxLength: 8 }), position, (records, at) => {
      const ours = TailWalResponse.decode(encodeTailWalResponse(records, at));
      const reference = TailWalResponse.decode(TailWalResponse.encode(generatedMessage(records, at)).finish());
      assert.deepEqual(ours, reference);
    }),
    { seed: testSeed('tail response encoder'), numRuns: 500 },
  );
});

test('the decoder reads what the generated encoder writes, and round-trips its own encoding', () => {
  const name = fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__proto__'));
  fc.assert(
    fc.property(fc.array(recordArb(name), { maxLength: 8 }), position, (records, at) => {
      const expected = {
        records: records.map(plain),
        highWatermark: at.highWatermark < 0 ? undefined : at.highWatermark,
        firstOffset: at.firstOffset,
        nextOffset: at.nextOffset,
      };
      const fromOurs = decodeTailWalResponse(encodeTailWalResponse(records, at));
      assert.deepEqual({ ...fromOurs, records: fromOurs.records.map(plain) }, expected);
      const safe = records.every((r) => !Object.keys(r.headers).includes('__proto__'));
      if (safe) {
        const fromGenerated = decodeTailWalResponse(Buffer.from(TailWalResponse.encode(generatedMessage(records, at)).finish()));
        assert.deepEqual({ ...fromGenerated, records: fromGenerated.records.map(plain) }, expected);
      }
    }),
    { seed: testSeed('tail response decoder'), numRuns: 500 },
  );
});

test('the decoder throws only RangeError on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
      try {
        decodeTailWalResponse(Buffer.from(input));
      } catch (error) {
        assert.ok(error instanceof RangeError, String(error));
      }
    }),
    { seed: testSeed('tail response decoder robustness'), numRuns: 2000 },
  );
});
