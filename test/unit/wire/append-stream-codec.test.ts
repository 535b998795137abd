import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { AppendRecord } from '../../../src/codec/record.js';
import { AppendStreamRequest, AppendStreamResponse, type AppendResponse } from '../../../src/gen/wald/v1/append.js';
import { Status } from '../../../src/gen/google/rpc/status.js';
import { RecordType } from '../../../src/gen/wald/v1/record.js';
import { encodeAppendStreamRequest, type WireAppend } from '../../../src/wire/append-stream-request-encoder.js';
import { decodeAppendStreamResponse, type AppendOutcome } from '../../../src/wire/append-stream-response-decoder.js';
import { WIRE_RECORD_TYPES } from '../../../src/wire/wire-record-type.js';
import { testSeed } from '../../support/seed.js';

const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const offset = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

const recordArb: fc.Arbitrary<AppendRecord> = fc.record(
  {
    key: fc.option(bytes(20), { nil: undefined }),
    value: bytes(200),
    headers: fc.option(fc.dictionary(fc.string({ maxLength: 6 }).filter((n) => n !== '__proto__'), bytes(10), { maxKeys: 3 }), { nil: undefined }),
    type: fc.option(fc.constantFrom('put' as const, 'delete' as const), { nil: undefined }),
  },
  { requiredKeys: ['value'] },
);

const appendArb: fc.Arbitrary<WireAppend> = fc.record({
  records: fc.array(recordArb, { maxLength: 5 }),
  expectedOffset: fc.option(offset, { nil: undefined }),
  producerId: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
  sequence: fc.option(offset, { nil: undefined }),
  sync: fc.option(fc.boolean(), { nil: undefined }),
  expectedEpoch: fc.option(offset, { nil: undefined }),
  minReplicas: fc.option(fc.nat({ max: 2 ** 32 - 1 }), { nil: undefined }),
});

/** The message the hand-written encoder means, as the generated codec models it. */
function expectedRequest(requestId: number, appends: readonly WireAppend[]): AppendStreamRequest {
  return AppendStreamRequest.fromPartial({
    requestId: BigInt(requestId),
    appends: appends.map((a) => ({
      records: a.records.map((r) => ({
        key: r.key === undefined ? undefined : Buffer.from(r.key),
        value: Buffer.from(r.value),
        headers: Object.fromEntries(Object.entries(r.headers ?? {}).map(([n, v]) => [n, Buffer.from(v)])),
        type: r.type === 'delete' ? WIRE_RECORD_TYPES.delete : RecordType.RECORD_TYPE_UNSPECIFIED,
      })),
      expectedOffset: a.expectedOffset === undefined ? undefined : BigInt(a.expectedOffset),
      producerId: a.producerId ?? '',
      sequence: BigInt(a.sequence ?? 0),
      sync: a.sync ?? false,
      expectedEpoch: a.expectedEpoch === undefined ? undefined : BigInt(a.expectedEpoch),
      minReplicas: a.minReplicas ?? 0,
    })),
  });
}

test('hand-encoded AppendStream requests decode, with the generated decoder, to the message meant', () => {
  fc.assert(
    fc.property(offset, fc.array(appendArb, { maxLength: 6 }), (requestId, appends) => {
      const decoded = AppendStreamRequest.decode(encodeAppendStreamRequest(requestId, appends));
      assert.deepEqual(decoded, expectedRequest(requestId, appends));
    }),
    { seed: testSeed('append stream request encoder'), numRuns: 500 },
  );
});

test('the encoder writes an expected_offset of 0 and an empty key (proto3 optional)', () => {
  const decoded = AppendStreamRequest.decode(encodeAppendStreamRequest(1, [{ records: [{ key: Buffer.alloc(0), value: Buffer.from('v') }], expectedOffset: 0 }]));
  assert.equal(decoded.appends[0]!.expectedOffset, 0n);
  assert.deepEqual(decoded.appends[0]!.records[0]!.key, Buffer.alloc(0));
});

const ackArb: fc.Arbitrary<AppendResponse> = fc.record({
  firstOffset: offset.map(BigInt),
  lastOffset: offset.map(BigInt),
  timestamp: offset.map(BigInt),
  duplicate: fc.boolean(),
});
const statusArb: fc.Arbitrary<Status> = fc.record({ code: fc.nat({ max: 16 }), message: fc.string({ maxLength: 20 }) }).map((s) => ({ ...s, details: [] }));
type ResultValue = NonNullable<AppendStreamResponse['result']>;
const resultArb: fc.Arbitrary<ResultValue> = fc.oneof(
  ackArb.map((value) => ({ $case: 'appended' as const, value })),
  statusArb.map((value) => ({ $case: 'error' as const, value })),
);

function expectedOutcome(result: ResultValue): unknown {
  if (result.$case === 'appended') {
    const { firstOffset, lastOffset, timestamp, duplicate } = result.value;
    return { kind: 'appended', firstOffset: Number(firstOffset), lastOffset: Number(lastOffset), timestamp: Number(timestamp), duplicate };
  }
  return { kind: 'error', status: Buffer.from(Status.encode(result.value).finish()) };
}

function plainOutcome(outcome: AppendOutcome | undefined): unknown {
  return outcome?.kind === 'error' ? { kind: 'error', status: Buffer.from(outcome.status) } : outcome;
}

test('the response decoder reads what the generated encoder writes', () => {
  fc.assert(
    fc.property(offset, fc.option(resultArb, { nil: undefined }), fc.array(resultArb, { maxLength: 6 }), (requestId, result, results) => {
      const message: AppendStreamResponse = {
        requestId: BigInt(requestId),
        result,
        results: results.map((r) => ({ result: r.$case === 'appended' ? { $case: 'appended', value: r.value } : { $case: 'error', value: r.value } })),
      };
      const decoded = decodeAppendStreamResponse(Buffer.from(AppendStreamResponse.encode(message).finish()));
      assert.equal(decoded.requestId, requestId);
      assert.deepEqual(plainOutcome(decoded.result), result === undefined ? undefined : expectedOutcome(result));
      assert.deepEqual(decoded.results.map(plainOutcome), results.map(expectedOutcome));
    }),
    { seed: testSeed('append stream response decoder'), numRuns: 500 },
  );
});

test('the response decoder throws only RangeError on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (input) => {
      try {
        decodeAppendStreamResponse(Buffer.from(input));
      } catch (error) {
        assert.ok(error instanceof RangeError, String(error));
      }
    }),
    { seed: testSeed('append stream response decoder robustness'), numRuns: 2000 },
  );
});
