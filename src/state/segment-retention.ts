import type { SegmentInfo } from '../engine/types.js';

/** What retention lets a compaction delete: the options it decides by. */
export interface RetentionRules {
  /** Segments whose newest record is younger than this (ms) are kept; 0 keeps none for age. */
  readonly retentionMs: number;
  /** Above this many bytes of segment files, the oldest covered segments go whatever their age; 0: no cap. */
  readonly maxLogBytes: number;
}

/** The sealed segments to delete, oldest first: a prefix of the log. */
export interface SegmentDeletionPlan {
  /** `Wal.deleteSegmentsBefore(trimOffset)` deletes exactly these segments; the first offset afterwards. */
  readonly trimOffset: number;
  readonly segmentCount: number;
  /** Bytes of their segment files. */
  readonly bytes: number;
  /** Segments of the log left afterwards (the active one included). */
  readonly segmentsLeft: number;
}

/**
 * Which segments a compaction whose snapshot holds every record below `coverOffset` deletes at
 * `nowMs`: the longest prefix of sealed segments (never the active one) whose records all lie
 * below `coverOffset` and that retention does not keep. Retention keeps a segment whose newest
 * record is younger than `retentionMs`, and (timestamps never decrease along the log) every
 * segment after it, unless the segment files hold more than `maxLogBytes`: then the oldest go
 * until they do not, age notwithstanding, but still only below `coverOffset`. A segment holding
 * a record at or after `keepFromOffset` (the oldest record a follower's retention lease still
 * needs, retention-lease.ts) is kept like a young one: only the byte cap deletes it.
 */
export function planSegmentDeletion(
  segments: readonly SegmentInfo[],
  coverOffset: number,
  nowMs: number,
  rules: RetentionRules,
  keepFromOffset = Number.POSITIVE_INFINITY,
): SegmentDeletionPlan {
  let totalBytes = 0;
  for (const segment of segments) totalBytes += segment.sizeBytes;
  const first = segments[0];
  let trimOffset = first?.baseOffset ?? 0;
  let segmentCount = 0;
  let bytes = 0;
  for (const segment of segments) {
    if (segment.isActive || segment.nextOffset > coverOffset) break;
    const isAged = rules.retentionMs === 0 || segment.lastTimestamp < nowMs - rules.retentionMs;
    const isOverCap = rules.maxLogBytes > 0 && totalBytes - bytes > rules.maxLogBytes;
    const isLeased = segment.nextOffset > keepFromOffset;
    if ((!isAged || isLeased) && !isOverCap) break;
    trimOffset = segment.nextOffset;
    segmentCount++;
    bytes += segment.sizeBytes;
  }
  return { trimOffset, segmentCount, bytes, segmentsLeft: segments.length - segmentCount };
}

/**
 * The sealed segments whose records all lie below `offset` (what `Wal.deleteSegmentsBefore(offset)`
 * deletes), with no retention: the plan of an explicit DeleteSegmentsBefore.
 */
export function segmentsBelow(segments: readonly SegmentInfo[], offset: number): SegmentDeletionPlan {
  return planSegmentDeletion(segments, offset, 0, { retentionMs: 0, maxLogBytes: 0 });
}
