import { decodeIndexFile } from '../codec/index-file.js';
import { SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import type { LogFault } from './log-fault.js';
import type { SegmentScan } from './segment-scan.js';

/** Where each whole frame of a segment starts, with its first offset and timestamp. */
export type FrameStarts = ReadonlyMap<number, { readonly baseOffset: number; readonly timestamp: number }>;

/**
 * Checks an index file (`bytes`, named `name`) against the scan of its segment: checksum and
 * layout, the segment id and base offset, and (when the segment scanned without faults) its end
 * and every entry: each must be the start of a frame with the entry's offset and timestamp. The
 * index of a sealed segment covers it to its end; that of the last segment (written by a clean
 * close) may cover a prefix of it, which recovery continues from. Returns the first fault, if any.
 */
export function checkIndex(bytes: Buffer, name: string, scan: SegmentScan, frames: FrameStarts, isLast: boolean): LogFault | undefined {
  const fault = (reason: string, position?: number): LogFault => ({ kind: 'index', file: name, position, reason });
  const decoded = decodeIndexFile(bytes);
  if (!decoded.ok) return fault(decoded.reason);
  const index = decoded.index;
  // A segment whose header does not check out is a fault of its own; nothing to compare with.
  if (scan.header === undefined) return undefined;
  if (index.segmentId !== scan.header.segmentId) return fault('index belongs to another segment file (segment id differs)', 16);
  if (index.baseOffset !== scan.header.baseOffset) return fault(`index base offset ${index.baseOffset} differs from the segment's`, 8);
  if (scan.faults.length > 0) return undefined;
  const end = index.dataEnd === scan.dataEnd ? { baseOffset: scan.nextOffset } : frames.get(index.dataEnd);
  if (end === undefined || (!isLast && index.dataEnd !== scan.dataEnd)) {
    return fault(`index says the frames end at byte ${index.dataEnd}, the segment's end at byte ${scan.dataEnd}`, 40);
  }
  if (index.nextOffset !== end.baseOffset) return fault(`index says next offset ${index.nextOffset} at byte ${index.dataEnd}, the segment ${end.baseOffset}`, 32);
  for (let i = 0; i < index.entryCount; i++) {
    const position = index.positions[i]!;
    const frame = frames.get(position);
    const entryAt = 72 + i * 16;
    if (frame === undefined || position >= index.dataEnd) return fault(`entry ${i} points at byte ${position} of the segment, where no frame starts`, entryAt);
    if (frame.baseOffset !== index.offsets[i]) return fault(`entry ${i} says offset ${index.offsets[i]} at byte ${position}, the frame there holds ${frame.baseOffset}`, entryAt);
    if (frame.timestamp !== index.timestamps[i]) return fault(`entry ${i} says timestamp ${index.timestamps[i]} at byte ${position}, the frame there has ${frame.timestamp}`, entryAt);
  }
  if (index.dataEnd > SEGMENT_HEADER_BYTES && (index.entryCount === 0 || index.positions[0] !== SEGMENT_HEADER_BYTES)) {
    return fault('the first entry is not the first frame', 72);
  }
  return undefined;
}
