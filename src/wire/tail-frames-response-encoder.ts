/**
 * Encodes a frames-mode `wald.v1.TailWalResponse` (what a leader sends a follower) straight from
 * the frames `Wal.readFrames` read, into one buffer: each frame's stored bytes are copied once,
 * into the message, and nothing is decoded. The generated encoder builds a message object per
 * frame (a `BigInt` per offset and epoch), grows its writer by doubling and copies every frame into
 * it and then out of it again (`finish()`, then `Buffer.from`): in a catch-up's profile that was
 * a third of the leader's busy time.
 *
 * Field numbers follow `proto/wald/v1/tail.proto` (`TailWalResponse`) and `replication.proto`
 * (`RawFrame`), written in field-number order; a unit test checks the bytes decode, with the
 * generated decoder, to the message the generated encoder would send. The proto3 `optional` fields
 * (`high_watermark`, `high_watermark_timestamp`) are written whenever they are set, even when 0;
 * every other field is left out at its default, as proto3 requires.
 */
import { varintBytes, writeVarint } from './protobuf-wire.js';

// Tags: (field number << 3) | wire type.
const TAG_FIRST_OFFSET = (3 << 3) | 0;
const TAG_NEXT_OFFSET = (4 << 3) | 0;
const TAG_HIGH_WATERMARK = (5 << 3) | 0;
const TAG_FRAMES = (6 << 3) | 2;
const TAG_SEGMENT_HEADER = (7 << 3) | 2;
const TAG_EPOCH = (8 << 3) | 0;
const TAG_HIGH_WATERMARK_TIMESTAMP = (9 << 3) | 0;
const TAG_RAW_FRAME = (1 << 3) | 2;
const TAG_RAW_BASE_OFFSET = (2 << 3) | 0;
const TAG_RAW_RECORD_COUNT = (3 << 3) | 0;
const TAG_RAW_EPOCH = (4 << 3) | 0;
const TAG_RAW_CRC32C = (5 << 3) | 5;

/** One frame as a leader stores it (`RawFrameInfo` of the engine has these fields). */
export interface StoredFrameBytes {
  /** Header, payload and padding, as stored. */
  readonly bytes: Buffer;
  readonly baseOffset: number;
  readonly recordCount: number;
  readonly epoch: number;
  /** The checksum as stored. */
  readonly crc32c: number;
}

/** What a frames-mode response carries besides its frames. */
export interface FramesResponsePosition {
  /** The high watermark, or -1 for none (the field is then left unset). */
  readonly highWatermark: number;
  readonly firstOffset: number;
  readonly nextOffset: number;
  readonly epoch: number;
  /** The high watermark's timestamp, or undefined to leave the field unset. */
  readonly highWatermarkTimestamp: number | undefined;
}

/** Bytes of one RawFrame message's body. */
function rawFrameBodyBytes(frame: StoredFrameBytes): number {
  let bytes = 0;
  if (frame.bytes.length > 0) bytes += 1 + varintBytes(frame.bytes.length) + frame.bytes.length;
  if (frame.baseOffset !== 0) bytes += 1 + varintBytes(frame.baseOffset);
  if (frame.recordCount !== 0) bytes += 1 + varintBytes(frame.recordCount);
  if (frame.epoch !== 0) bytes += 1 + varintBytes(frame.epoch);
  if (frame.crc32c !== 0) bytes += 1 + 4;
  return bytes;
}

/**
 * The encoded frames-mode `TailWalResponse` of `frames` (a heartbeat when empty), with
 * `segmentHeader` when given and not empty.
 */
export function encodeTailFramesResponse(frames: readonly StoredFrameBytes[], segmentHeader: Buffer | undefined, position: FramesResponsePosition): Buffer {
  const { highWatermark, firstOffset, nextOffset, epoch, highWatermarkTimestamp } = position;
  let total = 0;
  if (firstOffset !== 0) total += 1 + varintBytes(firstOffset);
  if (nextOffset !== 0) total += 1 + varintBytes(nextOffset);
  if (highWatermark >= 0) total += 1 + varintBytes(highWatermark);
  const bodies = new Array<number>(frames.length);
  for (let i = 0; i < frames.length; i++) {
    const body = rawFrameBodyBytes(frames[i]!);
    bodies[i] = body;
    total += 1 + varintBytes(body) + body;
  }
  if (segmentHeader !== undefined && segmentHeader.length > 0) total += 1 + varintBytes(segmentHeader.length) + segmentHeader.length;
  if (epoch !== 0) total += 1 + varintBytes(epoch);
  if (highWatermarkTimestamp !== undefined) total += 1 + varintBytes(highWatermarkTimestamp);

  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  if (firstOffset !== 0) {
    buf[p++] = TAG_FIRST_OFFSET;
    p = writeVarint(buf, p, firstOffset);
  }
  if (nextOffset !== 0) {
    buf[p++] = TAG_NEXT_OFFSET;
    p = writeVarint(buf, p, nextOffset);
  }
  if (highWatermark >= 0) {
    buf[p++] = TAG_HIGH_WATERMARK;
    p = writeVarint(buf, p, highWatermark);
  }
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i]!;
    buf[p++] = TAG_FRAMES;
    p = writeVarint(buf, p, bodies[i]!);
    if (frame.bytes.length > 0) {
      buf[p++] = TAG_RAW_FRAME;
      p = writeVarint(buf, p, frame.bytes.length);
      p += frame.bytes.copy(buf, p);
    }
    if (frame.baseOffset !== 0) {
      buf[p++] = TAG_RAW_BASE_OFFSET;
      p = writeVarint(buf, p, frame.baseOffset);
    }
    if (frame.recordCount !== 0) {
      buf[p++] = TAG_RAW_RECORD_COUNT;
      p = writeVarint(buf, p, frame.recordCount);
    }
    if (frame.epoch !== 0) {
      buf[p++] = TAG_RAW_EPOCH;
      p = writeVarint(buf, p, frame.epoch);
    }
    if (frame.crc32c !== 0) {
      buf[p++] = TAG_RAW_CRC32C;
      p = buf.writeUInt32LE(frame.crc32c >>> 0, p);
    }
  }
  if (segmentHeader !== undefined && segmentHeader.length > 0) {
    buf[p++] = TAG_SEGMENT_HEADER;
    p = writeVarint(buf, p, segmentHeader.length);
    p += segmentHeader.copy(buf, p);
  }
  if (epoch !== 0) {
    buf[p++] = TAG_EPOCH;
    p = writeVarint(buf, p, epoch);
  }
  if (highWatermarkTimestamp !== undefined) {
    buf[p++] = TAG_HIGH_WATERMARK_TIMESTAMP;
    p = writeVarint(buf, p, highWatermarkTimestamp);
  }
  if (p !== total) throw new Error(`frames response encoded to ${p} bytes, ${total} expected`);
  return buf;
}
