import assert from 'node:assert/strict';
import type { KeyState } from '../../src/state/key-state.js';

/** A key's state in the model. */
export interface ModelEntry {
  readonly value: Buffer;
  readonly offset: number;
  readonly timestamp: number;
}

/**
 * The key-value state as a plain `Map` (keys by hex), kept beside a `KeyState` that receives the
 * same records: the reference the state and its snapshots are compared with.
 */
export class StateModel {
  readonly entries = new Map<string, ModelEntry>();
  nextOffset = 0;

  /** A model of `state`, which holds what `from` holds (a new state when `from` is absent). */
  constructor(
    private readonly state: KeyState,
    from?: StateModel,
  ) {
    if (from === undefined) return;
    for (const [key, entry] of from.entries) this.entries.set(key, entry);
    this.nextOffset = from.nextOffset;
  }

  /** Applies `count` random PUTs and DELETEs over `keys` keys (values up to `maxValueBytes`). */
  randomRecords(next: () => number, count: number, keys: number, maxValueBytes = 40): void {
    for (let i = 0; i < count; i++) {
      const key = Buffer.from(`key-${Math.floor(next() * keys)}`);
      if (next() < 0.25) this.delete(key);
      else this.put(key, Buffer.alloc(Math.floor(next() * maxValueBytes), `v${this.nextOffset}.`));
    }
  }

  put(key: Buffer, value: Buffer): void {
    const offset = this.nextOffset++;
    const timestamp = 1_700_000_000_000 + offset;
    this.state.apply({ offset, timestamp, type: 'put', key, value });
    this.entries.set(key.toString('hex'), { value: Buffer.from(value), offset, timestamp });
  }

  delete(key: Buffer): void {
    const offset = this.nextOffset++;
    this.state.apply({ offset, timestamp: 1_700_000_000_000 + offset, type: 'delete', key, value: Buffer.alloc(0) });
    this.entries.delete(key.toString('hex'));
  }

  /** A copy of the entries as they are now. */
  copy(): Map<string, ModelEntry> {
    return new Map(this.entries);
  }
}

/** Asserts that `state` holds exactly `entries` (listing in byte order and `get`) as of `nextOffset`. */
export function assertStateEquals(state: KeyState, entries: ReadonlyMap<string, ModelEntry>, nextOffset: number): void {
  assert.equal(state.nextOffset, nextOffset, 'next offset');
  assert.equal(state.size, entries.size, 'key count');
  const listed = state.list({ limit: entries.size + 1 });
  assert.equal(listed.nextPageToken, '');
  const expected = [...entries].map(([key, e]) => ({ key: Buffer.from(key, 'hex'), ...e })).sort((a, b) => Buffer.compare(a.key, b.key));
  assert.deepEqual(listed.entries, expected);
}
