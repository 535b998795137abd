import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RECORD_TYPE_NAMES, type WalRecord } from '../../../src/codec/record.js';
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
    type: fc.constantFrom(...RECORD_TYPE_NAMES),
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
    frames: [],
    segmentHeader: Buffer.alloc(0),
    epoch: 0n,
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

test('an empty key and a high watermark of 0 are sent as set fields (proto3 optional), absent ones not at all', () => {
  const withKeys: WalRecord[] = [
    { offset: 0, timestamp: 5, type: 'put', key: Buffer.alloc(0), value: Buffer.from('a'), headers: {} },
    { offset: 1, timestamp: 5, type: 'put', key: undefined, value: Buffer.from('b'), headers: {} },
  ];
  const decoded = TailWalResponse.decode(encodeTailWalResponse(withKeys, { highWatermark: 0, firstOffset: 0, nextOffset: 2 }));
  assert.deepEqual(decoded.records[0]!.key, Buffer.alloc(0));
  assert.equal(decoded.records[1]!.key, undefined);
  assert.equal(decoded.highWatermark, 0n);
  const ours = decodeTailWalResponse(encodeTailWalResponse(withKeys, { highWatermark: 0, firstOffset: 0, nextOffset: 2 }));
  assert.deepEqual(ours.records.map((r) => r.key), [Buffer.alloc(0), undefined]);
  assert.equal(ours.highWatermark, 0);
  const none = encodeTailWalResponse([], { highWatermark: -1, firstOffset: 0, nextOffset: 0 });
  assert.equal(none.length, 0, 'a heartbeat of an empty log is the empty message');
  assert.equal(TailWalResponse.decode(none).highWatermark, undefined);
});

test('the decoder skips the retired wrapper fields (Record 1, TailWalResponse 2) of a pre-AIP-149 server', () => {
  // TailWalResponse { records: [Record { key (1): BytesValue { value: "k" }, value: "v", type: PUT }], high_watermark (2): UInt64Value { value: 3 } }
  const record = Buffer.from([0x0a, 0x03, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76, 0x20, 0x01]);
  const old = Buffer.concat([Buffer.from([0x0a, record.length]), record, Buffer.from([0x12, 0x02, 0x08, 0x03])]);
  const batch = decodeTailWalResponse(old);
  assert.equal(batch.highWatermark, undefined);
  assert.equal(batch.records.length, 1);
  assert.equal(batch.records[0]!.key, undefined);
  assert.equal(batch.records[0]!.value.toString(), 'v');
});
