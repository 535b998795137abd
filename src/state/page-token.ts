/**
 * Page tokens of key listings (AIP-158): an opaque, URL-safe string that says where the next page
 * starts. It holds the last key returned and the prefix of the listing it belongs to, so that a
 * token used with another prefix is refused rather than silently listing the wrong range.
 *
 * Token bytes, base64url without padding: `version (u8) = 1 | prefix length (u32 LE) | prefix |
 * last key`.
 */
import { WalError } from '../errors.js';

const TOKEN_VERSION = 1;
const TOKEN_HEAD_BYTES = 5;

/**
 * `bytes` as a byte string: one char per byte (latin1), lossless, and ordered as the bytes are by
 * `<`. What a cursor holds its keys as.
 */
export function toByteString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

/** Where a listing goes on: the prefix it lists and the last key it returned (byte strings, {@link toByteString}). */
export interface PageCursor {
  readonly prefix: string;
  readonly lastKey: string;
}

/** The page token that continues a listing after `cursor.lastKey`. */
export function encodePageToken(cursor: PageCursor): string {
  const bytes = Buffer.alloc(TOKEN_HEAD_BYTES + cursor.prefix.length + cursor.lastKey.length);
  bytes[0] = TOKEN_VERSION;
  bytes.writeUInt32LE(cursor.prefix.length, 1);
  bytes.write(cursor.prefix, TOKEN_HEAD_BYTES, 'latin1');
  bytes.write(cursor.lastKey, TOKEN_HEAD_BYTES + cursor.prefix.length, 'latin1');
  return bytes.toString('base64url');
}

/**
 * The cursor a page token holds. Throws `WalError` `WAL_INVALID_ARGUMENT` (field `page_token`) for
 * a token that is malformed or was issued for another prefix than `prefix`.
 */
export function decodePageToken(token: string, prefix: string): PageCursor {
  const bytes = /^[A-Za-z0-9_-]*$/.test(token) ? Buffer.from(token, 'base64url') : Buffer.alloc(0);
  if (bytes.length < TOKEN_HEAD_BYTES || bytes[0] !== TOKEN_VERSION || bytes.toString('base64url') !== token) {
    throw new WalError('WAL_INVALID_ARGUMENT', 'page_token: not a token this server issued', { field: 'page_token' });
  }
  const prefixBytes = bytes.readUInt32LE(1);
  if (TOKEN_HEAD_BYTES + prefixBytes > bytes.length) {
    throw new WalError('WAL_INVALID_ARGUMENT', 'page_token: not a token this server issued', { field: 'page_token' });
  }
  const cursor = {
    prefix: bytes.toString('latin1', TOKEN_HEAD_BYTES, TOKEN_HEAD_BYTES + prefixBytes),
    lastKey: bytes.toString('latin1', TOKEN_HEAD_BYTES + prefixBytes),
  };
  if (cursor.prefix !== prefix || !cursor.lastKey.startsWith(prefix)) {
    throw new WalError('WAL_INVALID_ARGUMENT', 'page_token: issued for a listing with another prefix', { field: 'page_token' });
  }
  return cursor;
}
