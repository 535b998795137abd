/**
 * KeyTable against a `Map`: random adds and removes of keys whose hashes are drawn from a few
 * values (so that probe runs are long, wrap around the end of the table and cross each other)
 * must leave every key findable and every removed one gone, through growth of the table.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hashKey, KeyTable, type KeyedSlots } from '../../../src/state/key-table.js';
import { testSeed } from '../../support/seed.js';

/** Slots holding one-byte keys, with hashes set by the test. */
class Slots implements KeyedSlots {
  readonly hashes = new Int32Array(256);
  readonly keys = new Uint8Array(256);

  hashOf(slot: number): number {
    return this.hashes[slot]!;
  }

  keyEquals(slot: number, bytes: Uint8Array, start: number, length: number): boolean {
    return length === 1 && bytes[start] === this.keys[slot];
  }
}

describe('KeyTable', () => {
  test('finds every key added and none removed, whatever the collisions', () => {
    const opArb = fc.record({ key: fc.integer({ min: 0, max: 255 }), isAdd: fc.boolean() });
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 3000, size: 'large' }), fc.constantFrom(1, 3, 16, 1 << 30), fc.integer(), (ops, hashSpread, hashBase) => {
        const slots = new Slots();
        const table = new KeyTable(slots);
        const model = new Map<number, number>();
        // Hashes near the top of the table's range make runs wrap around its end.
        const hashOf = (key: number): number => (hashBase + ((key * 2_654_435_761) % hashSpread)) | 0;
        for (const { key, isAdd } of ops) {
          const bytes = Uint8Array.of(key);
          const hash = hashOf(key);
          const found = table.find(bytes, 0, 1, hash);
          assert.equal(found, model.get(key) ?? -1, `key ${key}`);
          if (isAdd && found < 0) {
            // Slot numbers differ from keys, as in a state.
            const slot = 255 - key;
            slots.hashes[slot] = hash;
            slots.keys[slot] = key;
            table.add(slot, hash);
            model.set(key, slot);
          } else if (!isAdd && found >= 0) {
            table.remove(found);
            model.delete(key);
          }
          assert.equal(table.size, model.size);
        }
        for (let key = 0; key < 256; key++) assert.equal(table.find(Uint8Array.of(key), 0, 1, hashOf(key)), model.get(key) ?? -1, `key ${key} at the end`);
      }),
      { seed: testSeed('key table'), numRuns: 100 },
    );
  });

  test('keys added in bulk are found like keys added one by one, through removals and growth', () => {
    const batchArb = fc.record({ keys: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 120 }), removals: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }) });
    fc.assert(
      fc.property(fc.array(batchArb, { maxLength: 8 }), fc.constantFrom(1, 7, 1 << 30), (batches, hashSpread) => {
        const slots = new Slots();
        const table = new KeyTable(slots);
        const model = new Map<number, number>();
        const hashOf = (key: number): number => ((key * 2_654_435_761) % hashSpread) | 0;
        for (const { keys, removals } of batches) {
          const added: number[] = [];
          for (const key of keys) {
            if (model.has(key)) continue;
            const slot = 255 - key;
            slots.hashes[slot] = hashOf(key);
            slots.keys[slot] = key;
            model.set(key, slot);
            added.push(slot);
          }
          table.addAll(added);
          for (const key of removals) {
            const slot = model.get(key);
            if (slot === undefined) continue;
            table.remove(slot);
            model.delete(key);
          }
          assert.equal(table.size, model.size);
          for (let key = 0; key < 256; key++) assert.equal(table.find(Uint8Array.of(key), 0, 1, hashOf(key)), model.get(key) ?? -1, `key ${key}`);
        }
      }),
      { seed: testSeed('key table bulk'), numRuns: 100 },
    );
  });

  test('grows past half full and keeps every key', () => {
    const count = 5000;
    const hashes = new Int32Array(count);
    const slots: KeyedSlots = { hashOf: (slot) => hashes[slot]!, keyEquals: (slot, bytes) => bytes[0] === (slot & 0xff) && bytes[1] === slot >> 8 };
    const table = new KeyTable(slots);
    const keyOf = (slot: number): Uint8Array => Uint8Array.of(slot & 0xff, slot >> 8);
    for (let slot = 0; slot < count; slot++) {
      hashes[slot] = hashKey(keyOf(slot), 0, 2, table.seed);
      table.add(slot, hashes[slot]!);
    }
    for (let slot = 0; slot < count; slot++) assert.equal(table.find(keyOf(slot), 0, 2, hashes[slot]!), slot);
    assert.equal(table.find(Uint8Array.of(0xff, 0xff), 0, 2, hashKey(Uint8Array.of(0xff, 0xff), 0, 2, table.seed)), -1);
    table.remove(7);
    assert.throws(() => table.remove(7), /not in the table/, 'a second removal is a defect, reported rather than looping');
  });

  test('hashes depend on every byte and on the seed', () => {
    const bytes = Buffer.from('key:00000000');
    const base = hashKey(bytes, 0, bytes.length, 1);
    for (let i = 0; i < bytes.length; i++) {
      const changed = Buffer.from(bytes);
      changed[i]! ^= 1;
      assert.notEqual(hashKey(changed, 0, changed.length, 1), base, `byte ${i}`);
    }
    assert.notEqual(hashKey(bytes, 0, bytes.length, 2), base);
    assert.equal(hashKey(Buffer.concat([Buffer.from('xx'), bytes]), 2, bytes.length, 1), base, 'a range hashes as its bytes alone');
  });
});
