import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { crc32c, crc32cRange, NATIVE_THRESHOLD_BYTES } from '../../../src/codec/crc32c.js';
import { testSeed } from '../../support/seed.js';

test('computes the CRC-32C check value of "123456789"', () => {
  assert.equal(crc32c(Buffer.from('123456789', 'ascii')), 0xe3069283);
});

test('matches the iSCSI (RFC 3720 B.4) vectors, so it is Castagnoli and not the IEEE polynomial', () => {
  const ascending = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const descending = Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i));
  assert.equal(crc32c(Buffer.alloc(32, 0x00)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.equal(crc32c(ascending), 0x46dd794e);
  assert.equal(crc32c(descending), 0x113fdb5c);
});

test('returns 0 for no bytes, and continuing with no bytes keeps the value', () => {
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  assert.equal(crc32c(Buffer.alloc(0), 0xe3069283), 0xe3069283);
});

test('continuing over a split input equals the one-shot checksum', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.nat(), (bytes, splitSeed) => {
      const split = bytes.length === 0 ? 0 : splitSeed % (bytes.length + 1);
      const oneShot = crc32c(bytes);
      const continued = crc32c(bytes.subarray(split), crc32c(bytes.subarray(0, split)));
      assert.equal(continued, oneShot);
    }),
    { seed: testSeed('crc32c split') },
  );
});

test('continuing over many chunks equals the one-shot checksum of a plain Uint8Array', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 16 }), (chunks) => {
      const whole = Uint8Array.from(chunks.flatMap((c) => [...c]));
      let running: number | undefined;
      for (const chunk of chunks) running = crc32c(chunk, running);
      assert.equal(running ?? 0, crc32c(whole));
    }),
    { seed: testSeed('crc32c chunks') },
  );
});

test('the JavaScript table path and the native path agree at every size around the threshold', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 2 * NATIVE_THRESHOLD_BYTES }), fc.nat({ max: 64 }), fc.nat(), (bytes, start, previous) => {
      const from = Math.min(start, bytes.length);
      assert.equal(crc32cRange(bytes, from, bytes.length, previous), nativeCrc32c(bytes.subarray(from), previous));
    }),
    { seed: testSeed('crc32c js vs native'), numRuns: 2000 },
  );
});
