/** Sizes and flags of the frame format (diagram in `frame.ts`), shared by its encoder and readers. */

/** Bytes of a frame header. */
export const FRAME_HEADER_BYTES = 40;
/** Bytes of a record header inside a frame's payload. */
export const RECORD_HEADER_BYTES = 12;
/** Record flag bit 0: the record has a key. */
export const RECORD_FLAG_KEY = 1;
