import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { crc32c } from '../../../src/codec/crc32c.js';
import {
  decodeSegmentHeader,
  encodeSegmentHeader,
  SEGMENT_FORMAT_VERSION,
  SEGMENT_HEADER_BYTES,
  type SegmentHeader,
} from '../../../src/codec/segment-header.js';
import { testSeed } from '../../support/seed.js';

const headerArb: fc.Arbitrary<SegmentHeader> = fc.record(
  {
    formatVersion: fc.constant(SEGMENT_FORMAT_VERSION),
    baseOffset: fc.maxSafeNat(),
    segmentId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => Buffer.from(bytes).toString('hex')),
    createdAtMs: fc.maxSafeNat(),
    frameSeed: fc.nat({ max: 0xffff_ffff }),
  },
  { noNullPrototype: true },
);

const sample: SegmentHeader = {
  formatVersion: SEGMENT_FORMAT_VERSION,
  baseOffset: 42,
  segmentId: '00112233445566778899aabbccddeeff',
  createdAtMs: 1_700_000_000_000,
  frameSeed: 0x1234_5678,
};

describe('segment header codec', () => {
  test('round-trips any header, also from inside a larger buffer', () => {
    fc.assert(
      fc.property(headerArb, fc.nat({ max: 32 }), (header, prefix) => {
        const encoded = encodeSegmentHeader(header);
        assert.equal(encoded.length, SEGMENT_HEADER_BYTES);
        assert.deepEqual(decodeSegmentHeader(encoded), { ok: true, header });
        const larger = new Uint8Array(prefix + SEGMENT_HEADER_BYTES + 16).fill(0xee);
        larger.set(encoded, prefix);
        assert.deepEqual(decodeSegmentHeader(larger.subarray(prefix)), { ok: true, header });
      }),
      { seed: testSeed('segment header round trip') },
    );
  });

  test('lays the header out as the documented byte diagram says', () => {
    const encoded = encodeSegmentHeader(sample);
    assert.equal(encoded.toString('ascii', 0, 4), 'WALD');
    assert.equal(encoded.readUInt16LE(4), SEGMENT_FORMAT_VERSION);
    assert.equal(encoded.readUInt16LE(6), 0);
    assert.equal(encoded.readBigUInt64LE(8), 42n);
    assert.equal(encoded.toString('hex', 16, 32), sample.segmentId);
    assert.equal(encoded.readBigUInt64LE(32), 1_700_000_000_000n);
    assert.equal(encoded.readUInt32LE(40), 0x1234_5678, 'the frame seed');
    assert.ok(encoded.subarray(44, 60).every((b) => b === 0), 'reserved bytes are zero');
    assert.equal(encoded.readUInt32LE(60), crc32c(encoded.subarray(0, 60)));
  });

  test('a compacted segment carries the flag and its next offset; unknown flags are refused', () => {
    const compacted: SegmentHeader = { ...sample, compactedNextOffset: 1042 };
    const encoded = encodeSegmentHeader(compacted);
    assert.equal(encoded.readUInt16LE(6), 1, 'flag bit 0: compacted');
    assert.equal(encoded.readBigUInt64LE(44), 1042n, 'the next offset at byte 44');
    assert.ok(encoded.subarray(52, 60).every((b) => b === 0), 'reserved bytes are zero');
    assert.deepEqual(decodeSegmentHeader(encoded), { ok: true, header: compacted });
    const unknown = encodeSegmentHeader(sample);
    unknown.writeUInt16LE(2, 6);
    unknown.writeUInt32LE(crc32c(unknown.subarray(0, 60)), 60);
    const refused = decodeSegmentHeader(unknown);
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.reason, /flags/);
    const below = encodeSegmentHeader({ ...sample, compactedNextOffset: 41 });
    assert.equal(decodeSegmentHeader(below).ok, false, 'a next offset below the base offset');
  });

  test('reports bad magic', () => {
    for (let i = 0; i < 4; i++) {
      const encoded = encodeSegmentHeader(sample);
      encoded[i]! ^= 0x20;
      const result = decodeSegmentHeader(encoded);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reason, /magic/);
    }
  });

  test('reports a checksum mismatch for any other changed byte', () => {
    for (let i = 4; i < SEGMENT_HEADER_BYTES; i++) {
      const encoded = encodeSegmentHeader(sample);
      encoded[i]! ^= 0x01;
      const result = decodeSegmentHeader(encoded);
      assert.equal(result.ok, false, `byte ${i}`);
      if (!result.ok) assert.match(result.reason, /checksum/, `byte ${i}`);
    }
  });

  test('reports an unsupported format version even with a valid checksum', () => {
    const encoded = encodeSegmentHeader({ ...sample, formatVersion: SEGMENT_FORMAT_VERSION + 1 });
    const result = decodeSegmentHeader(encoded);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.reason, /version/);
  });

  test('reports truncated input of every length below the header size', () => {
    const encoded = encodeSegmentHeader(sample);
    for (let length = 0; length < SEGMENT_HEADER_BYTES; length++) {
      const result = decodeSegmentHeader(encoded.subarray(0, length));
      assert.equal(result.ok, false, `length ${length}`);
      if (!result.ok) assert.match(result.reason, /short/);
    }
  });

  test('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.boolean(), (bytes, withMagic) => {
        const buf = Buffer.from(bytes);
        if (withMagic && buf.length >= 4) buf.write('WALD', 0, 'ascii');
        const result = decodeSegmentHeader(buf);
        assert.equal(typeof result.ok, 'boolean');
      }),
      { seed: testSeed('segment header robustness'), numRuns: 500 },
    );
  });
});
