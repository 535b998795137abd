import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { crc32c } from '../../../src/codec/crc32c.js';
import {
  checkFrame,
  decodeProducer,
  decodeRecords,
  encodedRecordBytes,
  encodeFrame,
  encodeFrameOfRecordBytes,
  FRAME_HEADER_BYTES,
  recordBounds,
  stampFrame,
  type ProducerStamp,
} from '../../../src/codec/frame.js';
import { RECORD_TYPE_NAMES, type AppendRecord, type WalRecord } from '../../../src/codec/record.js';
import { testSeed } from '../../support/seed.js';

const MAX_RECORDS = 8;
/** Largest base offset such that every record offset of a frame stays a safe integer. */
const MAX_BASE_OFFSET = Number.MAX_SAFE_INTEGER - MAX_RECORDS;

const headerName = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constant('__proto__'));

const recordArb: fc.Arbitrary<AppendRecord> = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 24 }), { nil: undefined }),
  value: fc.uint8Array({ maxLength: 48 }),
  headers: fc.option(fc.dictionary(headerName, fc.uint8Array({ maxLength: 12 }), { maxKeys: 4 }), { nil: undefined }),
  type: fc.option(fc.constantFrom(...RECORD_TYPE_NAMES), { nil: undefined }),
});

const producerArb: fc.Arbitrary<ProducerStamp | undefined> = fc.option(
  fc.record({ producerId: fc.string({ unit: 'binary', maxLength: 12 }), sequence: fc.maxSafeNat() }, { noNullPrototype: true }),
  { nil: undefined },
);

const stampArb = fc.record({
  baseOffset: fc.nat({ max: MAX_BASE_OFFSET }),
  timestamp: fc.maxSafeNat(),
  leaderEpoch: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  syncLag: fc.nat({ max: 0xffff_ffff }),
});

interface Batch {
  readonly records: AppendRecord[];
  readonly producer: ProducerStamp | undefined;
  readonly baseOffset: number;
  readonly timestamp: number;
  readonly leaderEpoch: number;
  readonly syncLag: number;
}

const batchArb: fc.Arbitrary<Batch> = fc
  .tuple(fc.array(recordArb, { minLength: 1, maxLength: MAX_RECORDS }), producerArb, stampArb)
  .map(([records, producer, stamp]) => ({ records, producer, ...stamp }));

function payloadBytes(records: readonly AppendRecord[]): number {
  return records.reduce((sum, record) => sum + encodedRecordBytes(record), 0);
}

function stampedFrame(batch: Batch): Buffer {
  const frame = encodeFrame(batch.records, payloadBytes(batch.records), batch.producer);
  stampFrame(frame, batch.baseOffset, batch.timestamp, batch.leaderEpoch, batch.syncLag, 0);
  return frame;
}

/** What decoding `records` stamped at `baseOffset` / `timestamp` must give back. */
function expectedRecords(records: readonly AppendRecord[], baseOffset: number, timestamp: number): WalRecord[] {
  return records.map((record, i) => ({
    offset: baseOffset + i,
    timestamp,
    type: record.type ?? 'put',
    key: record.key === undefined ? undefined : Buffer.from(record.key),
    value: Buffer.from(record.value),
    headers: Object.fromEntries(Object.entries(record.headers ?? {}).map(([name, value]) => [name, Buffer.from(value)])),
  }));
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

describe('frame codec', () => {
  test('round-trips any batch through encode, stamp, check and decode, at any aligned position', () => {
    fc.assert(
      fc.property(batchArb, fc.nat({ max: 4 }), fc.uint8Array({ maxLength: 24 }), (batch, prefixWords, suffix) => {
        const frame = stampedFrame(batch);
        const prefix = Buffer.alloc(prefixWords * 8, 0xa5);
        const buf = Buffer.concat([prefix, frame, suffix]);
        const position = prefix.length;
        const producerBytes = batch.producer === undefined ? 0 : 10 + Buffer.byteLength(batch.producer.producerId, 'utf8');
        const length = FRAME_HEADER_BYTES + producerBytes + payloadBytes(batch.records);

        const check = checkFrame(buf, position, buf.length);
        assert.deepEqual(check, {
          kind: 'ok',
          header: {
            length,
            recordCount: batch.records.length,
            baseOffset: batch.baseOffset,
            timestamp: batch.timestamp,
            leaderEpoch: batch.leaderEpoch,
            syncLag: batch.syncLag,
            hasProducer: batch.producer !== undefined,
          },
        });
        if (check.kind !== 'ok') return;
        assert.deepEqual(decodeProducer(buf, position, check.header), batch.producer);
        const out: WalRecord[] = [];
        const added = decodeRecords(buf, position, check.header, 0, Number.MAX_SAFE_INTEGER, out);
        assert.equal(added, batch.records.length);
        assert.deepStrictEqual(out, expectedRecords(batch.records, batch.baseOffset, batch.timestamp));
      }),
      { seed: testSeed('frame round trip') },
    );
  });

  test('keeps absent and empty keys apart, and empty values and empty header values', () => {
    const records: AppendRecord[] = [
      { value: new Uint8Array(0) },
      { key: new Uint8Array(0), value: new Uint8Array(0) },
      { key: Buffer.from('k'), value: Buffer.from('v'), headers: { 'ünï-€-🦀': new Uint8Array(0), '': Buffer.from('x') } },
    ];
    const frame = encodeFrame(records, payloadBytes(records));
    stampFrame(frame, 7, 1234, 0, 0, 0);
    const check = checkFrame(frame, 0, frame.length);
    assert.equal(check.kind, 'ok');
    if (check.kind !== 'ok') return;
    const out: WalRecord[] = [];
    assert.equal(decodeRecords(frame, 0, check.header, 0, 100, out), 3);
    assert.equal(out[0]!.key, undefined);
    assert.deepStrictEqual(out[1]!.key, Buffer.alloc(0));
    assert.deepStrictEqual(out[2]!.headers, { 'ünï-€-🦀': Buffer.alloc(0), '': Buffer.from('x') });
    assert.deepStrictEqual(
      out.map((r) => r.offset),
      [7, 8, 9],
    );
  });

  test('lays a frame out as the documented byte diagram says, 8-aligned and zero-padded', () => {
    fc.assert(
      fc.property(batchArb, (batch) => {
        const unstamped = encodeFrame(batch.records, payloadBytes(batch.records), batch.producer);
        const length = unstamped.readUInt32LE(0);
        assert.equal(unstamped.length, align8(length));
        assert.equal(unstamped.length % 8, 0);
        assert.ok(unstamped.subarray(length).every((b) => b === 0), 'padding is zero before stamping');

        const frame = stampedFrame(batch);
        assert.equal(frame.length, align8(length));
        assert.ok(frame.subarray(length).every((b) => b === 0), 'padding is zero after stamping');
        assert.equal(frame.readUInt32LE(4), crc32c(frame.subarray(8, length)), 'crc covers bytes 8..length');
        assert.equal(frame[8], 1, 'type is records');
        assert.equal(frame[9], batch.producer === undefined ? 0 : 1, 'flag bit 0 is the producer section');
        assert.equal(frame.readUInt16LE(10), Math.floor(batch.leaderEpoch / 2 ** 32), 'bytes 10..11 hold the high 16 bits of the epoch');
        assert.equal(frame.readUInt32LE(12), batch.records.length);
        assert.equal(Number(frame.readBigUInt64LE(16)), batch.baseOffset);
        assert.equal(Number(frame.readBigUInt64LE(24)), batch.timestamp);
        assert.equal(frame.readUInt32LE(32), batch.leaderEpoch % 2 ** 32, 'bytes 32..36 hold its low 32 bits');
        assert.equal(frame.readUInt32LE(36), batch.syncLag);
        if (batch.producer !== undefined) {
          assert.equal(Number(frame.readBigUInt64LE(40)), batch.producer.sequence);
          const idBytes = frame.readUInt16LE(48);
          assert.equal(frame.toString('utf8', 50, 50 + idBytes), batch.producer.producerId);
        }
      }),
      { seed: testSeed('frame layout') },
    );
  });

  test('reports zeros as the unwritten end and a short tail as incomplete', () => {
    const zeros = Buffer.alloc(64);
    assert.deepEqual(checkFrame(zeros, 0, 64), { kind: 'zero' });
    assert.deepEqual(checkFrame(zeros, 60, 64), { kind: 'zero' });
    const records: AppendRecord[] = [{ value: Buffer.from('hello') }];
    const frame = encodeFrame(records, payloadBytes(records));
    stampFrame(frame, 0, 1, 0, 0, 0);
    const length = frame.readUInt32LE(0);
    for (let end = 1; end < length; end++) {
      const check = checkFrame(frame, 0, end);
      assert.equal(check.kind, 'incomplete', `cut at ${end}`);
    }
  });

  test('never reports ok with the original header after any single byte of a frame changes', () => {
    fc.assert(
      fc.property(batchArb, fc.integer({ min: 1, max: 255 }), fc.uint8Array({ maxLength: 48 }), (batch, mask, suffix) => {
        const frame = stampedFrame(batch);
        const length = frame.readUInt32LE(0);
        const original = checkFrame(frame, 0, frame.length);
        assert.equal(original.kind, 'ok');
        if (original.kind !== 'ok') return;
        const buf = Buffer.concat([frame, suffix]);
        for (let i = 0; i < length; i++) {
          buf[i]! ^= mask;
          const check = checkFrame(buf, 0, buf.length);
          buf[i]! ^= mask;
          const unchanged = check.kind === 'ok' && isDeepStrictEqual(check.header, original.header);
          assert.ok(!unchanged, `byte ${i} xor ${mask} went unnoticed`);
          assert.ok(['invalid', 'incomplete', 'zero', 'ok'].includes(check.kind));
        }
      }),
      { seed: testSeed('frame byte flip'), numRuns: 60 },
    );
  });

  test('checkFrame never throws on arbitrary bytes at arbitrary positions and ends', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.nat(), fc.nat(), fc.boolean(), (bytes, positionSeed, endSeed, plausibleLength) => {
        const buf = Buffer.from(bytes);
        const position = positionSeed % (buf.length + 1);
        const end = position + (endSeed % (buf.length - position + 1));
        if (plausibleLength && end - position >= 8) {
          // A length that fits makes the checksum and the type checks run, not just the bounds check.
          buf.writeUInt32LE(FRAME_HEADER_BYTES + ((end - position) % 64), position);
        }
        const check = checkFrame(buf, position, end);
        assert.ok(['ok', 'zero', 'incomplete', 'invalid'].includes(check.kind));
        if (check.kind === 'ok') {
          assert.ok(check.header.length >= FRAME_HEADER_BYTES && position + check.header.length <= end);
          assert.ok(check.header.recordCount > 0);
        }
      }),
      { seed: testSeed('checkFrame robustness'), numRuns: 1000 },
    );
  });

  test('decodeRecords and decodeProducer never throw on a checksummed frame with an arbitrary payload', () => {
    const arb = fc
      .record({
        hasProducer: fc.boolean(),
        count: fc.integer({ min: 1, max: 0xffffffff }),
        payload: fc.uint8Array({ maxLength: 200 }),
        position: fc.nat({ max: 15 }),
        fromOffset: fc.nat({ max: 20 }),
        limit: fc.integer({ min: 1, max: 20 }),
      });
    fc.assert(
      fc.property(arb, ({ hasProducer, count, payload, position, fromOffset, limit }) => {
        const length = FRAME_HEADER_BYTES + payload.length;
        const buf = Buffer.alloc(position + align8(length), 0x5a);
        buf.fill(0, position, position + FRAME_HEADER_BYTES);
        buf.writeUInt32LE(length, position);
        buf[position + 8] = 1;
        buf[position + 9] = hasProducer ? 1 : 0;
        buf.writeUInt32LE(count, position + 12);
        buf.set(payload, position + FRAME_HEADER_BYTES);
        buf.fill(0, position + length);
        buf.writeUInt32LE(crc32c(buf.subarray(position + 8, position + length)), position + 4);
        const check = checkFrame(buf, position, buf.length);
        if (check.kind !== 'ok') {
          // Only a producer section that does not fit its frame is refused before decoding.
          assert.ok(hasProducer, `unexpected ${check.kind}`);
          return;
        }
        decodeProducer(buf, position, check.header);
        const out: WalRecord[] = [];
        const result = decodeRecords(buf, position, check.header, fromOffset, limit, out);
        if (typeof result === 'number') {
          assert.equal(result, out.length);
          assert.ok(result <= limit);
        } else {
          assert.equal(typeof result, 'string');
        }
      }),
      { seed: testSeed('decodeRecords robustness'), numRuns: 1000 },
    );
  });

  test('recordBounds gives each record\'s bytes: any run of them copied into a frame of its own decodes to those records', () => {
    fc.assert(
      fc.property(batchArb, fc.nat(), fc.nat(), (batch, a, b) => {
        const frame = stampedFrame(batch);
        const check = checkFrame(frame, 0, frame.length);
        assert.equal(check.kind, 'ok');
        if (check.kind !== 'ok') return;
        const bounds: number[] = [];
        assert.equal(recordBounds(frame, 0, check.header, bounds), undefined);
        assert.equal(bounds.length, batch.records.length + 1);
        assert.equal(bounds[bounds.length - 1], check.header.length, 'the last bound is the payload end');
        const from = a % batch.records.length;
        const to = from + 1 + (b % (batch.records.length - from));
        const run = encodeFrameOfRecordBytes(frame.subarray(bounds[from]!, bounds[to]!), to - from);
        assert.equal(run.length % 8, 0);
        stampFrame(run, batch.baseOffset + from, batch.timestamp, batch.leaderEpoch, 0, 7);
        const runCheck = checkFrame(run, 0, run.length, 7);
        assert.equal(runCheck.kind, 'ok');
        if (runCheck.kind !== 'ok') return;
        assert.equal(runCheck.header.hasProducer, false);
        const out: WalRecord[] = [];
        assert.equal(decodeRecords(run, 0, runCheck.header, 0, Infinity, out), to - from);
        assert.ok(isDeepStrictEqual(out, expectedRecords(batch.records.slice(from, to), batch.baseOffset + from, batch.timestamp)));
      }),
      { seed: testSeed('record bounds and run frames') },
    );
  });

  test('decodeRecords skips records below fromOffset, stops after limit, and appends to out', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: MAX_RECORDS }),
        fc.nat({ max: 1_000_000 }),
        fc.nat({ max: MAX_RECORDS + 4 }),
        fc.integer({ min: 1, max: MAX_RECORDS + 2 }),
        (records, baseOffset, fromDelta, limit) => {
          const frame = stampedFrame({ records, producer: undefined, baseOffset, timestamp: 5, leaderEpoch: 0, syncLag: 0 });
          const check = checkFrame(frame, 0, frame.length);
          assert.equal(check.kind, 'ok');
          if (check.kind !== 'ok') return;
          // fromOffset ranges from below the frame to past its end.
          const fromOffset = Math.max(0, baseOffset - 2 + fromDelta);
          const sentinel = expectedRecords([{ value: Buffer.from('earlier') }], 0, 0)[0]!;
          const out: WalRecord[] = [sentinel];
          const added = decodeRecords(frame, 0, check.header, fromOffset, limit, out);
          const expected = expectedRecords(records, baseOffset, 5)
            .filter((r) => r.offset >= fromOffset)
            .slice(0, limit);
          assert.equal(added, expected.length);
          assert.deepStrictEqual(out, [sentinel, ...expected]);
        },
      ),
      { seed: testSeed('decodeRecords fromOffset and limit') },
    );
  });
});
