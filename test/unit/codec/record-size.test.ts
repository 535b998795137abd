/**
 * `recordSizeBytes` is the one size of a record that every `maxBytes` counts, and the server relies
 * on it being an upper bound of every form of the record: its frame on disk, and its share of an
 * encoded TailWal or Read response (which then stays within the sum plus the response's own
 * fields, `TAIL_RESPONSE_POSITION_BYTES`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodedRecordBytes } from '../../../src/codec/frame.js';
import { HEADER_ALLOWANCE_BYTES, RECORD_ALLOWANCE_BYTES, recordSizeBytes } from '../../../src/codec/record-size.js';
import type { WalRecord } from '../../../src/codec/record.js';
import { ReadResponse } from '../../../src/gen/wald/v1/read.js';
import { optionalOffset, toRecordMessage } from '../../../src/server/record-message.js';
import { encodeTailWalResponse, TAIL_RESPONSE_POSITION_BYTES } from '../../../src/wire/tail-response-encoder.js';
import { testSeed } from '../../support/seed.js';

/** Lengths around the varint boundaries (1, 2 and 3 bytes) and small ones. */
const length = fc.oneof(fc.nat({ max: 40 }), fc.constantFrom(127, 128, 16_383, 16_384), fc.integer({ min: 100, max: 20_000 }));
const bytes = length.map((n) => Buffer.alloc(n, 7));
const offset = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const headerName = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 40 })).filter((n) => n !== '__proto__');

const record: fc.Arbitrary<WalRecord> = fc.record({
  offset,
  timestamp: offset,
  type: fc.constantFrom('put' as const, 'delete' as const, 'checkpoint' as const),
  key: fc.option(bytes, { nil: undefined }),
  value: bytes,
  headers: fc.dictionary(headerName, bytes, { maxKeys: 24 }).map((h) => h as Record<string, Buffer>),
});

const sum = (records: readonly WalRecord[]): number => records.reduce((total, r) => total + recordSizeBytes(r), 0);

test('recordSizeBytes is the data plus a fixed allowance per record and per header', () => {
  const headers = { 'ü': Buffer.alloc(3), b: Buffer.alloc(0) };
  const sized: WalRecord = { offset: 1, timestamp: 2, type: 'put', key: Buffer.alloc(5), value: Buffer.alloc(10), headers };
  assert.equal(recordSizeBytes(sized), RECORD_ALLOWANCE_BYTES + 5 + 10 + 2 * HEADER_ALLOWANCE_BYTES + 2 + 3 + 1);
  assert.equal(recordSizeBytes({ ...sized, key: undefined, headers: {} }), RECORD_ALLOWANCE_BYTES + 10);
});

test('recordSizeBytes bounds the bytes a record takes in its frame and in a response', () => {
  // A response with nothing but the record: its position fields are all left out at 0 / unset.
  const bare = { highWatermark: -1, firstOffset: 0, nextOffset: 0 };
  fc.assert(
    fc.property(record, (r) => {
      const size = recordSizeBytes(r);
      assert.ok(encodedRecordBytes(r) <= size, 'frame');
      assert.ok(encodeTailWalResponse([r], bare).length <= size, 'TailWalResponse');
      assert.ok(ReadResponse.encode({ records: [toRecordMessage(r)], nextOffset: 0n, firstOffset: 0n }).finish().length <= size, 'ReadResponse');
    }),
    { seed: testSeed('record size: one record'), numRuns: 500 },
  );
});

test('a TailWal or Read response encodes to at most its records by recordSizeBytes plus TAIL_RESPONSE_POSITION_BYTES', () => {
  const position = fc.record({ highWatermark: fc.oneof(fc.constant(-1), offset), firstOffset: offset, nextOffset: offset });
  fc.assert(
    fc.property(fc.array(record, { maxLength: 6 }), position, (records, at) => {
      const bound = sum(records) + TAIL_RESPONSE_POSITION_BYTES;
      const tail = encodeTailWalResponse(records, at).length;
      assert.ok(tail <= bound, `TailWalResponse of ${tail} bytes, bound ${bound}`);
      const read = ReadResponse.encode({
        records: records.map(toRecordMessage),
        nextOffset: BigInt(at.nextOffset),
        highWatermark: optionalOffset(at.highWatermark),
        firstOffset: BigInt(at.firstOffset),
      }).finish().length;
      assert.ok(read <= bound, `ReadResponse of ${read} bytes, bound ${bound}`);
    }),
    { seed: testSeed('record size: responses'), numRuns: 300 },
  );
});
