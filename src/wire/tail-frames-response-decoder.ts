/**
 * Decodes a frames-mode `wald.v1.TailWalResponse` (what a follower receives) into the generated
 * message type, with every frame's bytes and the segment header as views into the received
 * message: no copy. The generated decoder copies each frame out of the message (about a megabyte
 * per message in a catch-up), which showed in the follower's profile as `Buffer` copies and the
 * garbage collection of them. The follower appends the views as they are (`Wal.appendFrames`
 * writes them with one `writev`), so a frame's bytes are copied only by the kernel.
 *
 * Field numbers follow `proto/wald/v1/tail.proto` and `replication.proto`; unknown fields are
 * skipped, as protobuf requires, and so are records (field 1): a frames-mode message carries
 * none. Throws `RangeError` on malformed bytes (grpc-js then fails the call, and the follower
 * reconnects).
 */
import type { RawFrame } from '../gen/wald/v1/replication.js';
import type { TailWalResponse } from '../gen/wald/v1/tail.js';
import { WIRE_FIXED32, WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireReader } from './protobuf-wire.js';

const EMPTY = Buffer.alloc(0);

function bigVarint(reader: WireReader): bigint {
  return BigInt(reader.varint());
}

function fixed32(reader: WireReader): number {
  if (reader.position + 4 > reader.end) throw new RangeError('truncated fixed32');
  const value = reader.buf.readUInt32LE(reader.position);
  reader.position += 4;
  return value;
}

function decodeRawFrame(reader: WireReader, end: number): RawFrame {
  const frame: { -readonly [K in keyof RawFrame]: RawFrame[K] } = { frame: EMPTY, baseOffset: 0n, recordCount: 0, epoch: 0n, crc32c: 0 };
  const outer = reader.end;
  reader.end = end;
  try {
    while (!reader.done) {
      const tag = reader.varint();
      const field = Math.floor(tag / 8);
      const wireType = tag & 7;
      if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) {
        const bodyEnd = reader.bodyEnd();
        frame.frame = reader.buf.subarray(reader.position, bodyEnd);
        reader.position = bodyEnd;
      } else if (field === 2 && wireType === WIRE_VARINT) {
        frame.baseOffset = bigVarint(reader);
      } else if (field === 3 && wireType === WIRE_VARINT) {
        frame.recordCount = reader.varint() >>> 0;
      } else if (field === 4 && wireType === WIRE_VARINT) {
        frame.epoch = bigVarint(reader);
      } else if (field === 5 && wireType === WIRE_FIXED32) {
        frame.crc32c = fixed32(reader);
      } else {
        reader.skip(wireType);
      }
    }
  } finally {
    reader.end = outer;
  }
  return frame;
}

/** Decodes one frames-mode TailWal response; frame bytes and the segment header are views into `buf`. */
export function decodeTailFramesResponse(buf: Buffer): TailWalResponse {
  const reader = new WireReader(buf);
  const frames: RawFrame[] = [];
  const message: { -readonly [K in keyof TailWalResponse]: TailWalResponse[K] } = {
    records: [],
    firstOffset: 0n,
    nextOffset: 0n,
    frames,
    segmentHeader: EMPTY,
    epoch: 0n,
  };
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 3 && wireType === WIRE_VARINT) {
      message.firstOffset = bigVarint(reader);
    } else if (field === 4 && wireType === WIRE_VARINT) {
      message.nextOffset = bigVarint(reader);
    } else if (field === 5 && wireType === WIRE_VARINT) {
      message.highWatermark = bigVarint(reader);
    } else if (field === 6 && wireType === WIRE_LENGTH_DELIMITED) {
      const end = reader.bodyEnd();
      frames.push(decodeRawFrame(reader, end));
      reader.position = end;
    } else if (field === 7 && wireType === WIRE_LENGTH_DELIMITED) {
      const end = reader.bodyEnd();
      message.segmentHeader = buf.subarray(reader.position, end);
      reader.position = end;
    } else if (field === 8 && wireType === WIRE_VARINT) {
      message.epoch = bigVarint(reader);
    } else if (field === 9 && wireType === WIRE_VARINT) {
      message.highWatermarkTimestamp = bigVarint(reader);
    } else {
      reader.skip(wireType);
    }
  }
  return message;
}
