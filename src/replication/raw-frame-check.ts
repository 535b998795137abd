import { FRAME_HEADER_BYTES, readFrameHeader } from '../codec/frame.js';
import { WalError } from '../errors.js';
import type { RawFrame } from '../gen/wald/v1/replication.js';

/**
 * Checks that each RawFrame of a message agrees with its own header (length, base offset, record
 * count, CRC as stored, epoch) and that the frames are consecutive, before any is handed to
 * `Wal.appendFrames` (which checks the CRC itself, with the log's seed, and the continuity with the
 * log). A frame whose fields and header disagree was damaged or forged on the way: the follower
 * stops rather than guess which of the two is right.
 *
 * @throws WalError `WAL_FRAME_REJECTED` (details `reason` `length` | `header` | `gap` |
 *   `overlap`, `offset`): nothing of the message is to be written.
 */
export function checkRawFrames(frames: readonly RawFrame[]): void {
  let expected: number | undefined;
  for (const raw of frames) {
    const offset = Number(raw.baseOffset);
    const bytes = raw.frame;
    if (bytes.length < FRAME_HEADER_BYTES || bytes.length % 8 !== 0) {
      throw rejected('length', offset, `the frame at offset ${offset} is ${bytes.length} bytes long: not a whole frame`);
    }
    const header = readFrameHeader(bytes, 0);
    const crc = bytes.readUInt32LE(4);
    if (header.length > bytes.length || header.length + 8 <= bytes.length) {
      throw rejected('length', offset, `the frame at offset ${offset} says it is ${header.length} bytes long but ${bytes.length} came`);
    }
    if (header.baseOffset !== offset || header.recordCount !== raw.recordCount || crc !== raw.crc32c || header.leaderEpoch !== Number(raw.epoch)) {
      throw rejected('header', offset, `the frame at offset ${offset} disagrees with its header (base offset ${header.baseOffset}, ${header.recordCount} records, crc ${crc}, epoch ${header.leaderEpoch})`);
    }
    if (expected !== undefined && offset !== expected) {
      const reason = offset > expected ? 'gap' : 'overlap';
      throw rejected(reason, offset, `the frame at offset ${offset} does not follow the one before it (expected offset ${expected})`);
    }
    expected = offset + header.recordCount;
  }
}

function rejected(reason: string, offset: number, message: string): WalError {
  return new WalError('WAL_FRAME_REJECTED', `${message}: refused, nothing written`, { reason, offset });
}
