/**
 * The recovery-point file (`RECOVERY`): how far the log was known to be durable, kept apart from the
 * log so that it also covers the last synced frames (which no later frame vouches for). Two slots,
 * written in turn, each in a sector of its own, so that a torn write of one leaves the other.
 *
 * ```
 *  slot at byte 0 and at byte 512, 32 bytes each; the rest of the 1024-byte file is zero
 *  0       4       6       8               16              24      28      32
 *  +-------+-------+-------+---------------+---------------+-------+-------+
 *  | magic |version| zero  |   sequence    | durable next  | crc   | zero  |
 *  +-------+-------+-------+---------------+---------------+-------+-------+
 * ```
 *
 * `magic` is ASCII `WRCP`; `crc` is CRC-32C of bytes 0..24 of the slot. `durable next`: every offset
 * below it was on stable storage when the slot was written. The valid slot with the higher
 * `sequence` wins; a file with no valid slot says nothing.
 */
import { crc32c } from './crc32c.js';
import { readU64, writeU64 } from './u64.js';

export const RECOVERY_POINT_MAGIC = 0x50435257; // "WRCP"
export const RECOVERY_POINT_VERSION = 1;
/** Bytes of the whole file. */
export const RECOVERY_POINT_FILE_BYTES = 1024;
/** Where each slot starts. */
export const RECOVERY_POINT_SLOTS: readonly number[] = [0, 512];
const SLOT_BYTES = 32;

/** One slot's contents. */
export interface RecoveryPoint {
  readonly sequence: number;
  readonly durableNext: number;
}

/** Encodes a slot (32 bytes) to be written at `RECOVERY_POINT_SLOTS[sequence % 2]`. */
export function encodeRecoveryPoint(point: RecoveryPoint): Buffer {
  const buf = Buffer.alloc(SLOT_BYTES);
  buf.writeUInt32LE(RECOVERY_POINT_MAGIC, 0);
  buf.writeUInt16LE(RECOVERY_POINT_VERSION, 4);
  writeU64(buf, point.sequence, 8);
  writeU64(buf, point.durableNext, 16);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 24)), 24);
  return buf;
}

/** The newest valid slot of a recovery-point file, or undefined when none checks out. Never throws. */
export function decodeRecoveryPoint(file: Buffer): RecoveryPoint | undefined {
  let best: RecoveryPoint | undefined;
  for (const start of RECOVERY_POINT_SLOTS) {
    if (file.length < start + SLOT_BYTES) continue;
    const slot = file.subarray(start, start + SLOT_BYTES);
    if (slot.readUInt32LE(0) !== RECOVERY_POINT_MAGIC || slot.readUInt16LE(4) !== RECOVERY_POINT_VERSION) continue;
    if (slot.readUInt32LE(24) !== crc32c(slot.subarray(0, 24))) continue;
    const point = { sequence: readU64(slot, 8), durableNext: readU64(slot, 16) };
    if (best === undefined || point.sequence > best.sequence) best = point;
  }
  return best;
}
