/** Frames and file headers start on 8-byte boundaries, so a length field never straddles a sector. */
export const ALIGNMENT = 8;

/** `n` rounded up to the next multiple of 8 (safe for any non-negative safe integer). */
export function align8(n: number): number {
  const rest = n % ALIGNMENT;
  return rest === 0 ? n : n + ALIGNMENT - rest;
}
