/** Where one frame lies in a segment file, read from the raw bytes. */
export interface FrameExtent {
  /** Byte position of the frame's first byte. */
  readonly position: number;
  /** Header + payload bytes, as the frame's length field says. */
  readonly length: number;
  /** `length` rounded up to 8: where the next frame starts. */
  readonly alignedLength: number;
  readonly baseOffset: number;
  readonly recordCount: number;
}

const SEGMENT_HEADER_BYTES = 64;

/**
 * The frames of a well-formed segment file, walked by their length fields from the end of the
 * 64-byte header up to the first zero length or the end of the file. Decoded by hand, not with the
 * codec under test, so that tests locate bytes independently of the code they check.
 */
export function segmentFrames(segment: Buffer): FrameExtent[] {
  const frames: FrameExtent[] = [];
  let position = SEGMENT_HEADER_BYTES;
  while (position + 8 <= segment.length) {
    const length = segment.readUInt32LE(position);
    if (length === 0) break;
    frames.push({
      position,
      length,
      alignedLength: Math.ceil(length / 8) * 8,
      baseOffset: Number(segment.readBigUInt64LE(position + 16)),
      recordCount: segment.readUInt32LE(position + 12),
    });
    position += Math.ceil(length / 8) * 8;
  }
  return frames;
}
