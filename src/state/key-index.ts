/**
 * The ordered index of a state's keys: `sorted-btree`'s B+ tree (copy-on-write `clone()` in O(1),
 * ordered iteration from a key, bulk loading of sorted entries) of slot numbers, ordered by their
 * keys' bytes (entry-store.ts compares them; a search key goes in as `PROBE_SLOT`). It changes
 * only when a key enters or leaves the state, never on an overwrite. The package is CommonJS; this
 * file is where its default export is unwrapped for ESM.
 */
import sortedBtree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad.js';

/** Slots ordered by their keys. The values are unused. */
export type KeyIndex = sortedBtree.default<number, undefined>;

/**
 * Branching factor of the index. Larger nodes make lookups and inserts shallower but make each
 * copy-on-write after a snapshot view copy more (docs/state.md has the measurements).
 */
const NODE_SIZE = 32;

/** An empty index ordered by `compare`. */
export function newKeyIndex(compare: (a: number, b: number) => number): KeyIndex {
  return new sortedBtree.default<number, undefined>(undefined, compare, NODE_SIZE);
}

/** An index of `slots` (their keys strictly ascending), built in O(n). */
export function loadKeyIndex(slots: number[], compare: (a: number, b: number) => number): KeyIndex {
  return slots.length === 0 ? newKeyIndex(compare) : bulkLoad(slots, new Array<undefined>(slots.length).fill(undefined), NODE_SIZE, compare);
}
