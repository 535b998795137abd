/** The epoch-history file: round trips, and every damaged or out-of-order file is reported, never thrown. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeEpochHistory, encodeEpochHistory, type EpochStart } from '../../../src/codec/epoch-history-file.js';
import { testSeed } from '../../support/seed.js';

const history = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 2 ** 20 }), fc.nat({ max: 1000 })), { maxLength: 20 })
  .map((steps) => {
    const entries: EpochStart[] = [];
    let epoch = 0;
    let startOffset = 0;
    for (const [epochStep, offsetStep] of steps) {
      epoch += epochStep;
      startOffset += offsetStep;
      entries.push({ epoch, startOffset });
    }
    return entries;
  });

test('an epoch history round trips, with its replicated flag', () => {
  fc.assert(
    fc.property(history, fc.boolean(), (entries, isReplicated) => {
      assert.deepEqual(decodeEpochHistory(encodeEpochHistory({ entries, isReplicated })), { ok: true, file: { entries, isReplicated } });
    }),
    { seed: testSeed('epoch history round trip') },
  );
  const big = { entries: [{ epoch: 2 ** 48 - 1, startOffset: 2 ** 53 - 1 }], isReplicated: false };
  assert.deepEqual(decodeEpochHistory(encodeEpochHistory(big)), { ok: true, file: big });
});

test('a history with a floor is version 2 and round trips; without one it stays version 1', () => {
  const entries = [{ epoch: 1, startOffset: 3 }];
  const plain = encodeEpochHistory({ entries, isReplicated: false });
  assert.equal(plain.readUInt16LE(4), 1, 'no floor: version 1, as before');
  const withFloor = encodeEpochHistory({ entries, isReplicated: true, floor: 2 ** 48 - 1 });
  assert.equal(withFloor.readUInt16LE(4), 2);
  assert.deepEqual(decodeEpochHistory(withFloor), { ok: true, file: { entries, isReplicated: true, floor: 2 ** 48 - 1 } });
  for (let bit = 0; bit < withFloor.length * 8; bit++) {
    const damaged = Buffer.from(withFloor);
    damaged[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(decodeEpochHistory(damaged).ok, false, `bit ${bit}`);
  }
});

test('every flipped bit, every cut, and entries out of order are reported as not ok', () => {
  const file = encodeEpochHistory({ entries: [{ epoch: 2, startOffset: 10 }, { epoch: 5, startOffset: 10 }], isReplicated: true });
  for (let bit = 0; bit < file.length * 8; bit++) {
    const damaged = Buffer.from(file);
    damaged[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(decodeEpochHistory(damaged).ok, false, `bit ${bit}`);
  }
  for (let length = 0; length < file.length; length++) assert.equal(decodeEpochHistory(file.subarray(0, length)).ok, false, `cut at ${length}`);
  for (const entries of [
    [{ epoch: 5, startOffset: 1 }, { epoch: 5, startOffset: 2 }],
    [{ epoch: 5, startOffset: 3 }, { epoch: 6, startOffset: 2 }],
    [{ epoch: 0, startOffset: 0 }],
    [{ epoch: 2 ** 48, startOffset: 0 }],
  ]) {
    assert.equal(decodeEpochHistory(encodeEpochHistory({ entries, isReplicated: false })).ok, false, JSON.stringify(entries));
  }
});
