/**
 * Walks the records of a checked frame (layout in `frame.ts`) without allocating per record: each
 * `next()` exposes the current record's offset, type and the byte ranges of its key, value and
 * headers inside the frame's buffer. `decodeRecords` builds record objects from it; the TailWal
 * encoder copies the ranges straight into protobuf.
 */
import type { FrameHeader } from './frame.js';
import { FRAME_HEADER_BYTES, RECORD_FLAG_KEY, RECORD_HEADER_BYTES } from './frame-layout.js';

/** A cursor over one frame's records. */
export class RecordCursor {
  /** Offset of the current record. */
  offset = 0;
  /** Record type code as stored (1 put, 2 delete, 3 checkpoint). */
  typeCode = 0;
  hasKey = false;
  keyStart = 0;
  valueStart = 0;
  valueEnd = 0;
  /** Where the current record ends (after its headers). */
  recordEnd = 0;
  /** Where the current record's headers start, and how many there are (see `nextHeader`). */
  headersStart = 0;
  headerCount = 0;
  /** Why the frame does not parse, once `next()` returned false early. */
  error: string | undefined;
  /** The current header, after `nextHeader()`. */
  nameStart = 0;
  nameEnd = 0;
  headerValueEnd = 0;

  private buf: Buffer = Buffer.alloc(0);
  private p = 0;
  private end = 0;
  private index = 0;
  private count = 0;
  private baseOffset = 0;
  private headerP = 0;
  private headersLeft = 0;

  /** Points the cursor before the first record of the frame at `position`. */
  reset(buf: Buffer, position: number, header: FrameHeader): this {
    this.buf = buf;
    this.end = position + header.length;
    this.p = position + FRAME_HEADER_BYTES;
    if (header.hasProducer) this.p += 10 + buf.readUInt16LE(this.p + 8);
    this.index = 0;
    this.count = header.recordCount;
    this.baseOffset = header.baseOffset;
    this.error = undefined;
    return this;
  }

  /** Moves to the next record; false at the end of the frame or when it does not parse (`error`). */
  next(): boolean {
    if (this.index >= this.count) return false;
    const buf = this.buf;
    const p = this.p;
    const end = this.end;
    if (p + RECORD_HEADER_BYTES > end) return this.fail('record header past the frame end');
    this.typeCode = buf[p]!;
    if (this.typeCode < 1 || this.typeCode > 3) return this.fail(`unknown record type ${this.typeCode}`);
    this.hasKey = (buf[p + 1]! & RECORD_FLAG_KEY) !== 0;
    this.headerCount = buf.readUInt16LE(p + 2);
    this.keyStart = p + RECORD_HEADER_BYTES;
    this.valueStart = this.keyStart + buf.readUInt32LE(p + 4);
    this.valueEnd = this.valueStart + buf.readUInt32LE(p + 8);
    if (this.valueEnd > end) return this.fail('record body past the frame end');
    this.headersStart = this.valueEnd;
    let q = this.valueEnd;
    for (let h = 0; h < this.headerCount; h++) {
      if (q + 6 > end) return this.fail('record header entry past the frame end');
      q += 6 + buf.readUInt16LE(q) + buf.readUInt32LE(q + 2);
      if (q > end) return this.fail('record header entry past the frame end');
    }
    this.p = q;
    this.recordEnd = q;
    this.offset = this.baseOffset + this.index;
    this.index++;
    this.headerP = this.headersStart;
    this.headersLeft = this.headerCount;
    return true;
  }

  /** Moves to the current record's next header (name `[nameStart, nameEnd)`, value up to `headerValueEnd`). */
  nextHeader(): boolean {
    if (this.headersLeft === 0) return false;
    const buf = this.buf;
    const q = this.headerP;
    this.nameStart = q + 6;
    this.nameEnd = this.nameStart + buf.readUInt16LE(q);
    this.headerValueEnd = this.nameEnd + buf.readUInt32LE(q + 2);
    this.headerP = this.headerValueEnd;
    this.headersLeft--;
    return true;
  }

  /** Rewinds the current record's headers, to walk them again. */
  rewindHeaders(): void {
    this.headerP = this.headersStart;
    this.headersLeft = this.headerCount;
  }

  private fail(reason: string): false {
    this.error = reason;
    this.index = this.count;
    return false;
  }
}
