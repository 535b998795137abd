/**
 * 64-bit little-endian integers as JS numbers, written as two 32-bit halves: cheaper than going
 * through `BigInt` on the hot path. Values must be non-negative safe integers (< 2^53).
 */
const TWO_32 = 0x1_0000_0000;

/** Writes `value` as a u64 at `position`. */
export function writeU64(buf: Buffer, value: number, position: number): void {
  buf.writeUInt32LE(value % TWO_32, position);
  buf.writeUInt32LE(Math.floor(value / TWO_32), position + 4);
}

/** Reads a u64 at `position`; values above 2^53 lose precision (never written by wald). */
export function readU64(buf: Buffer, position: number): number {
  return buf.readUInt32LE(position) + buf.readUInt32LE(position + 4) * TWO_32;
}
