/**
 * The ordered map the state is built on: `sorted-btree`'s B+ tree (copy-on-write `clone()` in
 * O(1), ordered iteration from a key, bulk loading of sorted entries), keyed by byte strings.
 * The package is CommonJS; this file is where its default export is unwrapped for ESM.
 */
import sortedBtree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad.js';
import { compareByteStrings } from './byte-string.js';

/** A B+ tree from byte strings to `V`. */
export type ByteStringTree<V> = sortedBtree.default<string, V>;

/**
 * Branching factor of the trees. Larger nodes make lookups and inserts shallower but make each
 * copy-on-write after a snapshot view copy more (docs/state.md has the measurements).
 */
const NODE_SIZE = 32;

/** An empty tree. */
export function newByteStringTree<V>(): ByteStringTree<V> {
  return new sortedBtree.default<string, V>(undefined, compareByteStrings, NODE_SIZE);
}

/** A tree of `keys` (strictly ascending) and `values`, built in O(n). */
export function loadByteStringTree<V>(keys: string[], values: V[]): ByteStringTree<V> {
  return keys.length === 0 ? newByteStringTree() : bulkLoad(keys, values, NODE_SIZE, compareByteStrings);
}
