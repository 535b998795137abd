/**
 * The epoch-history file (`EPOCHS`): which leader epoch wrote which stretch of the log, as
 * entries `epoch -> start offset`, oldest first (epochs strictly increasing, start offsets
 * non-decreasing). All integers little-endian.
 *
 * ```
 *  0       4       6       8       12      16                                16 + 16n  20 + 16n
 *  +-------+-------+-------+-------+-------+---------------------------------+-------+
 *  | magic |version| flags | count | zero  | entries: epoch u64, start u64 ...|  crc  |
 *  +-------+-------+-------+-------+-------+---------------------------------+-------+
 * ```
 *
 * Version 2 (written only when the floor below is not 0) has 8 more header bytes after `zero`:
 * `floor` u64, the greatest epoch an entry of this history ever had that it no longer holds (a
 * cut of the log removed it: `wald repair`, a follower's divergence cut, or an open that dropped
 * an entry starting past a crashed log's end). A promotion goes above it, so that no epoch number
 * is given out twice in one log (a follower that copied the removed epoch's records would
 * otherwise take the new ones for the same leader's). Version 1 reads as floor 0.
 *
 * `magic` is ASCII `WEPH`; `crc` is CRC-32C of every byte before it. `flags` bit 0
 * (`replicated`): the log holds frames another log stamped (appended as they were by a
 * follower), whose sync-lag claims (frame.ts) are the other log's durability, not this one's:
 * recovery does not believe them (docs/engine.md). Other flag bits are refused.
 *
 * An epoch is at most 2^48 - 1 (the frame header's room, frame.ts). The frames of an epoch start
 * at its entry's start offset and run to the next entry's; frames before the first entry carry
 * epoch 0. The file is small and rewritten whole (temp -> fdatasync -> rename -> directory fsync).
 */
import { crc32c } from './crc32c.js';
import { MAX_EPOCH } from './frame.js';
import { readU64, writeU64 } from './u64.js';

export const EPOCH_HISTORY_MAGIC = 0x48504557; // "WEPH" read as a little-endian u32
export const EPOCH_HISTORY_VERSION = 1;
/** The version that carries a floor (see the file comment). */
export const EPOCH_HISTORY_VERSION_WITH_FLOOR = 2;
const HEADER_BYTES = 16;
const FLOOR_BYTES = 8;
const ENTRY_BYTES = 16;
const FLAG_REPLICATED = 1;

/** One entry: from `startOffset` on, frames carry `epoch` (until the next entry's start). */
export interface EpochStart {
  readonly epoch: number;
  readonly startOffset: number;
}

/** The decoded file. */
export interface EpochHistoryFile {
  readonly entries: readonly EpochStart[];
  /** The log holds frames another log stamped (flag `replicated`). */
  readonly isReplicated: boolean;
  /** The greatest epoch the history held and no longer holds (0: none); see the file comment. */
  readonly floor?: number | undefined;
}

/** Encodes the whole file. The entries must be in order (see the file comment). */
export function encodeEpochHistory(file: EpochHistoryFile): Buffer {
  const floor = file.floor ?? 0;
  const header = floor > 0 ? HEADER_BYTES + FLOOR_BYTES : HEADER_BYTES;
  const buf = Buffer.alloc(header + ENTRY_BYTES * file.entries.length + 4);
  buf.writeUInt32LE(EPOCH_HISTORY_MAGIC, 0);
  buf.writeUInt16LE(floor > 0 ? EPOCH_HISTORY_VERSION_WITH_FLOOR : EPOCH_HISTORY_VERSION, 4);
  buf.writeUInt16LE(file.isReplicated ? FLAG_REPLICATED : 0, 6);
  buf.writeUInt32LE(file.entries.length, 8);
  if (floor > 0) writeU64(buf, floor, HEADER_BYTES);
  file.entries.forEach((entry, i) => {
    writeU64(buf, entry.epoch, header + ENTRY_BYTES * i);
    writeU64(buf, entry.startOffset, header + ENTRY_BYTES * i + 8);
  });
  const end = buf.length - 4;
  buf.writeUInt32LE(crc32c(buf.subarray(0, end)), end);
  return buf;
}

/** Result of decoding the file: never throws on bad bytes. */
export type EpochHistoryResult = { readonly ok: true; readonly file: EpochHistoryFile } | { readonly ok: false; readonly reason: string };

/** Decodes and checks an epoch-history file. */
export function decodeEpochHistory(buf: Buffer): EpochHistoryResult {
  if (buf.length < HEADER_BYTES + 4) return { ok: false, reason: 'short file' };
  if (buf.readUInt32LE(0) !== EPOCH_HISTORY_MAGIC) return { ok: false, reason: 'bad magic' };
  const version = buf.readUInt16LE(4);
  if (version !== EPOCH_HISTORY_VERSION && version !== EPOCH_HISTORY_VERSION_WITH_FLOOR) return { ok: false, reason: `unsupported version ${version}` };
  const header = version === EPOCH_HISTORY_VERSION_WITH_FLOOR ? HEADER_BYTES + FLOOR_BYTES : HEADER_BYTES;
  const count = buf.readUInt32LE(8);
  const end = header + ENTRY_BYTES * count;
  if (buf.length !== end + 4) return { ok: false, reason: `file of ${buf.length} bytes for ${count} entries` };
  if (buf.readUInt32LE(end) !== crc32c(buf.subarray(0, end))) return { ok: false, reason: 'checksum mismatch' };
  const floor = header > HEADER_BYTES ? readU64(buf, HEADER_BYTES) : 0;
  if (floor > MAX_EPOCH) return { ok: false, reason: `floor ${floor} out of range` };
  const flags = buf.readUInt16LE(6);
  if ((flags & ~FLAG_REPLICATED) !== 0) return { ok: false, reason: `unknown flags 0x${flags.toString(16)}` };
  const entries: EpochStart[] = [];
  for (let i = 0; i < count; i++) {
    const entry = { epoch: readU64(buf, header + ENTRY_BYTES * i), startOffset: readU64(buf, header + ENTRY_BYTES * i + 8) };
    const previous = entries[i - 1];
    if (entry.epoch > MAX_EPOCH || entry.epoch < 1) return { ok: false, reason: `entry ${i}: epoch ${entry.epoch} out of range` };
    if (previous !== undefined && (entry.epoch <= previous.epoch || entry.startOffset < previous.startOffset)) {
      return { ok: false, reason: `entry ${i} (epoch ${entry.epoch} at ${entry.startOffset}) out of order` };
    }
    entries.push(entry);
  }
  const isReplicated = (flags & FLAG_REPLICATED) !== 0;
  return { ok: true, file: floor > 0 ? { entries, isReplicated, floor } : { entries, isReplicated } };
}
