/**
 * checkRawFrames: each RawFrame must agree with its own header and follow the one before; anything
 * else is WAL_FRAME_REJECTED with its reason, before any frame is written.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodedRecordBytes, encodeFrame, stampFrame } from '../../../src/codec/frame.js';
import { isWalError } from '../../../src/errors.js';
import type { RawFrame } from '../../../src/gen/wald/v1/replication.js';
import { checkRawFrames } from '../../../src/replication/raw-frame-check.js';

function rawAt(baseOffset: number, count: number, epoch = 3): RawFrame {
  const records = Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`v${baseOffset + i}`) }));
  const frame = encodeFrame(records, records.reduce((sum, r) => sum + encodedRecordBytes(r), 0));
  stampFrame(frame, baseOffset, 1000, epoch, 0, 42);
  return { frame, baseOffset: BigInt(baseOffset), recordCount: count, epoch: BigInt(epoch), crc32c: frame.readUInt32LE(4) };
}

function rejectedWith(reason: string) {
  return (error: unknown) => isWalError(error, 'WAL_FRAME_REJECTED') && error.details['reason'] === reason;
}

describe('checkRawFrames', () => {
  test('accepts consecutive frames that agree with their headers', () => {
    checkRawFrames([rawAt(10, 3), rawAt(13, 5), rawAt(18, 1)]);
  });

  test('refuses a frame whose fields disagree with its header', () => {
    assert.throws(() => checkRawFrames([{ ...rawAt(10, 3), baseOffset: 11n }]), rejectedWith('header'));
    assert.throws(() => checkRawFrames([{ ...rawAt(10, 3), recordCount: 2 }]), rejectedWith('header'));
    assert.throws(() => checkRawFrames([{ ...rawAt(10, 3), crc32c: 1 }]), rejectedWith('header'));
    assert.throws(() => checkRawFrames([{ ...rawAt(10, 3), epoch: 4n }]), rejectedWith('header'));
  });

  test('refuses a frame that is not whole', () => {
    const raw = rawAt(10, 3);
    assert.throws(() => checkRawFrames([{ ...raw, frame: raw.frame.subarray(0, 32) }]), rejectedWith('length'));
    assert.throws(() => checkRawFrames([{ ...raw, frame: raw.frame.subarray(0, raw.frame.length - 8) }]), rejectedWith('length'));
    assert.throws(() => checkRawFrames([{ ...raw, frame: Buffer.concat([raw.frame, Buffer.alloc(8)]) }]), rejectedWith('length'));
  });

  test('refuses a gap and an overlap between the frames of a message', () => {
    assert.throws(() => checkRawFrames([rawAt(10, 3), rawAt(14, 1)]), rejectedWith('gap'));
    assert.throws(() => checkRawFrames([rawAt(10, 3), rawAt(12, 1)]), rejectedWith('overlap'));
  });

  test('reads a 48-bit epoch from the header (low 32 bits at 32, high 16 at 10)', () => {
    checkRawFrames([rawAt(0, 1, 2 ** 40 + 5)]);
  });
});
