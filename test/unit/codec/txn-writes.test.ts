import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkTxnWrites, decodeTxnWrites, encodeTxnWrites, txnWriteCount, txnWritesBytes, type TxnWrite } from '../../../src/codec/txn-writes.js';
import { testSeed } from '../../support/seed.js';

const writeArb: fc.Arbitrary<TxnWrite> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: fc.uint8Array({ maxLength: 12 }), value: fc.uint8Array({ maxLength: 30 }) }),
  fc.record({ op: fc.constant('delete' as const), key: fc.uint8Array({ maxLength: 12 }), value: fc.constant(new Uint8Array(0)) }),
);

const plain = (writes: readonly TxnWrite[]) => writes.map((w) => ({ op: w.op, key: Buffer.from(w.key).toString('hex'), value: Buffer.from(w.value).toString('hex') }));

describe('transaction writes codec', () => {
  test('lays a payload out as the byte diagram says', () => {
    const payload = encodeTxnWrites([{ op: 'put', key: Buffer.from('k'), value: Buffer.from('vv') }, { op: 'delete', key: Buffer.from('d'), value: Buffer.alloc(0) }]);
    assert.equal(payload.toString('hex'), '01' + '02000000' + '01' + '01000000' + '02000000' + '6b' + '7676' + '02' + '01000000' + '00000000' + '64');
    assert.equal(txnWriteCount(payload), 2);
  });

  test('round-trips any writes, in order', () => {
    fc.assert(
      fc.property(fc.array(writeArb, { maxLength: 8 }), (writes) => {
        const payload = encodeTxnWrites(writes);
        assert.equal(payload.length, txnWritesBytes(writes));
        assert.equal(checkTxnWrites(payload), undefined);
        const decoded = decodeTxnWrites(payload);
        assert.ok(decoded.ok);
        assert.deepEqual(plain(decoded.writes), plain(writes));
      }),
      { seed: testSeed('txn writes round trip') },
    );
  });

  test('reports damage and never throws on arbitrary bytes', () => {
    const good = encodeTxnWrites([{ op: 'put', key: Buffer.from('key'), value: Buffer.from('value') }]);
    assert.match(checkTxnWrites(good.subarray(0, 3)) ?? '', /shorter than/);
    assert.match(checkTxnWrites(Buffer.concat([Buffer.from([2]), good.subarray(1)])) ?? '', /version 2/);
    assert.match(checkTxnWrites(good.subarray(0, good.length - 1)) ?? '', /cut off/);
    assert.match(checkTxnWrites(Buffer.concat([good, Buffer.from([0])])) ?? '', /after the last write/);
    const badOp = Buffer.from(good);
    badOp[5] = 9;
    assert.match(checkTxnWrites(badOp) ?? '', /unknown op 9/);
    const deleteWithValue = Buffer.from(good);
    deleteWithValue[5] = 2;
    assert.match(checkTxnWrites(deleteWithValue) ?? '', /a delete with a value/);
    const hugeCount = Buffer.from(good);
    hugeCount.writeUInt32LE(0xffff_ffff, 1);
    assert.match(checkTxnWrites(hugeCount) ?? '', /cannot fit/);
    assert.throws(() => encodeTxnWrites([{ op: 'delete', key: Buffer.from('k'), value: Buffer.from('v') }]), RangeError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const decoded = decodeTxnWrites(bytes);
        assert.equal(decoded.ok, checkTxnWrites(bytes) === undefined);
      }),
      { seed: testSeed('txn writes on random bytes'), numRuns: 500 },
    );
  });
});
