/**
 * The frames-mode TailWal codec (src/wire/tail-frames-response-*.ts) against the generated one:
 * the hand-written encoder's bytes decode, with the generated decoder, to the message the
 * generated encoder would send; the hand-written decoder reads the generated encoder's bytes to
 * the same message, with frames that are views into the received buffer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TailWalResponse } from '../../../src/gen/wald/v1/tail.js';
import { decodeTailFramesResponse } from '../../../src/wire/tail-frames-response-decoder.js';
import { encodeTailFramesResponse, type FramesResponsePosition, type StoredFrameBytes } from '../../../src/wire/tail-frames-response-encoder.js';
import { testSeed } from '../../support/seed.js';

const offset = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));

const frameArb: fc.Arbitrary<StoredFrameBytes> = fc.record({
  bytes: bytes(300),
  baseOffset: offset,
  recordCount: fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 32 - 1 })),
  epoch: offset,
  crc32c: fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 32 - 1 })),
});

const positionArb: fc.Arbitrary<FramesResponsePosition> = fc.record({
  highWatermark: fc.oneof(fc.constant(-1), fc.constant(0), offset),
  firstOffset: offset,
  nextOffset: offset,
  epoch: offset,
  highWatermarkTimestamp: fc.option(offset, { nil: undefined }),
});

/** The message the generated codec is given for the same response (the reference). */
function generatedMessage(frames: readonly StoredFrameBytes[], segmentHeader: Buffer | undefined, at: FramesResponsePosition): TailWalResponse {
  return {
    records: [],
    highWatermark: at.highWatermark < 0 ? undefined : BigInt(at.highWatermark),
    firstOffset: BigInt(at.firstOffset),
    nextOffset: BigInt(at.nextOffset),
    frames: frames.map((f) => ({ frame: f.bytes, baseOffset: BigInt(f.baseOffset), recordCount: f.recordCount, epoch: BigInt(f.epoch), crc32c: f.crc32c })),
    segmentHeader: segmentHeader ?? Buffer.alloc(0),
    epoch: BigInt(at.epoch),
    highWatermarkTimestamp: at.highWatermarkTimestamp === undefined ? undefined : BigInt(at.highWatermarkTimestamp),
  };
}

/** Buffers compared by content (the generated decoder yields Uint8Array views or Buffers), an unset optional as an absent one. */
function normalized(message: TailWalResponse): unknown {
  return {
    ...message,
    highWatermark: message.highWatermark,
    highWatermarkTimestamp: message.highWatermarkTimestamp,
    frames: message.frames.map((f) => ({ ...f, frame: Buffer.from(f.frame).toString('hex') })),
    segmentHeader: Buffer.from(message.segmentHeader).toString('hex'),
  };
}

test('the encoder writes what the generated decoder reads as the generated message', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 5 }), fc.option(bytes(80), { nil: undefined }), positionArb, (frames, header, at) => {
      const decoded = TailWalResponse.decode(encodeTailFramesResponse(frames, header, at));
      assert.deepEqual(normalized(decoded), normalized(generatedMessage(frames, header, at)));
    }),
    { seed: testSeed('tail-frames-response encoder'), numRuns: 300 },
  );
});

test('the decoder reads the generated encoder\'s bytes as the same message', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 5 }), fc.option(bytes(80), { nil: undefined }), positionArb, (frames, header, at) => {
      const expected = generatedMessage(frames, header, at);
      const decoded = decodeTailFramesResponse(Buffer.from(TailWalResponse.encode(expected).finish()));
      assert.deepEqual(normalized(decoded), normalized(expected));
    }),
    { seed: testSeed('tail-frames-response decoder'), numRuns: 300 },
  );
});

test('decoded frames and segment header are views into the received message, not copies', () => {
  // Larger than Buffer's pool, so that a copy could not share the message's ArrayBuffer by chance.
  const frame = Buffer.alloc(16 * 1024, 'frame bytes ');
  const header = Buffer.alloc(64, 9);
  const message = encodeTailFramesResponse([{ bytes: frame, baseOffset: 7, recordCount: 2, epoch: 1, crc32c: 5 }], header, { highWatermark: 8, firstOffset: 0, nextOffset: 9, epoch: 1, highWatermarkTimestamp: undefined });
  const decoded = decodeTailFramesResponse(message);
  assert.equal(decoded.frames[0]!.frame.buffer, message.buffer);
  assert.equal(decoded.segmentHeader.buffer, message.buffer);
  assert.deepEqual(Buffer.from(decoded.frames[0]!.frame), frame);
});

test('the decoder refuses truncated bytes with a RangeError', () => {
  const message = encodeTailFramesResponse([{ bytes: Buffer.alloc(40, 1), baseOffset: 7, recordCount: 2, epoch: 1, crc32c: 5 }], undefined, { highWatermark: 8, firstOffset: 0, nextOffset: 9, epoch: 1, highWatermarkTimestamp: 3 });
  for (let cut = 1; cut < message.length; cut++) {
    // Every proper prefix either fails or decodes to fewer fields; none reads past its end.
    try {
      const decoded = decodeTailFramesResponse(message.subarray(0, cut));
      assert.ok(decoded.frames.length === 0 || decoded.highWatermarkTimestamp === undefined);
    } catch (error) {
      assert.ok(error instanceof RangeError, String(error));
    }
  }
});
