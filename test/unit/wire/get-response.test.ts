import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GetResponse } from '../../../src/gen/wald/v1/state.js';
import { decodeGetResponse } from '../../../src/wire/get-response-decoder.js';
import { testSeed } from '../../support/seed.js';

const offset = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

test('the Get response decoder reads what the generated encoder writes, the value a view into the message', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), offset, offset, (value, at, timestamp) => {
      const bytes = Buffer.from(GetResponse.encode({ value: Buffer.from(value), offset: BigInt(at), timestamp: BigInt(timestamp) }).finish());
      const decoded = decodeGetResponse(bytes);
      assert.deepEqual({ ...decoded, value: Buffer.from(decoded.value) }, { value: Buffer.from(value), offset: at, timestamp });
      if (value.length > 0) assert.equal(decoded.value.buffer, bytes.buffer, 'no copy');
    }),
    { seed: testSeed('get response decoder'), numRuns: 300 },
  );
});

test('the Get response decoder skips fields it does not know, and refuses a truncated message', () => {
  const known = Buffer.from(GetResponse.encode({ value: Buffer.from('v'), offset: 7n, timestamp: 9n }).finish());
  // Field 15, a varint, then field 16, length-delimited: added by a later server.
  const unknown = Buffer.from([0x78, 0x05, 0x82, 0x01, 0x02, 0xaa, 0xbb]);
  assert.deepEqual(decodeGetResponse(Buffer.concat([unknown, known])), { value: Buffer.from('v'), offset: 7, timestamp: 9 });
  assert.throws(() => decodeGetResponse(known.subarray(0, 2)), RangeError);
});
