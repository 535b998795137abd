import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RECORD_TYPE_NAMES, type WalRecord } from '../../../src/codec/record.js';
import { ReadResponse } from '../../../src/gen/wald/v1/read.js';
import { optionalOffset, toRecordMessage } from '../../../src/server/record-message.js';
import { decodeReadResponse } from '../../../src/wire/read-response-decoder.js';
import { encodeReadResponse, type ReadResponsePosition } from '../../../src/wire/read-response-encoder.js';
import { testSeed } from '../../support/seed.js';

const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const offset = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constant(Number.MAX_SAFE_INTEGER));
// Header names of one- and multi-byte UTF-8 characters, the empty name included.
const headerName = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ maxLength: 4, unit: 'grapheme' }), fc.constant(''));

const recordArb: fc.Arbitrary<WalRecord> = fc.record({
  offset,
  timestamp: offset,
  type: fc.constantFrom(...RECORD_TYPE_NAMES),
  key: fc.option(bytes(20), { nil: undefined }),
  // Values past 127 bytes too (lengths of two varint bytes).
  value: fc.oneof(bytes(200), bytes(300).map((b) => Buffer.concat([b, Buffer.alloc(200)]))),
  headers: fc.dictionary(headerName, bytes(10), { maxKeys: 3 }).map((h) => h as Record<string, Buffer>),
});

const position: fc.Arbitrary<ReadResponsePosition> = fc.record({
  nextOffset: offset,
  highWatermark: fc.oneof(fc.constant(-1), fc.constant(0), offset),
  firstOffset: offset,
});

/** The message the generated codec would encode for the same response (the reference). */
function generatedMessage(records: readonly WalRecord[], at: ReadResponsePosition): ReadResponse {
  return {
    records: records.map(toRecordMessage),
    nextOffset: BigInt(at.nextOffset),
    highWatermark: optionalOffset(at.highWatermark),
    firstOffset: BigInt(at.firstOffset),
  };
}

test('hand-encoded Read responses are the generated encoder’s bytes, and both decoders read them back', () => {
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 8 }), position, (records, at) => {
      const ours = encodeReadResponse(records, at);
      const reference = generatedMessage(records, at);
      assert.deepEqual(ours, Buffer.from(ReadResponse.encode(reference).finish()));
      assert.deepEqual(ReadResponse.decode(ours), ReadResponse.decode(ReadResponse.encode(reference).finish()));
      const page = decodeReadResponse(ours);
      assert.equal(page.records.length, records.length);
      assert.equal(page.nextOffset, at.nextOffset);
      assert.equal(page.firstOffset, at.firstOffset);
      assert.equal(page.highWatermark, at.highWatermark < 0 ? undefined : at.highWatermark);
    }),
    { seed: testSeed('read response encoder'), numRuns: 1000 },
  );
});

test('an empty key and a high watermark of 0 are set fields (proto3 optional); an empty page at offset 0 of an empty log is the empty message', () => {
  const records: WalRecord[] = [
    { offset: 0, timestamp: 5, type: 'put', key: Buffer.alloc(0), value: Buffer.alloc(0), headers: {} },
    { offset: 1, timestamp: 5, type: 'delete', key: undefined, value: Buffer.from('b'), headers: { '': Buffer.alloc(0) } },
  ];
  const decoded = ReadResponse.decode(encodeReadResponse(records, { nextOffset: 2, highWatermark: 0, firstOffset: 0 }));
  assert.deepEqual(decoded.records[0]!.key, Buffer.alloc(0));
  assert.equal(decoded.records[1]!.key, undefined);
  assert.deepEqual(decoded.records[1]!.headers, { '': Buffer.alloc(0) });
  assert.equal(decoded.highWatermark, 0n);
  const none = encodeReadResponse([], { nextOffset: 0, highWatermark: -1, firstOffset: 0 });
  assert.equal(none.length, 0);
  assert.equal(ReadResponse.decode(none).highWatermark, undefined);
});
