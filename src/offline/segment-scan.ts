import { align8 } from '../codec/align.js';
import { checkFrame, type FrameHeader } from '../codec/frame.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES, type SegmentHeader } from '../codec/segment-header.js';
import { isZero, lastNonZero, scanAhead } from '../engine/recovery.js';
import type { LogFault } from './log-fault.js';

/** What recovery would know when it met damage in a segment: the inputs of torn tail or corruption. */
export interface ScanContext {
  /** The segment is the last of the log (the active one): damage there may be a torn tail. */
  readonly isLast: boolean;
  /** Every offset below this was durable (from `RECOVERY`; 0: nothing known). */
  readonly durableBefore: number;
  /** A recovery-point file exists (before one does, version-1 segments keep the version-1 rule). */
  readonly hasRecoveryPoint: boolean;
  /**
   * False for a log that holds frames another log stamped (epoch history flag `replicated`): their
   * sync lags are not believed, as recovery does not believe them. Default true.
   */
  readonly trustsFrameClaims?: boolean | undefined;
  /** Stop at the first damage instead of going on at the next valid frame after it. */
  readonly stopAtDamage?: boolean | undefined;
}

/** One whole valid frame met by a scan; `buf` is the segment file's bytes. */
export interface ScannedFrame {
  readonly position: number;
  readonly header: FrameHeader;
  /** The frame's checksum field (bytes 4..8). */
  readonly crc: number;
  /** The frame's flags byte (bit 0: producer section). */
  readonly flags: number;
  readonly buf: Buffer;
}

/** What a scan found in one segment file. */
export interface SegmentScan {
  readonly name: string;
  /** The segment header, when it checks out. */
  readonly header: SegmentHeader | undefined;
  readonly fileSize: number;
  /** Byte position just past the last whole frame of the unbroken run from byte 64 (64 when none). */
  readonly dataEnd: number;
  /** The offset after the last record of that run. */
  readonly nextOffset: number;
  /** The offset after the last record of the last valid frame, past damage too (the scan went on). */
  readonly endOffset: number;
  /** Valid frames and records, those after damage included (when the scan went on past it). */
  readonly frameCount: number;
  readonly recordCount: number;
  readonly faults: LogFault[];
}

/**
 * Walks the frames of one segment file (`buf`, read whole) from byte 64, frame by frame, with the
 * codec's checks, and reports rather than repairs: every whole valid frame goes to `onFrame` (which
 * returns false to stop the scan), and damage becomes a fault classified by the rules recovery
 * applies at open (docs/engine.md, "Torn tail or corruption"): damage in a sealed segment, or
 * damage that the recovery point or the sync lag of a later valid frame vouches for, is
 * `corruption`; other damage of the last segment is a `torn-tail`, which ends the scan. After
 * corruption the scan goes on at the next valid frame (unless `stopAtDamage`), so that one report
 * shows all of it.
 */
export function scanSegment(
  buf: Buffer,
  name: string,
  baseOffset: number,
  context: ScanContext,
  onFrame: (frame: ScannedFrame) => boolean = () => true,
): SegmentScan {
  const end = buf.length;
  const faults: LogFault[] = [];
  const decoded = decodeSegmentHeader(buf.subarray(0, Math.min(end, SEGMENT_HEADER_BYTES)));
  if (!decoded.ok || decoded.header.baseOffset !== baseOffset) {
    const reason = decoded.ok ? `header says base offset ${decoded.header.baseOffset}` : `segment header: ${decoded.reason}`;
    faults.push({ kind: 'corruption', file: name, position: 0, reason, lastGoodOffset: baseOffset - 1 });
    return { name, header: undefined, fileSize: end, dataEnd: SEGMENT_HEADER_BYTES, nextOffset: baseOffset, endOffset: baseOffset, frameCount: 0, recordCount: 0, faults };
  }
  const header = decoded.header;
  const seed = header.frameSeed;
  // A segment rewritten by key compaction has gaps between its frames (offsets only move forward)
  // and says in its header where it ends (docs/format.md, "Segment header").
  const compactedEnd = header.compactedNextOffset;
  let rel = SEGMENT_HEADER_BYTES;
  let expected = baseOffset;
  let endOffset = baseOffset;
  let dataEnd = SEGMENT_HEADER_BYTES;
  let nextOffset = baseOffset;
  let isUnbroken = true;
  let frameCount = 0;
  let recordCount = 0;
  for (;;) {
    const check = checkFrame(buf, rel, end, seed);
    if (check.kind === 'ok' && (check.header.baseOffset === expected || (compactedEnd !== undefined && check.header.baseOffset > expected))) {
      const frame = check.header;
      frameCount++;
      recordCount += frame.recordCount;
      expected = frame.baseOffset + frame.recordCount;
      endOffset = expected;
      const position = rel;
      rel += align8(frame.length);
      if (isUnbroken) {
        dataEnd = rel;
        nextOffset = expected;
      }
      if (!onFrame({ position, header: frame, crc: buf.readUInt32LE(position + 4), flags: buf[position + 9]!, buf })) break;
      continue;
    }
    if (check.kind === 'zero' && isZero(buf, rel, end)) break;
    const reason =
      check.kind === 'ok'
        ? `frame holds offset ${check.header.baseOffset}, expected ${expected}`
        : check.kind === 'invalid'
          ? check.reason
          : check.kind === 'incomplete'
            ? 'frame runs past the end of the file'
            : 'bytes after the end of the log';
    const ahead = scanAhead(buf, check.kind === 'ok' ? rel : rel + 8, end, 0, seed);
    const legacy = header.formatVersion === 1 && !context.hasRecoveryPoint;
    const claimed = Math.max(context.durableBefore, seed === 0 || context.trustsFrameClaims === false ? -1 : ahead.durableBefore);
    const wasDurable = claimed > expected || (legacy && ahead.first !== undefined);
    const around = { lastGoodOffset: expected - 1, nextGoodOffset: ahead.first?.baseOffset, nextGoodPosition: ahead.first?.position };
    if (context.isLast && !wasDurable) {
      faults.push({ kind: 'torn-tail', file: name, position: rel, reason, ...around, bytes: lastNonZero(buf, rel, end) - rel });
      break;
    }
    faults.push({ kind: 'corruption', file: name, position: rel, reason, ...around });
    isUnbroken = false;
    if (context.stopAtDamage === true || ahead.first === undefined) break;
    rel = ahead.first.position;
    expected = ahead.first.baseOffset;
  }
  // Frames past a compacted segment's end are appends made after a cut back to that end (the
  // engine's recovery reads them so too): the segment ends where its frames or its header say,
  // whichever is later.
  if (compactedEnd !== undefined && endOffset <= compactedEnd) {
    endOffset = compactedEnd;
    if (isUnbroken) nextOffset = compactedEnd;
  }
  return { name, header, fileSize: end, dataEnd, nextOffset, endOffset, frameCount, recordCount, faults };
}
