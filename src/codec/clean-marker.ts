/**
 * The clean-shutdown marker (`CLEAN`): written last by a clean close, it says the active segment's
 * index covers the segment to its end, so the next open need not re-read it.
 *
 * ```
 *  0               8               16      20      24
 *  +---------------+---------------+-------+-------+
 *  | base offset   |   data end    |  crc  | zero  |
 *  +---------------+---------------+-------+-------+
 * ```
 *
 * `base offset` names the active segment, `data end` the byte just past its last frame; `crc` is
 * CRC-32C of bytes 0..16.
 */
import { crc32c } from './crc32c.js';
import { readU64, writeU64 } from './u64.js';

const MARKER_BYTES = 24;

/** What a clean-shutdown marker says. */
export interface CleanMarker {
  readonly baseOffset: number;
  readonly dataEnd: number;
}

/** Encodes a clean-shutdown marker. */
export function encodeCleanMarker(marker: CleanMarker): Buffer {
  const buf = Buffer.alloc(MARKER_BYTES);
  writeU64(buf, marker.baseOffset, 0);
  writeU64(buf, marker.dataEnd, 8);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 16)), 16);
  return buf;
}

/** Decodes a clean-shutdown marker; undefined when it does not check out. Never throws. */
export function decodeCleanMarker(buf: Buffer): CleanMarker | undefined {
  if (buf.length !== MARKER_BYTES || buf.readUInt32LE(16) !== crc32c(buf.subarray(0, 16))) return undefined;
  return { baseOffset: readU64(buf, 0), dataEnd: readU64(buf, 8) };
}
