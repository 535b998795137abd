import { align8 } from '../codec/align.js';
import type { EpochStart } from '../codec/epoch-history-file.js';
import { checkFrame, decodeProducer, FRAME_HEADER_BYTES, type FrameHeader, type ProducerStamp } from '../codec/frame.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import { WalError, type ErrorDetails } from '../errors.js';
import type { SegmentTarget } from './segment-file.js';

/** Why `appendFrames` refused a run (`WAL_FRAME_REJECTED`, `details.reason`). */
export type FrameRejection = 'length' | 'checksum' | 'gap' | 'overlap' | 'epoch' | 'header' | 'compacted';

/** One frame of another log, checked: its bytes (as given), header, the seed it checks out with, its producer section. */
export interface CheckedFrame {
  readonly frame: Buffer;
  readonly header: FrameHeader;
  readonly seed: number;
  readonly producer: ProducerStamp | undefined;
}

/** Where the run would land: the log's next offset and epoch, and the segment its next frame goes into. */
export interface FrameRunContext {
  readonly nextOffset: number;
  readonly epoch: number;
  readonly segment: { readonly segmentId: string; readonly frameSeed: number };
}

/** A run that passed every check. */
export interface CheckedRun {
  readonly frames: readonly CheckedFrame[];
  /** The segment of the other log to start for the first frame; undefined: the frames go where the log's next frame goes. */
  readonly target: SegmentTarget | undefined;
  /** Epochs the run starts (each greater than the one before), with the base offset of its first frame. */
  readonly epochs: readonly EpochStart[];
}

/**
 * Checks a run of frames another log stamped (a follower's frames from its leader) before any of
 * it is written: each is a whole frame (its length field, rounded up to 8, is its size), checks
 * out with the seed of the segment it lands in (`segmentHeader`'s, or else the log's next
 * frame's), continues the log (the first at `context.nextOffset`, each after the one before) and
 * carries an epoch no older than the newest so far. `segmentHeader` says the first frame starts a
 * segment of the other log, whose header it is: it must decode, start at the first frame, and not
 * be a segment rewritten by key compaction (its gaps would break continuity; a follower installs a
 * snapshot instead).
 *
 * Throws `WalError` `WAL_FRAME_REJECTED` (details `reason` as {@link FrameRejection}, `index` of
 * the frame in the run, `offset` its base offset, and `expectedOffset` / `epoch` + `currentEpoch`
 * where they apply); `TypeError` when `frames` is not an array of Buffers, `RangeError` when it is
 * empty.
 */
export function checkFrameRun(frames: readonly Buffer[], segmentHeader: Buffer | undefined, context: FrameRunContext): CheckedRun {
  if (!Array.isArray(frames) || !frames.every((frame) => Buffer.isBuffer(frame))) throw new TypeError('frames must be an array of Buffers');
  if (frames.length === 0) throw new RangeError('frames must hold at least one frame');
  if (segmentHeader !== undefined && !Buffer.isBuffer(segmentHeader)) throw new TypeError('options.segmentHeader must be a Buffer');
  const target = segmentHeader === undefined ? undefined : checkSegmentHeader(segmentHeader);
  const landing = target !== undefined && target.header.segmentId !== context.segment.segmentId ? target : undefined;
  const seed = target?.header.frameSeed ?? context.segment.frameSeed;
  const checked: CheckedFrame[] = [];
  const epochs: EpochStart[] = [];
  let expectedOffset = context.nextOffset;
  let newest = context.epoch;
  frames.forEach((frame, index) => {
    const length = frame.length >= 8 ? frame.readUInt32LE(0) : 0;
    if (frame.length % 8 !== 0 || length < FRAME_HEADER_BYTES || align8(length) !== frame.length) {
      throw rejected('length', `frame ${index} is ${frame.length} bytes, not one whole 8-byte-aligned frame (its length field says ${length})`, { index, bytes: frame.length, length });
    }
    const check = checkFrame(frame, 0, frame.length, seed);
    if (check.kind !== 'ok') {
      const why = check.kind === 'invalid' ? check.reason : check.kind;
      throw rejected('checksum', `frame ${index} does not check out (${why})`, { index, offset: frame.length >= 24 ? frame.readUInt32LE(16) + frame.readUInt32LE(20) * 2 ** 32 : undefined });
    }
    const { header } = check;
    if (index === 0 && target !== undefined && target.header.baseOffset !== header.baseOffset) {
      throw rejected('header', `the segment header starts at offset ${target.header.baseOffset}, the first frame at ${header.baseOffset}`, { index, offset: header.baseOffset, expectedOffset: target.header.baseOffset });
    }
    if (header.baseOffset !== expectedOffset) {
      const reason = header.baseOffset > expectedOffset ? 'gap' : 'overlap';
      throw rejected(reason, `frame ${index} starts at offset ${header.baseOffset}, expected ${expectedOffset} (${reason})`, { index, offset: header.baseOffset, expectedOffset });
    }
    if (header.leaderEpoch < newest) {
      throw rejected('epoch', `frame ${index} (offset ${header.baseOffset}) is of epoch ${header.leaderEpoch}, older than the log's ${newest}`, {
        index,
        offset: header.baseOffset,
        epoch: header.leaderEpoch,
        currentEpoch: newest,
      });
    }
    if (header.leaderEpoch > newest) {
      newest = header.leaderEpoch;
      epochs.push({ epoch: newest, startOffset: header.baseOffset });
    }
    checked.push({ frame, header, seed, producer: decodeProducer(frame, 0, header) });
    expectedOffset = header.baseOffset + header.recordCount;
  });
  return { frames: checked, target: landing, epochs };
}

function checkSegmentHeader(bytes: Buffer): SegmentTarget {
  if (bytes.length !== SEGMENT_HEADER_BYTES) throw rejected('header', `a segment header is ${SEGMENT_HEADER_BYTES} bytes, got ${bytes.length}`, { bytes: bytes.length });
  const decoded = decodeSegmentHeader(bytes);
  if (!decoded.ok) throw rejected('header', `the segment header does not check out (${decoded.reason})`, {});
  if (decoded.header.compactedNextOffset !== undefined) {
    throw rejected('compacted', `segment ${decoded.header.segmentId} at offset ${decoded.header.baseOffset} was rewritten by key compaction; install a snapshot instead`, {
      offset: decoded.header.baseOffset,
    });
  }
  return { bytes: Buffer.from(bytes), header: decoded.header };
}

function rejected(reason: FrameRejection, message: string, details: ErrorDetails): WalError {
  return new WalError('WAL_FRAME_REJECTED', `frames rejected: ${message}`, { reason, ...details });
}
