import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { crc32c } from '../../../src/codec/crc32c.js';
import {
  decodeIndexFile,
  encodeIndexFile,
  INDEX_FORMAT_VERSION,
  type IndexFileContents,
  type ProducerState,
} from '../../../src/codec/index-file.js';
import { testSeed } from '../../support/seed.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const U32 = 0xffffffff;

const producerArb: fc.Arbitrary<ProducerState> = fc.record(
  {
    producerId: fc.string({ unit: 'binary', maxLength: 16 }),
    sequence: fc.maxSafeNat(),
    firstOffset: fc.maxSafeNat(),
    lastOffset: fc.maxSafeNat(),
    timestamp: fc.maxSafeNat(),
  },
  { noNullPrototype: true },
);

/** Index contents whose entries are what a segment can hold: offsets base + u32, positions u32. */
const indexArb: fc.Arbitrary<IndexFileContents> = fc
  .record({
    baseOffset: fc.nat({ max: MAX_SAFE - U32 }),
    segmentId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => Buffer.from(bytes).toString('hex')),
    nextOffset: fc.maxSafeNat(),
    dataEnd: fc.maxSafeNat(),
    firstTimestamp: fc.maxSafeNat(),
    lastTimestamp: fc.maxSafeNat(),
    entries: fc.array(fc.tuple(fc.nat({ max: U32 }), fc.nat({ max: U32 }), fc.maxSafeNat()), { maxLength: 20 }),
    producers: fc.array(producerArb, { maxLength: 5 }),
  })
  .map(({ entries, baseOffset, ...rest }) => ({
    ...rest,
    baseOffset,
    offsets: Float64Array.from(entries, ([delta]) => baseOffset + delta),
    positions: Float64Array.from(entries, ([, position]) => position),
    timestamps: Float64Array.from(entries, ([, , timestamp]) => timestamp),
    entryCount: entries.length,
  }));

const sample: IndexFileContents = {
  baseOffset: 100,
  segmentId: '00112233445566778899aabbccddeeff',
  nextOffset: 130,
  dataEnd: 4096,
  firstTimestamp: 1_700_000_000_000,
  lastTimestamp: 1_700_000_000_500,
  offsets: [100, 110, 120],
  positions: [64, 1064, 2064],
  timestamps: [1_700_000_000_000, 1_700_000_000_200, 1_700_000_000_400],
  entryCount: 3,
  producers: [{ producerId: 'prödücer-1', sequence: 9, firstOffset: 125, lastOffset: 129, timestamp: 1_700_000_000_500 }],
};

function reasonOf(buf: Buffer): string {
  const result = decodeIndexFile(buf);
  assert.equal(result.ok, false);
  return result.ok ? '' : result.reason;
}

describe('index file codec', () => {
  test('round-trips any index, entries and producers included', () => {
    fc.assert(
      fc.property(indexArb, (index) => {
        const result = decodeIndexFile(encodeIndexFile(index));
        assert.equal(result.ok, true);
        if (!result.ok) return;
        const decoded = result.index;
        assert.equal(decoded.baseOffset, index.baseOffset);
        assert.equal(decoded.segmentId, index.segmentId);
        assert.equal(decoded.nextOffset, index.nextOffset);
        assert.equal(decoded.dataEnd, index.dataEnd);
        assert.equal(decoded.firstTimestamp, index.firstTimestamp);
        assert.equal(decoded.lastTimestamp, index.lastTimestamp);
        assert.equal(decoded.entryCount, index.entryCount);
        assert.deepEqual(Array.from(decoded.offsets), Array.from(index.offsets));
        assert.deepEqual(Array.from(decoded.positions), Array.from(index.positions));
        assert.deepEqual(Array.from(decoded.timestamps), Array.from(index.timestamps));
        assert.deepEqual(decoded.producers, index.producers);
      }),
      { seed: testSeed('index file round trip') },
    );
  });

  test('lays the file out as the documented byte diagram says', () => {
    const buf = encodeIndexFile(sample);
    assert.equal(buf.toString('ascii', 0, 4), 'WIDX');
    assert.equal(buf.readUInt16LE(4), INDEX_FORMAT_VERSION);
    assert.equal(buf.readBigUInt64LE(8), 100n);
    assert.equal(buf.toString('hex', 16, 32), sample.segmentId);
    assert.equal(buf.readBigUInt64LE(32), 130n);
    assert.equal(buf.readBigUInt64LE(40), 4096n);
    assert.equal(buf.readUInt32LE(48), 3);
    assert.equal(buf.readBigUInt64LE(56), 1_700_000_000_000n);
    assert.equal(buf.readBigUInt64LE(64), 1_700_000_000_500n);
    assert.equal(buf.readUInt32LE(72 + 16), 10, 'entry offsets are relative to the base');
    assert.equal(buf.readUInt32LE(72 + 16 + 4), 1064);
    assert.equal(buf.readUInt32LE(72 + 48), 1, 'producer count follows the entries');
    const end = buf.length - 8;
    assert.equal(buf.readUInt32LE(end), crc32c(buf.subarray(0, end)));
    assert.equal(buf.readUInt32LE(end + 4), 0);
  });

  test('reports bad magic', () => {
    const buf = encodeIndexFile(sample);
    buf[0]! ^= 0xff;
    assert.match(reasonOf(buf), /magic/);
  });

  test('reports an unsupported version', () => {
    const buf = encodeIndexFile(sample);
    buf.writeUInt16LE(INDEX_FORMAT_VERSION + 1, 4);
    assert.match(reasonOf(buf), /version/);
  });

  test('reports a checksum mismatch for a changed byte anywhere past the version', () => {
    const encoded = encodeIndexFile(sample);
    for (let i = 6; i < encoded.length - 4; i++) {
      const buf = Buffer.from(encoded);
      buf[i]! ^= 0x10;
      assert.match(reasonOf(buf), /checksum/, `byte ${i}`);
    }
  });

  test('reports truncated input of every length', () => {
    const encoded = encodeIndexFile(sample);
    for (let length = 0; length < encoded.length; length++) {
      const result = decodeIndexFile(encoded.subarray(0, length));
      assert.equal(result.ok, false, `length ${length}`);
    }
  });

  test('reports an entry count that does not fit the file, even with a valid checksum', () => {
    const buf = encodeIndexFile(sample);
    buf.writeUInt32LE(1000, 48);
    const end = buf.length - 8;
    buf.writeUInt32LE(crc32c(buf.subarray(0, end)), end);
    assert.match(reasonOf(buf), /entry count/);
  });

  test('never throws on arbitrary bytes, also with a valid magic, version and checksum', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, stamp) => {
        const buf = Buffer.from(bytes);
        if (stamp && buf.length >= 80) {
          // Past the cheap checks, so that the entry and producer parsing meets the noise.
          buf.writeUInt32LE(0x58444957, 0);
          buf.writeUInt16LE(INDEX_FORMAT_VERSION, 4);
          buf.writeUInt32LE(buf.readUInt32LE(48) % 8, 48);
          const end = buf.length - 8;
          buf.writeUInt32LE(crc32c(buf.subarray(0, end)), end);
        }
        const result = decodeIndexFile(buf);
        assert.equal(typeof result.ok, 'boolean');
      }),
      { seed: testSeed('index file robustness'), numRuns: 1000 },
    );
  });
});
