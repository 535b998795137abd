/**
 * The server's side of the AppendStream codec: the hand-written request decoder reads what the
 * generated encoder writes exactly as the generated decoder does, and the hand-written response
 * encoder writes what the generated decoder reads as the message meant.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Status } from '../../../src/gen/google/rpc/status.js';
import { AppendStreamRequest, AppendStreamResponse, type AppendRequest } from '../../../src/gen/wald/v1/append.js';
import { parseAppendRequest } from '../../../src/server/append-request.js';
import { decodeAppendStreamRequest } from '../../../src/wire/append-stream-request-decoder.js';
import { encodeAppendStreamResponse, type AppendStreamOutcome } from '../../../src/wire/append-stream-response-encoder.js';
import { testSeed } from '../../support/seed.js';

const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const uint64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) }));
const safe = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

const appendRequestArb: fc.Arbitrary<AppendRequest> = fc.record({
  records: fc.array(
    fc.record({
      key: fc.option(bytes(20), { nil: undefined }),
      value: bytes(120),
      headers: fc.dictionary(fc.string({ maxLength: 6 }).filter((n) => n !== '__proto__'), bytes(10), { maxKeys: 3 }),
      // Unknown and negative values too: the decoder passes them on, the server judges them.
      type: fc.oneof(fc.constantFrom(0, 1, 2, 3), fc.integer({ min: -5, max: 100 })),
    }),
    { maxLength: 5 },
  ),
  expectedOffset: fc.option(uint64, { nil: undefined }),
  producerId: fc.oneof(fc.constant(''), fc.string({ maxLength: 30 })),
  sequence: uint64,
  sync: fc.boolean(),
  expectedEpoch: fc.option(uint64, { nil: undefined }),
  minReplicas: fc.nat({ max: 2 ** 32 - 1 }),
});

const requestArb: fc.Arbitrary<AppendStreamRequest> = fc.record({
  requestId: fc.oneof(uint64, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  append: fc.option(appendRequestArb, { nil: undefined }),
  appends: fc.array(appendRequestArb, { maxLength: 5 }),
});

test('the request decoder reads what the generated encoder writes, as the generated decoder does', () => {
  fc.assert(
    fc.property(requestArb, (request) => {
      const wire = Buffer.from(AppendStreamRequest.encode(request).finish());
      assert.deepEqual(decodeAppendStreamRequest(wire), AppendStreamRequest.decode(wire));
    }),
    { seed: testSeed('append stream request decoder'), numRuns: 500 },
  );
});

test('decoded byte fields are views into the message, and an absent value is empty', () => {
  const wire = Buffer.from(
    AppendStreamRequest.encode({
      requestId: 7n,
      append: undefined,
      appends: [{ records: [{ key: Buffer.from('k'), value: Buffer.from('value'), headers: {}, type: 0 }, { key: undefined, value: Buffer.alloc(0), headers: {}, type: 0 }], producerId: '', sequence: 0n, sync: false, minReplicas: 0 }],
    }).finish(),
  );
  const [first, second] = decodeAppendStreamRequest(wire).appends[0]!.records;
  assert.equal(first!.value.buffer, wire.buffer, 'the value is a view');
  assert.equal(first!.value.toString(), 'value');
  assert.equal(second!.key, undefined);
  assert.equal(second!.value.length, 0);
});

test('a header named __proto__ is an own header of the decoded record', () => {
  const wire = Buffer.from(
    AppendStreamRequest.encode({
      requestId: 1n,
      append: undefined,
      appends: [{ records: [{ key: undefined, value: Buffer.from('v'), headers: { ['__proto__']: Buffer.from('p'), a: Buffer.from('b') }, type: 0 }], producerId: '', sequence: 0n, sync: false, minReplicas: 0 }],
    }).finish(),
  );
  const decoded = decodeAppendStreamRequest(wire).appends[0]!;
  const headers = decoded.records[0]!.headers;
  assert.equal(Object.getPrototypeOf(headers), Object.prototype);
  assert.deepEqual(Object.keys(headers).sort(), ['__proto__', 'a']);
  assert.deepEqual(parseAppendRequest(decoded).records[0]!.headers, headers);
});

test('the request decoder throws only RangeError on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (input) => {
      try {
        decodeAppendStreamRequest(Buffer.from(input));
      } catch (error) {
        assert.ok(error instanceof RangeError, String(error));
      }
    }),
    { seed: testSeed('append stream request decoder robustness'), numRuns: 2000 },
  );
});

const outcomeArb: fc.Arbitrary<AppendStreamOutcome> = fc.oneof(
  fc.record({ firstOffset: safe, lastOffset: safe, timestamp: safe, duplicate: fc.boolean() }).map((result) => ({ kind: 'appended' as const, result })),
  fc
    .record({ code: fc.nat({ max: 16 }), message: fc.string({ maxLength: 20 }) })
    .map((s) => ({ kind: 'error' as const, status: Status.encode({ ...s, details: [] }).finish() })),
);

/** The generated model of an outcome. */
function modelOf(outcome: AppendStreamOutcome): NonNullable<AppendStreamResponse['result']> {
  if (outcome.kind === 'error') return { $case: 'error', value: Status.decode(outcome.status) };
  const { firstOffset, lastOffset, timestamp, duplicate } = outcome.result;
  return { $case: 'appended', value: { firstOffset: BigInt(firstOffset), lastOffset: BigInt(lastOffset), timestamp: BigInt(timestamp), duplicate } };
}

test('the response encoder writes what the generated decoder reads as the message meant', () => {
  fc.assert(
    fc.property(
      fc.oneof(uint64, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
      fc.option(outcomeArb, { nil: undefined }),
      fc.array(outcomeArb, { maxLength: 6 }),
      (requestId, single, results) => {
        const decoded = AppendStreamResponse.decode(encodeAppendStreamResponse(requestId, single, results));
        const expected: AppendStreamResponse = {
          requestId,
          result: single === undefined ? undefined : modelOf(single),
          results: results.map((outcome) => {
            const model = modelOf(outcome);
            return { result: model.$case === 'appended' ? { $case: 'appended', value: model.value } : { $case: 'error', value: model.value } };
          }),
        };
        assert.deepEqual(decoded, expected);
      },
    ),
    { seed: testSeed('append stream response encoder'), numRuns: 500 },
  );
});
