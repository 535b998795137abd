/**
 * KeyState against a plain `Map` model: random PUT/DELETE sequences (with keyless records, offset
 * gaps, flushes, views taken and released, and forgotten changes), on pages small enough that runs
 * are relocated all the time as well as on default pages, must give the same `get`, `size`, memory
 * estimate and ordered, paged, prefixed listings; a view never changes after it is taken, whatever
 * follows (its pre-images); and the changes a view lists since an earlier point turn the state at
 * that point into the view.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { encodeTxnWrites } from '../../../src/codec/txn-writes.js';
import { isWalError } from '../../../src/errors.js';
import { ENTRY_OVERHEAD_BYTES, KeyState, TOMBSTONE_OVERHEAD_BYTES, type StateRecord } from '../../../src/state/key-state.js';
import type { StateView } from '../../../src/state/state-view.js';
import { testSeed } from '../../support/seed.js';

interface ModelEntry {
  readonly value: Buffer;
  readonly offset: number;
  readonly timestamp: number;
}

/** Keys by hex, so that the model's ordering is computed independently (Buffer.compare). */
type Model = Map<string, ModelEntry>;

type Op =
  | { readonly kind: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly kind: 'delete'; readonly key: Uint8Array }
  | { readonly kind: 'keyless'; readonly type: 'put' | 'checkpoint' }
  | { readonly kind: 'gap'; readonly skip: number }
  | { readonly kind: 'clear' }
  | { readonly kind: 'view' }
  | { readonly kind: 'release'; readonly which: number }
  | { readonly kind: 'forget' };

/** Bytes chosen so that signed/unsigned and prefix ordering mistakes show. */
const keyArb = fc.array(fc.constantFrom(0x00, 0x01, 0x61, 0x62, 0x7f, 0x80, 0xff), { maxLength: 3 }).map((bytes) => Uint8Array.from(bytes));

/** Mostly short values; some longer than the smallest pages, so that they get pages of their own and outgrow their runs. */
const valueArb = fc.oneof({ weight: 8, arbitrary: fc.uint8Array({ maxLength: 6 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 20, maxLength: 90 }) });

/** Page sizes: tiny ones relocate runs on most writes; the default one almost never does. */
const pageBytesArb = fc.constantFrom(64, 200, undefined);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArb, value: valueArb }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('keyless' as const), type: fc.constantFrom('put' as const, 'checkpoint' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gap' as const), skip: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'view' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'forget' as const }) },
);

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Every key the generator can make: the universe `get` is checked over. */
const ALL_KEYS: Buffer[] = (() => {
  const alphabet = [0x00, 0x01, 0x61, 0x62, 0x7f, 0x80, 0xff];
  const keys: Buffer[] = [Buffer.alloc(0)];
  for (let length = 1; length <= 3; length++) {
    for (const prefix of keys.filter((k) => k.length === length - 1)) for (const b of alphabet) keys.push(Buffer.concat([prefix, Buffer.from([b])]));
  }
  return keys;
})();

function sortedModel(model: Model, prefix: Buffer = Buffer.alloc(0)): [Buffer, ModelEntry][] {
  return [...model]
    .map(([key, entry]) => [Buffer.from(key, 'hex'), entry] as [Buffer, ModelEntry])
    .filter(([key]) => key.subarray(0, prefix.length).equals(prefix))
    .sort(([a], [b]) => Buffer.compare(a, b));
}

/** Lists every page of a prefix and returns the concatenation, checking the page sizes. */
function listAll(state: KeyState, prefix: Buffer, limit: number): [Buffer, ModelEntry][] {
  const all: [Buffer, ModelEntry][] = [];
  let pageToken = '';
  for (let pages = 0; pages <= ALL_KEYS.length + 1; pages++) {
    const page = state.list({ prefix, limit, pageToken });
    assert.ok(page.entries.length <= limit);
    for (const e of page.entries) all.push([e.key, { value: e.value, offset: e.offset, timestamp: e.timestamp }]);
    if (page.nextPageToken === '') return all;
    assert.equal(page.entries.length, limit, 'a page before the last is full');
    pageToken = page.nextPageToken;
  }
  assert.fail('listing did not end');
}

function assertViewEquals(view: StateView, model: Model): void {
  assert.equal(view.size, model.size);
  // The iterator reuses its pair: copy each step.
  const listed: [Buffer, ModelEntry][] = [];
  for (const [key, e] of view.entries()) listed.push([Buffer.from(key, 'latin1'), { value: Buffer.from(e.value, 'latin1'), offset: e.offset, timestamp: e.timestamp }]);
  assert.deepEqual(listed, sortedModel(model));
  for (const key of ALL_KEYS) {
    const expected = model.get(hex(key));
    const got = view.get(key);
    assert.deepEqual(got === undefined ? undefined : { value: got.value, offset: got.offset, timestamp: got.timestamp }, expected);
  }
}

/** Runs `ops` on a state and the model; returns both and the views taken (and not released) on the way. */
function run(ops: readonly Op[], pageBytes?: number) {
  const state = new KeyState({ pageBytes });
  const model: Model = new Map();
  /** Deletions the state should remember: key hex -> delete offset. */
  const tombstones = new Map<string, number>();
  const views: { view: StateView; model: Model }[] = [];
  let offset = 0;
  let knownSince = 0;
  const record = (type: StateRecord['type'], key: Uint8Array | undefined, value: Uint8Array): StateRecord => ({
    offset,
    timestamp: 1_000 + offset * 10,
    type,
    key: key === undefined ? undefined : Buffer.from(key),
    value: Buffer.from(value),
  });
  for (const op of ops) {
    switch (op.kind) {
      case 'put': {
        // The record's buffers are reused afterwards, as a read buffer would be.
        const r = record('put', op.key, op.value);
        state.apply(r);
        r.value.fill(0xee);
        r.key?.fill(0xee);
        model.set(hex(op.key), { value: Buffer.from(op.value), offset, timestamp: 1_000 + offset * 10 });
        tombstones.delete(hex(op.key));
        offset++;
        break;
      }
      case 'delete':
        state.apply(record('delete', op.key, new Uint8Array(0)));
        if (model.delete(hex(op.key))) tombstones.set(hex(op.key), offset);
        offset++;
        break;
      case 'keyless':
        state.apply(record(op.type, undefined, Uint8Array.of(1, 2)));
        offset++;
        break;
      case 'gap':
        offset += op.skip;
        break;
      case 'clear':
        assert.equal(state.clear(offset), model.size);
        model.clear();
        tombstones.clear();
        knownSince = offset + 1;
        offset++;
        break;
      case 'view':
        views.push({ view: state.captureView(), model: new Map(model) });
        break;
      case 'release': {
        const [released] = views.splice(op.which % Math.max(views.length, 1), 1);
        released?.view.release();
        break;
      }
      case 'forget': {
        // As after a snapshot of the last view became durable: records since the view stay tracked.
        const at = views[views.length - 1]?.view.nextOffset ?? state.nextOffset;
        state.forgetChangesBefore(at);
        knownSince = Math.max(knownSince, at);
        for (const [key, deletedAt] of tombstones) if (deletedAt < knownSince) tombstones.delete(key);
        break;
      }
    }
  }
  return { state, model, tombstones, views, knownSince };
}

describe('KeyState', () => {
  test('matches a Map model: get, size, memory and ordered listings by prefix and page', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 150, size: 'large' }), pageBytesArb, (ops, pageBytes) => {
        const { state, model, tombstones } = run(ops, pageBytes);
        assert.equal(state.size, model.size);
        for (const key of ALL_KEYS) {
          const got = state.get(key);
          const expected = model.get(hex(key));
          assert.deepEqual(got === undefined ? undefined : { value: got.value, offset: got.offset, timestamp: got.timestamp }, expected, `key ${hex(key)}`);
          if (got !== undefined) assert.ok(got.key.equals(key));
        }
        let memory = 0;
        for (const [key, entry] of model) memory += key.length / 2 + entry.value.length + ENTRY_OVERHEAD_BYTES;
        for (const key of tombstones.keys()) memory += key.length / 2 + TOMBSTONE_OVERHEAD_BYTES;
        assert.equal(state.memoryBytes, memory);
        for (const prefix of [Buffer.alloc(0), Buffer.from([0x61]), Buffer.from([0x80]), Buffer.from([0xff, 0x00]), Buffer.from([0x62, 0x62, 0x62, 0x62])]) {
          const expected = sortedModel(model, prefix);
          for (const limit of [1, 2, 5, 1000]) assert.deepEqual(listAll(state, prefix, limit), expected, `prefix ${hex(prefix)} limit ${limit}`);
        }
      }),
      { seed: testSeed('key state model'), numRuns: 200 },
    );
  });

  test('a view keeps the state as it was when taken, whatever follows', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 150, size: 'large' }), pageBytesArb, (ops, pageBytes) => {
        const { state, views } = run(ops, pageBytes);
        for (const { view, model } of views) assertViewEquals(view, model);
        for (const { view } of views) view.release();
        assert.equal(state.openViewCount, 0);
        assert.equal(state.viewMemoryBytes, 0, 'released views hold no pre-images');
      }),
      { seed: testSeed('key state views'), numRuns: 200 },
    );
  });

  test('the changes a view lists since an earlier view turn that view into it', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 150, size: 'large' }), pageBytesArb, (ops, pageBytes) => {
        const { state, model, views, knownSince } = run(ops, pageBytes);
        const last = state.captureView();
        for (const { view: base, model: baseModel } of views) {
          const since = base.nextOffset;
          assert.equal(last.canListChangesSince(since), since >= knownSince, `since ${since}, known since ${knownSince}`);
          if (!last.canListChangesSince(since)) {
            assert.throws(() => [...last.changesSince(since)], RangeError);
            continue;
          }
          const rebuilt: Model = new Map(baseModel);
          let previous: string | undefined;
          for (const [key, change] of last.changesSince(since)) {
            assert.ok(previous === undefined || previous < key, 'changes come in key order');
            previous = key;
            assert.ok(change.offset >= since);
            const k = Buffer.from(key, 'latin1').toString('hex');
            if (change.value === undefined) rebuilt.delete(k);
            else rebuilt.set(k, { value: Buffer.from(change.value, 'latin1'), offset: change.offset, timestamp: change.timestamp });
          }
          assert.deepEqual(sortedModel(rebuilt), sortedModel(model));
        }
      }),
      { seed: testSeed('key state changes since'), numRuns: 200 },
    );
  });

  test('wouldExceed refuses only new keys past the cap', () => {
    const state = new KeyState({ maxStateBytes: 2 * (ENTRY_OVERHEAD_BYTES + 10) });
    const put = (offset: number, key: string, value: string): void => state.apply({ offset, timestamp: 0, type: 'put', key: Buffer.from(key), value: Buffer.from(value) });
    assert.equal(state.wouldExceed(Buffer.from('k1'), Buffer.from('12345678')), false);
    put(0, 'k1', '12345678');
    assert.equal(state.wouldExceed(Buffer.from('k2'), Buffer.from('12345678')), false, 'exactly at the cap is allowed');
    put(1, 'k2', '12345678');
    assert.equal(state.memoryBytes, state.maxStateBytes);
    assert.equal(state.wouldExceed(Buffer.from('k3'), Buffer.alloc(0)), true);
    assert.equal(state.wouldExceed(Buffer.from('k1'), Buffer.alloc(100)), false, 'an existing key may still be overwritten');
    state.apply({ offset: 2, timestamp: 0, type: 'delete', key: Buffer.from('k2'), value: Buffer.alloc(0) });
    assert.equal(state.wouldExceed(Buffer.from('k3'), Buffer.alloc(0)), true, 'the deletion is remembered until the next snapshot');
    state.forgetChangesBefore(state.nextOffset);
    assert.equal(state.wouldExceed(Buffer.from('k3'), Buffer.alloc(0)), false, 'a delete makes room once a snapshot covers it');
  });

  test('refuses offsets that go back, bad limits and foreign page tokens', () => {
    const state = new KeyState();
    state.apply({ offset: 5, timestamp: 0, type: 'put', key: Buffer.from('a1'), value: Buffer.from('x') });
    state.apply({ offset: 6, timestamp: 0, type: 'put', key: Buffer.from('a2'), value: Buffer.from('x') });
    assert.equal(state.nextOffset, 7);
    assert.throws(() => state.apply({ offset: 6, timestamp: 0, type: 'put', key: Buffer.from('b'), value: Buffer.alloc(0) }), RangeError);
    assert.throws(() => state.clear(3), RangeError);
    assert.throws(() => state.list({ limit: 0 }), RangeError);
    assert.throws(() => state.list({ limit: 1.5 }), RangeError);
    const page = state.list({ prefix: Buffer.from('a'), limit: 1 });
    assert.notEqual(page.nextPageToken, '');
    assert.equal(state.list({ prefix: Buffer.from('a'), limit: 1, pageToken: page.nextPageToken }).entries[0]?.key.toString(), 'a2');
    const isBadToken = (error: unknown): boolean => isWalError(error, 'WAL_INVALID_ARGUMENT') && error.details['field'] === 'page_token';
    assert.throws(() => state.list({ prefix: Buffer.from('b'), limit: 1, pageToken: page.nextPageToken }), isBadToken);
    assert.throws(() => state.list({ limit: 1, pageToken: page.nextPageToken }), isBadToken);
    for (const token of ['!!', 'AA', page.nextPageToken.slice(0, 3), `${page.nextPageToken}=`]) assert.throws(() => state.list({ prefix: Buffer.from('a'), limit: 1, pageToken: token }), isBadToken, token);
    assert.throws(() => new KeyState({ maxStateBytes: 0 }), RangeError);
  });

  test('a view keeps what it saw through overwrites, deletes, re-inserts, forgets and a flush; release drops its pre-images', () => {
    const state = new KeyState({ pageBytes: 64 });
    let offset = 0;
    const put = (key: string, value: string): void => state.apply({ offset: offset++, timestamp: offset, type: 'put', key: Buffer.from(key), value: Buffer.from(value) });
    const del = (key: string): void => state.apply({ offset: offset++, timestamp: offset, type: 'delete', key: Buffer.from(key), value: Buffer.alloc(0) });
    put('a', '1');
    put('b', '2');
    put('c', '3');
    del('c');
    const seen = (view: StateView): string[] => {
      const listed: string[] = [];
      // The pair is reused from one step to the next.
      for (const [k, e] of view.changesSince(view.changesKnownSince)) listed.push(`${k}=${e.value ?? '-'}@${e.offset}`);
      return listed;
    };
    const view = state.captureView();
    const atCapture = seen(view);
    assert.deepEqual(atCapture, ['a=1@0', 'b=2@1', 'c=-@3']);
    put('a', 'overwritten, and longer than its run'); // a new run; the view keeps the old value
    del('b');
    put('b', 'back');
    put('c', 'back too');
    put('d', 'new'); // not in the view
    state.forgetChangesBefore(state.nextOffset); // nothing deleted to forget: b and c are back
    del('d');
    state.forgetChangesBefore(state.nextOffset); // d leaves the state; its slot waits for the view
    put('d', 'again');
    for (let i = 0; i < 50; i++) put(`k${i}`, `filler ${i}`); // relocations on 64-byte pages
    assert.ok(state.viewMemoryBytes > 0);
    assert.deepEqual(seen(view), atCapture);
    assert.equal(view.get(Buffer.from('a'))?.value.toString(), '1');
    assert.equal(view.get(Buffer.from('d')), undefined);
    assert.equal(view.size, 2);
    const second = state.captureView();
    state.clear(offset++);
    put('a', 'after the flush');
    assert.deepEqual(seen(view), atCapture, 'a flush leaves views as they were');
    assert.equal(second.get(Buffer.from('d'))?.value.toString(), 'again');
    assert.equal(state.openViewCount, 0, 'a flush cuts views off: nothing writes their store any more');
    const third = state.captureView();
    put('a', 'changed under the third view');
    assert.equal(state.openViewCount, 1);
    assert.ok(state.viewMemoryBytes > 0);
    third.release();
    third.release();
    assert.equal(state.openViewCount, 0);
    assert.equal(state.viewMemoryBytes, 0);
    assert.throws(() => third.get(Buffer.from('a')), /release/);
    view.release();
    second.release();
    assert.equal(state.get(Buffer.from('a'))?.value.toString(), 'changed under the third view');
  });

  test('a view dropped without release is released once collected', async () => {
    // A full collection on demand: the flag is set at run time, then `gc` is taken from a new context.
    v8.setFlagsFromString('--expose-gc');
    const collect = vm.runInNewContext('gc') as () => void;
    const state = new KeyState();
    state.apply({ offset: 0, timestamp: 0, type: 'put', key: Buffer.from('a'), value: Buffer.from('1') });
    (() => {
      state.captureView();
    })();
    assert.equal(state.openViewCount, 1);
    // Finalizers run in a later task; a few rounds are plenty, and the loop is bounded.
    for (let round = 0; round < 20 && state.openViewCount > 0; round++) {
      collect();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(state.openViewCount, 0);
    state.apply({ offset: 1, timestamp: 0, type: 'put', key: Buffer.from('a'), value: Buffer.from('2') });
    assert.equal(state.viewMemoryBytes, 0, 'no pre-image kept for a collected view');
  });

  test('restoring refuses to run while a view is open', () => {
    const state = new KeyState();
    const view = state.captureView();
    const entry = { kind: 'put' as const, bytes: Buffer.from('kv'), keyStart: 0, keyEnd: 1, valueEnd: 2, offset: 0, timestamp: 0 };
    assert.throws(() => state.restorePut(entry), /view is open/);
    view.release();
    state.restorePut(entry);
    state.finishRestore(1);
    assert.equal(state.get(Buffer.from('k'))?.value.toString(), 'v');
  });

  test('overwrites and deletions do not grow the pages: dead runs are reclaimed', () => {
    const state = new KeyState({ pageBytes: 4096 });
    let offset = 0;
    for (let round = 0; round < 200; round++) {
      for (let k = 0; k < 100; k++) {
        const key = Buffer.from(`key-${k}`);
        if ((round + k) % 7 === 0) state.apply({ offset: offset++, timestamp: 0, type: 'delete', key, value: Buffer.alloc(0) });
        else state.apply({ offset: offset++, timestamp: 0, type: 'put', key, value: Buffer.alloc(1 + ((round * 31 + k) % 60), round) });
      }
      if (round % 10 === 0) state.forgetChangesBefore(state.nextOffset);
    }
    // 100 keys of at most 6 + 60 bytes (plus 8 of header) is under 8 KiB live: at most about twice that in full pages, plus the one being filled.
    assert.ok(state.pageMemoryBytes <= 5 * 4096, `${state.pageMemoryBytes} bytes of pages`);
    for (let k = 0; k < 100; k++) {
      const round = 199;
      const got = state.get(Buffer.from(`key-${k}`));
      if ((round + k) % 7 === 0) assert.equal(got, undefined);
      else assert.deepEqual(got?.value, Buffer.alloc(1 + ((round * 31 + k) % 60), round));
    }
    // Values that shrink far below their runs move to smaller ones.
    for (let k = 0; k < 100; k++) state.apply({ offset: offset++, timestamp: 0, type: 'put', key: Buffer.from(`key-${k}`), value: Buffer.alloc(3000) });
    assert.ok(state.pageMemoryBytes >= 100 * 3000);
    for (let k = 0; k < 100; k++) state.apply({ offset: offset++, timestamp: 0, type: 'put', key: Buffer.from(`key-${k}`), value: Buffer.from('small') });
    assert.ok(state.pageMemoryBytes <= 5 * 4096, `${state.pageMemoryBytes} bytes of pages after shrinking`);
    // So do deleted keys' runs: a remembered deletion keeps its key, not its value.
    for (let k = 0; k < 100; k++) state.apply({ offset: offset++, timestamp: 0, type: 'put', key: Buffer.from(`key-${k}`), value: Buffer.alloc(3000) });
    for (let k = 0; k < 100; k++) state.apply({ offset: offset++, timestamp: 0, type: 'delete', key: Buffer.from(`key-${k}`), value: Buffer.alloc(0) });
    assert.ok(state.pageMemoryBytes <= 5 * 4096, `${state.pageMemoryBytes} bytes of pages after deleting`);
    assert.equal(state.size, 0);
  });

  test('forgetting many deletions at once leaves the same state as forgetting them one by one', () => {
    const states = [new KeyState(), new KeyState()];
    let offset = 0;
    const apply = (type: 'put' | 'delete', key: string): void => {
      for (const state of states) state.apply({ offset, timestamp: offset, type, key: Buffer.from(key), value: Buffer.from(`v${offset}`) });
      offset++;
    };
    for (let i = 0; i < 10_000; i++) apply('put', `key-${String(i).padStart(5, '0')}`);
    for (let i = 0; i < 10_000; i++) {
      if (i % 3 === 0) continue;
      apply('delete', `key-${String(i).padStart(5, '0')}`);
      // The second state forgets after each deletion (edits of the index), the first once (a rebuild).
      states[1]!.forgetChangesBefore(offset);
    }
    states[0]!.forgetChangesBefore(offset);
    for (let i = 1; i < 10_000; i += 1000) apply('put', `key-${String(i).padStart(5, '0')}`);
    const [once, stepwise] = states as [KeyState, KeyState];
    assert.equal(once.size, 3334 + 7, "3334 kept, 7 of the 10 put again were deleted");
    assert.equal(once.memoryBytes, stepwise.memoryBytes);
    assert.deepEqual(once.list({ limit: 20_000 }), stepwise.list({ limit: 20_000 }));
    assert.deepEqual(once.list({ prefix: Buffer.from('key-0'), limit: 7 }), stepwise.list({ prefix: Buffer.from('key-0'), limit: 7 }));
    assert.equal(once.get(Buffer.from('key-00002')), undefined);
    assert.equal(once.get(Buffer.from('key-01001'))?.value.toString(), `v${offset - 9}`);
  });

  test('a transaction that deletes a key, puts it and deletes it again leaves one deletion to forget', () => {
    const state = new KeyState();
    const key = Buffer.from('k');
    state.apply({ type: 'put', key, value: Buffer.from('v0'), offset: 0, timestamp: 1 });
    const empty = new KeyState().memoryBytes;
    // Every write of a transaction takes its COMMIT's offset: two deletions of k at offset 1.
    const writes = [{ op: 'delete' as const, key, value: Buffer.alloc(0) }, { op: 'put' as const, key, value: Buffer.from('v1') }, { op: 'delete' as const, key, value: Buffer.alloc(0) }];
    state.applyTxnPayload(1, 2, encodeTxnWrites([...writes, { op: 'delete', key: Buffer.from('other'), value: Buffer.alloc(0) }]));
    assert.equal(state.get(key), undefined);
    state.forgetChangesBefore(2);
    assert.equal(state.size, 0);
    assert.equal(state.memoryBytes, empty, 'no tombstone is left behind');
    state.apply({ type: 'put', key, value: Buffer.from('v2'), offset: 2, timestamp: 3 });
    assert.equal(state.get(key)?.value.toString(), 'v2');
  });
});
