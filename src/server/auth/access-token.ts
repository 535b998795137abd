import * as crypto from 'node:crypto';

/**
 * What a bearer token may be: 1 to 4096 printable ASCII characters without spaces. gRPC metadata
 * values are printable ASCII, and `Bearer <token>` is split at the space; the bound keeps a
 * header within what HTTP/2 servers accept.
 */
export const ACCESS_TOKEN_PATTERN = /^[\x21-\x7e]{1,4096}$/;

/** The metadata key of the token: `authorization: Bearer <token>` (RFC 6750 over gRPC). */
export const AUTHORIZATION_METADATA_KEY = 'authorization';

/** The scheme before the token in the `authorization` value. */
const BEARER_PREFIX = 'Bearer ';

/** Whether `token` is a valid bearer token; see {@link ACCESS_TOKEN_PATTERN}. */
export function isAccessToken(token: string): boolean {
  return ACCESS_TOKEN_PATTERN.test(token);
}

/**
 * The SHA-256 of `token` (its UTF-8 bytes) in lower-case hex: what an auth file stores in place of
 * the token, and what `wald auth hash-token` prints.
 */
export function hashAccessToken(token: string): string {
  return accessTokenDigest(token).toString('hex');
}

/**
 * The SHA-256 of `token` (its UTF-8 bytes), 32 bytes: {@link hashAccessToken} before hex. Every
 * call with a token pays it, so it takes Node's one-shot `crypto.hash` (Node 20.12 and later): one
 * call into OpenSSL where a `Hash` object costs three and an object; older Nodes take `createHash`.
 */
export function accessTokenDigest(token: string): Buffer {
  if (typeof crypto.hash === 'function') return crypto.hash('sha256', token, 'buffer');
  return crypto.createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The token of an `authorization` metadata value (`Bearer <token>`, the scheme in any case), or
 * undefined when the value is not a bearer token.
 */
export function bearerTokenOf(value: string): string | undefined {
  if (value.length <= BEARER_PREFIX.length || value.slice(0, BEARER_PREFIX.length).toLowerCase() !== BEARER_PREFIX.toLowerCase()) {
    return undefined;
  }
  const token = value.slice(BEARER_PREFIX.length);
  return isAccessToken(token) ? token : undefined;
}

/** The `authorization` metadata value that carries `token`. */
export function bearerValueOf(token: string): string {
  return `${BEARER_PREFIX}${token}`;
}
