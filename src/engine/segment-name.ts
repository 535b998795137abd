/** File names in a data directory. Segment names sort in offset order. */

const DIGITS = 20;
const SEGMENT_SUFFIX = '.seg';
const INDEX_SUFFIX = '.idx';

/** Name of the segment whose first offset is `baseOffset`: `00000000000000000042.seg`. */
export function segmentFileName(baseOffset: number): string {
  return String(baseOffset).padStart(DIGITS, '0') + SEGMENT_SUFFIX;
}

/** Name of a segment's index file: `00000000000000000042.idx`. */
export function indexFileName(baseOffset: number): string {
  return String(baseOffset).padStart(DIGITS, '0') + INDEX_SUFFIX;
}

/** The base offset a segment file name stands for, or undefined if it is not a segment name. */
export function parseSegmentFileName(name: string): number | undefined {
  if (name.length !== DIGITS + SEGMENT_SUFFIX.length || !name.endsWith(SEGMENT_SUFFIX)) return undefined;
  const digits = name.slice(0, DIGITS);
  return /^\d+$/.test(digits) ? Number(digits) : undefined;
}

/**
 * Name of the side file that keeps the bytes cut from a torn tail at byte `position`:
 * `<segment>.<position>.torn`, or `<segment>.<position>.<n>.torn` for the n-th other cut there.
 */
export function tornFileName(segmentName: string, position: number, n = 0): string {
  return n === 0 ? `${segmentName}.${position}.torn` : `${segmentName}.${position}.${n}.torn`;
}

/** The next segment, zero-filled in the background before it is needed. */
export const PREALLOCATED_FILE = 'next-segment.tmp';

/** Written by a clean `close()`: the active segment's index can be trusted to its end. */
export const CLEAN_MARKER_FILE = 'CLEAN';

/**
 * The idempotent-producer table saved on its own (index-file format, no entries) when compaction
 * deletes the last sealed segment, whose index held it.
 */
export const PRODUCERS_FILE = 'PRODUCERS';

/** How far the log was known durable (`src/codec/recovery-point-file.ts`). */
export const RECOVERY_POINT_FILE = 'RECOVERY';

/** Temporary files end with this; any left at open are debris of a crash and are removed. */
export const TEMP_SUFFIX = '.tmp';

/** The epoch history (`src/codec/epoch-history-file.ts`): which leader epoch wrote which offsets. */
export const EPOCHS_FILE = 'EPOCHS';
