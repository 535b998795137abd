/**
 * Byte strings: bytes held as a JavaScript string of one char per byte (latin1, U+0000..U+00FF).
 *
 * The key-value state keeps keys and values this way rather than as `Buffer`s: V8 stores such a
 * string in one flat allocation with a 16-byte header (a `Buffer` costs an object, a backing store
 * and, when pooled, pins an 8 KiB slab that may hold mostly garbage), and `<` on two byte strings
 * compares them by unsigned bytes, a prefix first, as `Buffer.compare` does, without a native call.
 * The conversion is lossless in both directions. docs/state.md ("Representation") has the figures.
 */

/** A byte string of `bytes`. */
export function toByteString(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return buf.toString('latin1');
}

/** The bytes of a byte string, in a new `Buffer`. */
export function fromByteString(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** Compares two byte strings by unsigned bytes (the order of `Buffer.compare`). */
export function compareByteStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Byte strings this short are written in JavaScript: cheaper than a call into native code. */
const SHORT_WRITE_CHARS = 32;

/** Writes the bytes of `text` into `buf` at `position` (which has room); returns the bytes written. */
export function writeByteString(buf: Buffer, text: string, position: number): number {
  if (text.length > SHORT_WRITE_CHARS) return buf.write(text, position, 'latin1');
  for (let i = 0; i < text.length; i++) buf[position + i] = text.charCodeAt(i);
  return text.length;
}
