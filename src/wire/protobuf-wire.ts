/**
 * The few protobuf wire primitives wald's hand-written codecs need: varints (as JS numbers, exact
 * up to 2^53 - 1, which bounds every offset and timestamp wald sends), tags and lengths.
 */
import { isUtf8 } from 'node:buffer';

/** Wire types of protobuf. */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;

/**
 * The `string` field in `buf[start, end)`, refused (`RangeError`) unless it is valid UTF-8, as
 * proto3 requires: decoded leniently, two different invalid ids would both read as U+FFFD.
 */
export function utf8Field(buf: Buffer, start: number, end: number): string {
  const bytes = buf.subarray(start, end);
  if (!isUtf8(bytes)) throw new RangeError(`a string field at byte ${start} is not valid UTF-8`);
  return bytes.toString('utf8');
}

const TWO_28 = 2 ** 28;

/** Bytes a varint of `value` (a non-negative safe integer) takes. */
export function varintBytes(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < TWO_28) return 4;
  if (value < 2 ** 35) return 5;
  if (value < 2 ** 42) return 6;
  if (value < 2 ** 49) return 7;
  return 8;
}

/** Writes `value` (a non-negative safe integer) as a varint at `position`; returns the position after it. */
export function writeVarint(buf: Buffer, position: number, value: number): number {
  let p = position;
  if (value >= TWO_28) {
    // The low 28 bits as four full groups with 32-bit operations, then the rest.
    const low = value % TWO_28;
    buf[p++] = (low & 0x7f) | 0x80;
    buf[p++] = ((low >>> 7) & 0x7f) | 0x80;
    buf[p++] = ((low >>> 14) & 0x7f) | 0x80;
    buf[p++] = ((low >>> 21) & 0x7f) | 0x80;
    value = Math.floor(value / TWO_28);
  }
  while (value > 0x7f) {
    buf[p++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[p++] = value;
  return p;
}

/** Bytes of a length-delimited field: tag, length, body. */
export function delimitedBytes(bodyBytes: number): number {
  return 1 + varintBytes(bodyBytes) + bodyBytes;
}

/** A cursor over protobuf bytes. Throws `RangeError` on truncated or malformed input. */
export class WireReader {
  position: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    public end = buf.length,
  ) {
    this.position = start;
  }

  get done(): boolean {
    return this.position >= this.end;
  }

  /** Reads a varint as a number (exact below 2^53). */
  varint(): number {
    if (this.position < this.end) {
      const first = this.buf[this.position]!;
      if (first < 0x80) {
        this.position++;
        return first;
      }
    }
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.position >= this.end) throw new RangeError('truncated varint');
      const byte = this.buf[this.position++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new RangeError('varint longer than 10 bytes');
  }

  /**
   * Reads a length prefix and returns where the body ends; the reader is left at the body's start
   * (the caller moves `position` to the end once done with the body).
   */
  bodyEnd(): number {
    const end = this.varint() + this.position;
    if (end > this.end) throw new RangeError('length-delimited field past the end');
    return end;
  }

  /** Skips a field of wire type `wireType`. */
  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.position = this.bodyEnd();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        throw new RangeError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(bytes: number): void {
    if (this.position + bytes > this.end) throw new RangeError('truncated field');
    this.position += bytes;
  }
}
