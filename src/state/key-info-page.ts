/**
 * Pages of a key listing with what each key's latest `PUT` is (offset, timestamp, value size) but
 * not its value, within a byte budget: what ListKeys answers, so that a page of long keys still
 * fits a response.
 */
import type { KeyPage, KeyState, ListKeysOptions } from './key-state.js';
import { encodePageToken, toByteString } from './page-token.js';

const EMPTY = new Uint8Array(0);

/** One key of a listing: the offset, timestamp and value size of its latest `PUT`, not the value. */
export interface KeyInfo {
  readonly key: Buffer;
  readonly offset: number;
  readonly timestamp: number;
  readonly valueSizeBytes: number;
}

/** One page of {@link keyInfoPage}. */
export interface KeyInfoPage {
  readonly keys: KeyInfo[];
  /** Continues the listing; empty when this is the last page (AIP-158). */
  readonly nextPageToken: string;
}

/** What {@link keyInfoPage} lists. */
export interface ListKeyInfoOptions extends ListKeysOptions {
  /**
   * Most bytes of keys on the page, each counted with {@link KEY_INFO_FRAMING_BYTES}; a page holds
   * at least one key whatever its size. Bounds a response of long keys.
   */
  readonly maxBytes: number;
}

/** Bytes a listed key costs beyond its own in a response (offset, timestamp, size, tags, lengths), rounded up. */
export const KEY_INFO_FRAMING_BYTES = 40;

/** Entries read from the state at a time while listing: bounds the values copied along (the state's `list` returns them). */
const LIST_CHUNK_ENTRIES = 64;

/**
 * One page of `state`'s keys in key order, from the page token on: at most `options.limit` keys
 * and `options.maxBytes` of them, with a token that goes on after the last key returned. The state
 * is read in chunks of {@link LIST_CHUNK_ENTRIES} (`KeyState.list` copies the values along, so a
 * chunk bounds what is copied for nothing); nothing is applied to it meanwhile (no await).
 *
 * Throws `WalError` `WAL_INVALID_ARGUMENT` (field `page_token`) for a bad token and `RangeError`
 * for a limit that is not a positive integer.
 */
export function keyInfoPage(state: KeyState, options: ListKeyInfoOptions): KeyInfoPage {
  const { prefix, limit, maxBytes } = options;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const keys: KeyInfo[] = [];
  let bytes = 0;
  let token = options.pageToken;
  while (keys.length < limit) {
    const page: KeyPage = state.list({ prefix, limit: Math.min(LIST_CHUNK_ENTRIES, limit - keys.length), pageToken: token });
    for (const entry of page.entries) {
      const size = entry.key.length + KEY_INFO_FRAMING_BYTES;
      const last = keys[keys.length - 1];
      if (last !== undefined && bytes + size > maxBytes) {
        return { keys, nextPageToken: encodePageToken({ prefix: toByteString(prefix ?? EMPTY), lastKey: toByteString(last.key) }) };
      }
      keys.push({ key: entry.key, offset: entry.offset, timestamp: entry.timestamp, valueSizeBytes: entry.value.length });
      bytes += size;
    }
    if (page.nextPageToken === '') return { keys, nextPageToken: '' };
    token = page.nextPageToken;
  }
  return { keys, nextPageToken: token ?? '' };
}
