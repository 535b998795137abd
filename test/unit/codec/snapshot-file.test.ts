import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { crc32c } from '../../../src/codec/crc32c.js';
import {
  decodeSnapshotFile,
  encodeEndedTxnValue,
  decodeSnapshotHeader,
  encodeSnapshotEntryHeader,
  entryKey,
  entryValue,
  encodeSnapshotHeader,
  encodeSnapshotTrailer,
  SNAPSHOT_ENTRY_HEADER_BYTES,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_BYTES,
  SnapshotEntryDecoder,
  type SnapshotEntry,
  type SnapshotHeader,
} from '../../../src/codec/snapshot-file.js';
import { encodeTxnWrites } from '../../../src/codec/txn-writes.js';
import { formatSnapshotId, parseSnapshotId, snapshotFileName, type SnapshotIdParts } from '../../../src/codec/snapshot-id.js';
import { testSeed } from '../../support/seed.js';

interface PlainEntry {
  readonly kind: SnapshotEntry['kind'];
  readonly key: Buffer;
  readonly value: Buffer;
  readonly offset: number;
  readonly timestamp: number;
}

/** A whole snapshot file built from the codec's pieces, as the writer lays it out. */
function buildFile(header: SnapshotHeader, entries: readonly PlainEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const fixed = Buffer.alloc(SNAPSHOT_ENTRY_HEADER_BYTES);
    encodeSnapshotEntryHeader(fixed, 0, e.kind, e.key.length, e.value.length, e.offset, e.timestamp);
    parts.push(fixed, e.key, e.value);
  }
  const plain = Buffer.concat(parts);
  const body = header.isCompressed ? gzipSync(plain) : plain;
  const stored = Buffer.concat([encodeSnapshotHeader(header), body]);
  return Buffer.concat([stored, encodeSnapshotTrailer(body.length, createHash('sha256').update(stored).digest())]);
}

function copyEntry(entry: SnapshotEntry): PlainEntry {
  return { kind: entry.kind, key: Buffer.from(entryKey(entry)), value: Buffer.from(entryValue(entry)), offset: entry.offset, timestamp: entry.timestamp };
}

const idPartsArb: fc.Arbitrary<SnapshotIdParts> = fc.record({
  walOffset: fc.maxSafeNat(),
  createdMs: fc.nat({ max: 10 ** 15 - 1 }),
  nonce: fc.nat({ max: 0xffff_ffff }),
}, { noNullPrototype: true });

/** A header and entries that obey the format's rules. */
const fileArb: fc.Arbitrary<{ header: SnapshotHeader; entries: PlainEntry[] }> = fc
  .record({
    type: fc.constantFrom('full' as const, 'incremental' as const, 'point' as const),
    isCompressed: fc.boolean(),
    walOffset: fc.integer({ min: 1, max: 1_000_000 }),
    createdMs: fc.nat({ max: 10 ** 15 - 1 }),
    nonce: fc.nat({ max: 0xffff_ffff }),
    keys: fc.uniqueArray(fc.uint8Array({ maxLength: 6 }), { maxLength: 12, selector: (k) => Buffer.from(k).toString('hex') }),
    values: fc.array(fc.uint8Array({ maxLength: 20 }), { minLength: 12, maxLength: 12 }),
    kinds: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    offsets: fc.array(fc.nat({ max: 999_999 }), { minLength: 12, maxLength: 12 }),
    inDoubt: fc.uniqueArray(fc.nat({ max: 999_999 }), { maxLength: 4 }),
    ended: fc.uniqueArray(fc.tuple(fc.nat({ max: 999_999 }), fc.boolean()), { maxLength: 4, selector: ([offset]) => offset }),
  })
  .filter((f) => f.type !== 'point' || f.keys.length > 0)
  .map((f) => {
    const baseOffset = f.type === 'incremental' ? Math.floor(f.walOffset / 2) : 0;
    const sorted = f.keys.map((k) => Buffer.from(k)).sort(Buffer.compare);
    const keys = f.type === 'point' ? sorted.slice(0, 1) : sorted;
    const entries: PlainEntry[] = keys.map((key, i) => {
      const isTombstone = f.type === 'incremental' && f.kinds[i]!;
      return {
        kind: isTombstone ? 'tombstone' : 'put',
        key,
        value: isTombstone ? Buffer.alloc(0) : Buffer.from(f.values[i]!),
        offset: baseOffset + (f.offsets[i]! % (f.walOffset - baseOffset)),
        timestamp: f.offsets[i]! * 3,
      };
    });
    if (f.type !== 'point') {
      // Transaction entries: offsets below the wal offset (not bounded by a base's), each kind in offset order.
      const below = (offsets: number[]) => [...new Set(offsets.map((o) => o % f.walOffset))].sort((a, b) => a - b);
      for (const offset of below(f.inDoubt)) {
        entries.push({ kind: 'txn_in_doubt', key: Buffer.from(`t${offset}`), value: encodeTxnWrites([{ op: 'put', key: Buffer.from('k'), value: Buffer.from([offset & 0xff]) }]), offset, timestamp: offset });
      }
      const ends = new Map(f.ended.map(([offset, isCommitted]) => [offset % f.walOffset, isCommitted]));
      for (const offset of below([...ends.keys()])) {
        const prepareOffset = offset === 0 ? -1 : offset - 1;
        entries.push({ kind: 'txn_ended', key: Buffer.from(`e${offset}`), value: encodeEndedTxnValue(ends.get(offset)! ? 'committed' : 'aborted', prepareOffset), offset, timestamp: offset });
      }
    }
    const header: SnapshotHeader = {
      type: f.type,
      isCompressed: f.isCompressed,
      walOffset: f.walOffset,
      putCount: entries.filter((e) => e.kind === 'put').length,
      tombstoneCount: entries.filter((e) => e.kind === 'tombstone').length,
      txnCount: entries.filter((e) => e.kind === 'txn_in_doubt' || e.kind === 'txn_ended').length,
      createdMs: f.createdMs,
      nonce: f.nonce,
      base: f.type === 'incremental' ? { walOffset: baseOffset, createdMs: 0, nonce: 7 } : undefined,
    };
    return { header, entries };
  });

const sample: SnapshotHeader = {
  type: 'incremental',
  isCompressed: true,
  walOffset: 1000,
  putCount: 2,
  tombstoneCount: 1,
  txnCount: 0,
  createdMs: 1_700_000_000_000,
  nonce: 0xdead_beef,
  base: { walOffset: 900, createdMs: 1_699_999_999_000, nonce: 0x1234_5678 },
};

function headerReason(buf: Buffer): string {
  const result = decodeSnapshotHeader(buf);
  assert.equal(result.ok, false);
  return result.ok ? '' : result.reason;
}

function fileReason(file: Buffer): string {
  const result = decodeSnapshotFile(file);
  assert.equal(result.ok, false);
  return result.ok ? '' : result.reason;
}

describe('snapshot file codec', () => {
  test('lays the header out as the documented byte diagram says', () => {
    const buf = encodeSnapshotHeader(sample);
    assert.equal(buf.length, SNAPSHOT_HEADER_BYTES);
    assert.equal(buf.toString('ascii', 0, 4), 'WSNP');
    assert.equal(buf.readUInt16LE(4), SNAPSHOT_FORMAT_VERSION);
    assert.equal(buf[6], 2, 'type: incremental');
    assert.equal(buf[7], 1, 'flags: gzip');
    assert.equal(buf.readBigUInt64LE(8), 1000n);
    assert.equal(buf.readBigUInt64LE(16), 2n);
    assert.equal(buf.readBigUInt64LE(24), 1n);
    assert.equal(buf.readBigUInt64LE(32), 1_700_000_000_000n);
    assert.equal(buf.readUInt32LE(40), 0xdead_beef);
    assert.equal(buf.readUInt32LE(44), 0x1234_5678);
    assert.equal(buf.readBigUInt64LE(48), 900n);
    assert.equal(buf.readBigUInt64LE(56), 1_699_999_999_000n);
    assert.equal(buf.readUInt32LE(64), 0);
    assert.equal(buf.readUInt32LE(68), crc32c(buf.subarray(0, 68)));
  });

  test('lays entries and the trailer out as documented', () => {
    const header: SnapshotHeader = { ...sample, isCompressed: false, putCount: 1, tombstoneCount: 0 };
    const file = buildFile(header, [{ kind: 'put', key: Buffer.from('ab'), value: Buffer.from('xyz'), offset: 950, timestamp: 77 }]);
    const entry = file.subarray(SNAPSHOT_HEADER_BYTES);
    assert.equal(entry[0], 1, 'kind: put');
    assert.equal(entry.readUInt32LE(1), 2);
    assert.equal(entry.readUInt32LE(5), 3);
    assert.equal(entry.readBigUInt64LE(9), 950n);
    assert.equal(entry.readBigUInt64LE(17), 77n);
    assert.equal(entry.toString('latin1', 25, 30), 'abxyz');
    const trailer = file.subarray(file.length - 40);
    assert.equal(trailer.readBigUInt64LE(0), 30n);
    assert.equal(trailer.toString('hex', 8), createHash('sha256').update(file.subarray(0, file.length - 40)).digest('hex'));
  });

  test('round-trips any header', () => {
    fc.assert(
      fc.property(fileArb, ({ header }) => {
        const decoded = decodeSnapshotHeader(encodeSnapshotHeader(header));
        assert.deepEqual(decoded, { ok: true, value: header });
      }),
      { seed: testSeed('snapshot header round trip') },
    );
  });

  test('round-trips any file, compressed or not, and reports its checksum', () => {
    fc.assert(
      fc.property(fileArb, ({ header, entries }) => {
        const file = buildFile(header, entries);
        const decoded: PlainEntry[] = [];
        const result = decodeSnapshotFile(file, (e) => decoded.push(copyEntry(e)));
        assert.equal(result.ok, true, result.ok ? '' : result.reason);
        if (!result.ok) return;
        assert.deepEqual(decoded, entries);
        assert.deepEqual(result.value.header, header);
        assert.equal(result.value.checksum, file.toString('hex', file.length - 32));
      }),
      { seed: testSeed('snapshot file round trip') },
    );
  });

  test('decodes a body split anywhere as it decodes the whole', () => {
    fc.assert(
      fc.property(fileArb, fc.array(fc.nat(), { maxLength: 6 }), ({ header, entries }, cuts) => {
        const file = buildFile({ ...header, isCompressed: false }, entries);
        const body = file.subarray(SNAPSHOT_HEADER_BYTES, file.length - 40);
        const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
        const decoder = new SnapshotEntryDecoder({ ...header, isCompressed: false });
        const decoded: PlainEntry[] = [];
        let start = 0;
        for (const end of [...points, body.length]) {
          assert.equal(decoder.push(body.subarray(start, end), (e) => decoded.push(copyEntry(e))), undefined);
          start = end;
        }
        assert.equal(decoder.finish(), undefined);
        assert.deepEqual(decoded, entries);
      }),
      { seed: testSeed('snapshot body split') },
    );
  });

  test('fails on a flipped bit at every byte of a file', () => {
    for (const isCompressed of [false, true]) {
      const header: SnapshotHeader = { ...sample, isCompressed };
      const entries: PlainEntry[] = [
        { kind: 'put', key: Buffer.from('alpha'), value: Buffer.from('one'), offset: 901, timestamp: 5 },
        { kind: 'tombstone', key: Buffer.from('beta'), value: Buffer.alloc(0), offset: 950, timestamp: 6 },
        { kind: 'put', key: Buffer.from('gamma'), value: Buffer.from('three'), offset: 999, timestamp: 7 },
      ];
      const file = buildFile(header, entries);
      assert.equal(decodeSnapshotFile(file).ok, true);
      for (let i = 0; i < file.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const damaged = Buffer.from(file);
          damaged[i]! ^= bit;
          assert.equal(decodeSnapshotFile(damaged).ok, false, `byte ${i} bit ${bit} (compressed: ${isCompressed})`);
        }
      }
    }
  });

  test('never throws on arbitrary bytes, random or mutated from a valid file', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        assert.equal(decodeSnapshotFile(bytes).ok, false);
        decodeSnapshotHeader(bytes);
      }),
      { seed: testSeed('snapshot decoder on random bytes'), numRuns: 500 },
    );
    fc.assert(
      fc.property(fileArb, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), ({ header, entries }, edits, cut) => {
        const file = buildFile(header, entries);
        for (const [at, byte] of edits) file[at % file.length] = byte;
        const result = decodeSnapshotFile(file.subarray(0, file.length - (cut % 3 === 0 ? cut % file.length : 0)));
        if (result.ok) assert.equal(result.value.checksum.length, 64);
      }),
      { seed: testSeed('snapshot decoder on mutated files'), numRuns: 500 },
    );
  });

  test('never throws on arbitrary body bytes behind a valid header, whatever the chunking', () => {
    fc.assert(
      fc.property(fileArb, fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 50 }), ({ header }, body, chunk) => {
        const decoder = new SnapshotEntryDecoder(header, 64);
        const step = chunk + 1;
        for (let p = 0; p < body.length; p += step) decoder.push(Buffer.from(body.subarray(p, p + step)), () => {});
        decoder.finish();
      }),
      { seed: testSeed('snapshot entry decoder on random bytes'), numRuns: 500 },
    );
  });

  test('reports entries that break the header or the order', () => {
    const full: SnapshotHeader = { ...sample, type: 'full', isCompressed: false, putCount: 2, tombstoneCount: 0, base: undefined };
    const put = (key: string, offset = 10): PlainEntry => ({ kind: 'put', key: Buffer.from(key), value: Buffer.from('v'), offset, timestamp: 1 });
    assert.match(fileReason(buildFile(full, [put('b'), put('a')])), /out of order/);
    assert.match(fileReason(buildFile(full, [put('a'), put('a')])), /out of order/);
    assert.match(fileReason(buildFile(full, [put('a'), put('b', 1000)])), /not below the snapshot's wal offset/);
    assert.match(fileReason(buildFile(full, [put('a')])), /holds 1 puts/);
    assert.match(fileReason(buildFile(full, [put('a'), put('b'), put('c')])), /more puts/);
    const tombstone: PlainEntry = { kind: 'tombstone', key: Buffer.from('b'), value: Buffer.alloc(0), offset: 10, timestamp: 1 };
    assert.match(fileReason(buildFile(full, [put('a'), tombstone])), /tombstone in a full snapshot/);
    const incremental: SnapshotHeader = { ...sample, isCompressed: false, putCount: 1, tombstoneCount: 1 };
    assert.match(fileReason(buildFile(incremental, [put('a', 950), { ...tombstone, offset: 899 }])), /below the base's wal offset/);
    assert.match(fileReason(buildFile(incremental, [put('a', 950), { ...tombstone, offset: 950, value: Buffer.from('x') }])), /tombstone with a value/);
  });

  test('reads version 1 files (no transaction entries) and writes version 2', () => {
    const header: SnapshotHeader = { ...sample, type: 'full', isCompressed: false, putCount: 1, tombstoneCount: 0, base: undefined };
    const file = buildFile(header, [{ kind: 'put', key: Buffer.from('a'), value: Buffer.from('v'), offset: 3, timestamp: 1 }]);
    assert.equal(file.readUInt16LE(4), 2);
    file.writeUInt16LE(1, 4);
    file.writeUInt32LE(crc32c(file.subarray(0, 68)), 68);
    const stored = file.subarray(0, file.length - 40);
    createHash('sha256').update(stored).digest().copy(file, file.length - 32);
    const result = decodeSnapshotFile(file);
    assert.equal(result.ok, true, result.ok ? '' : result.reason);
    assert.equal(result.ok && result.value.header.txnCount, 0);
  });

  test('reports transaction entries out of place or malformed', () => {
    const txnHeader = (txnCount: number, putCount = 0): SnapshotHeader => ({ ...sample, type: 'full', isCompressed: false, putCount, tombstoneCount: 0, txnCount, base: undefined });
    const writes = encodeTxnWrites([{ op: 'put', key: Buffer.from('k'), value: Buffer.from('v') }]);
    const inDoubt = (offset: number): PlainEntry => ({ kind: 'txn_in_doubt', key: Buffer.from(`t${offset}`), value: writes, offset, timestamp: 1 });
    const ended = (offset: number, prepareOffset = offset - 1): PlainEntry => ({ kind: 'txn_ended', key: Buffer.from(`e${offset}`), value: encodeEndedTxnValue('committed', prepareOffset), offset, timestamp: 1 });
    const put: PlainEntry = { kind: 'put', key: Buffer.from('a'), value: Buffer.from('v'), offset: 5, timestamp: 1 };
    assert.equal(decodeSnapshotFile(buildFile(txnHeader(3, 1), [put, inDoubt(4), inDoubt(9), ended(2)])).ok, true);
    assert.match(fileReason(buildFile(txnHeader(1, 1), [inDoubt(4), put])), /key entry after the transactions/);
    assert.match(fileReason(buildFile(txnHeader(2), [ended(2), inDoubt(4)])), /in-doubt transaction after an ended one/);
    assert.match(fileReason(buildFile(txnHeader(2), [inDoubt(9), inDoubt(4)])), /out of order/);
    assert.match(fileReason(buildFile(txnHeader(1), [inDoubt(1000)])), /not below the snapshot's wal offset/);
    assert.match(fileReason(buildFile(txnHeader(1), [{ ...inDoubt(4), value: Buffer.from('junk') }])), /writes do not decode/);
    assert.match(fileReason(buildFile(txnHeader(1), [{ ...ended(4), value: Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0]) }])), /malformed ended/);
    assert.match(fileReason(buildFile(txnHeader(1), [ended(4, 4)])), /not before its end/);
    assert.match(fileReason(buildFile(txnHeader(2), [inDoubt(4)])), /holds 1 transactions, the header says 2/);
    assert.match(fileReason(buildFile(txnHeader(1), [inDoubt(4), inDoubt(5)])), /more transactions/);
    assert.throws(() => encodeSnapshotHeader({ ...sample, type: 'point', putCount: 1, tombstoneCount: 0, txnCount: 1, base: undefined }), RangeError);
  });

  test('reports a cut-off entry, bad magic, version, type and flags', () => {
    const decoder = new SnapshotEntryDecoder({ ...sample, isCompressed: false });
    assert.equal(decoder.push(Buffer.alloc(SNAPSHOT_ENTRY_HEADER_BYTES - 1), () => {}), undefined);
    assert.match(decoder.finish() ?? '', /ends inside entry 0/);
    const withByte = (at: number, value: number): Buffer => {
      const buf = encodeSnapshotHeader(sample);
      buf[at] = value;
      buf.writeUInt32LE(crc32c(buf.subarray(0, 68)), 68);
      return buf;
    };
    assert.match(headerReason(withByte(0, 0)), /magic/);
    assert.match(headerReason(withByte(4, SNAPSHOT_FORMAT_VERSION + 1)), /version/);
    assert.match(headerReason(withByte(6, 9)), /unknown snapshot type/);
    assert.match(headerReason(withByte(7, 2)), /unknown flags/);
    const version1 = withByte(4, 1);
    version1[64] = 1;
    version1.writeUInt32LE(crc32c(version1.subarray(0, 68)), 68);
    assert.match(headerReason(version1), /reserved/);
    assert.match(headerReason(withByte(6, 1)), /no tombstones/);
    const buf = encodeSnapshotHeader(sample);
    buf[10]! ^= 1;
    assert.match(headerReason(buf), /header checksum/);
  });

  test('refuses to encode a header that breaks the rules', () => {
    assert.throws(() => encodeSnapshotHeader({ ...sample, type: 'full' }), RangeError);
    assert.throws(() => encodeSnapshotHeader({ ...sample, base: undefined }), RangeError);
    assert.throws(() => encodeSnapshotHeader({ ...sample, type: 'point', tombstoneCount: 0, base: undefined }), RangeError);
    assert.throws(() => encodeSnapshotHeader({ ...sample, base: { walOffset: 1001, createdMs: 0, nonce: 0 } }), RangeError);
    assert.throws(() => encodeSnapshotHeader({ ...sample, createdMs: 10 ** 15 }), RangeError);
  });

  test('snapshot ids sort by wal offset, then creation time, and parse back', () => {
    fc.assert(
      fc.property(idPartsArb, idPartsArb, (a, b) => {
        assert.deepEqual(parseSnapshotId(formatSnapshotId(a)), a);
        const byParts = a.walOffset - b.walOffset || a.createdMs - b.createdMs || a.nonce - b.nonce;
        const byText = formatSnapshotId(a) < formatSnapshotId(b) ? -1 : formatSnapshotId(a) > formatSnapshotId(b) ? 1 : 0;
        assert.equal(byText, Math.sign(byParts));
      }),
      { seed: testSeed('snapshot id order') },
    );
    assert.equal(formatSnapshotId({ walOffset: 1048, createdMs: 1_700_000_000_000, nonce: 0xab }), '00000000000000001048-001700000000000-000000ab');
    assert.equal(snapshotFileName('x'), 'x.snap');
    assert.equal(parseSnapshotId('00000000000000001048-001700000000000-000000AB'), undefined);
    assert.equal(parseSnapshotId('1048-1700000000000-ab'), undefined);
  });
});
