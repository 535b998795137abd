import { SEGMENT_HEADER_BYTES } from '../../codec/segment-header.js';
import type { SegmentInfo } from '../../engine/types.js';

/**
 * Bytes of frames at or after `fromOffset`: an estimate from the segments' extents (no read).
 * Segments wholly after it count whole (their frames: data less the header); the one holding it
 * counts in proportion to the offsets it holds from there (frames of one log are of similar size).
 */
export function followerLagBytes(segments: readonly SegmentInfo[], fromOffset: number): number {
  let bytes = 0;
  for (const segment of segments) {
    if (segment.nextOffset <= fromOffset) continue;
    const frameBytes = Math.max(0, segment.dataBytes - SEGMENT_HEADER_BYTES);
    const span = segment.nextOffset - segment.baseOffset;
    if (segment.baseOffset >= fromOffset || span === 0) bytes += frameBytes;
    else bytes += Math.round((frameBytes * (segment.nextOffset - fromOffset)) / span);
  }
  return bytes;
}
