import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC-32C (Castagnoli) of `bytes`, continuing from `previous` when given.
 *
 * Not `zlib.crc32`: that is the IEEE polynomial. Test vector: `crc32c("123456789") = 0xe3069283`.
 */
export function crc32c(bytes: Uint8Array, previous?: number): number {
  return nativeCrc32c(bytes, previous);
}
