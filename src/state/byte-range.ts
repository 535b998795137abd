/**
 * Byte ranges of the state: keys and values are compared and copied where they lie (in the
 * state's pages, a read buffer, a snapshot chunk) as `(bytes, start, length)`, without making a
 * view object per range. Short ranges are handled in JavaScript, which on Node 20 is cheaper
 * than a call into native code up to about 40 bytes (docs/state.md).
 */

/** Bytes at or below which a copy is done in JavaScript. */
const SHORT_COPY_BYTES = 40;

/** Compares `a[aStart..aStart + aLength)` with `b[bStart..bStart + bLength)` by unsigned bytes, a prefix first. */
export function compareRanges(a: Uint8Array, aStart: number, aLength: number, b: Uint8Array, bStart: number, bLength: number): number {
  const common = aLength < bLength ? aLength : bLength;
  for (let i = 0; i < common; i++) {
    const difference = a[aStart + i]! - b[bStart + i]!;
    if (difference !== 0) return difference;
  }
  return aLength - bLength;
}

/** Copies `from[start..start + length)` into `to` at `at` (which has room). */
export function copyBytes(from: Uint8Array, start: number, length: number, to: Uint8Array, at: number): void {
  if (length > SHORT_COPY_BYTES) {
    // A plain Uint8Array over the range: `subarray` of a Buffer would construct a Buffer, which cost as much as the copy.
    to.set(new Uint8Array(from.buffer, from.byteOffset + start, length), at);
    return;
  }
  for (let i = 0; i < length; i++) to[at + i] = from[start + i]!;
}
