/**
 * Decodes one `wald.v1.Record` (proto/wald/v1/record.proto) into a {@link WalRecord} with `number`
 * offsets and byte fields that are views into the message: shared by the hand-written decoders of
 * TailWal and Read responses. Unknown fields are skipped (so is the retired wrapper field 1).
 */
import { setHeader, type RecordType, type WalRecord } from '../codec/record.js';
import { WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireReader } from './protobuf-wire.js';
import { recordTypeFromWire } from './wire-record-type.js';

const NO_HEADERS: Readonly<Record<string, Buffer>> = Object.freeze({});
/** Shared by every absent value: a view per record would cost as much as the record itself. */
const EMPTY: Buffer = Buffer.alloc(0);

/**
 * Decodes the `wald.v1.Record` in `[start, end)` of `reader`'s buffer with `reader` (reused: it is
 * left where it was). Byte fields are views into the buffer. Throws `RangeError` on malformed bytes
 * or an unknown record type.
 */
export function decodeRecord(reader: WireReader, start: number, end: number): WalRecord {
  const buf = reader.buf;
  const outerPosition = reader.position;
  const outerEnd = reader.end;
  reader.position = start;
  reader.end = end;
  let key: Buffer | undefined;
  let value = EMPTY;
  let headers: Record<string, Buffer> | undefined;
  let type: RecordType = 'put';
  let offset = 0;
  let timestamp = 0;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === WIRE_LENGTH_DELIMITED && (field === 2 || field === 3 || field === 7)) {
      const e = reader.bodyEnd();
      const s = reader.position;
      reader.position = e;
      // key (7) is proto3 `optional`: present and empty is the empty key, not "no key".
      if (field === 7) key = buf.subarray(s, e);
      else if (field === 2) value = buf.subarray(s, e);
      else {
        headers ??= {};
        const [name, headerValue] = decodeHeaderEntry(buf, s, e);
        setHeader(headers, name, headerValue);
      }
    } else if (wireType === WIRE_VARINT && field === 4) {
      const code = reader.varint();
      const known = recordTypeFromWire(code);
      if (known === undefined) throw new RangeError(`unknown record type ${code}`);
      type = known;
    } else if (wireType === WIRE_VARINT && field === 5) {
      offset = reader.varint();
    } else if (wireType === WIRE_VARINT && field === 6) {
      timestamp = reader.varint();
    } else {
      reader.skip(wireType);
    }
  }
  reader.position = outerPosition;
  reader.end = outerEnd;
  return { offset, timestamp, type, key, value, headers: headers ?? NO_HEADERS };
}

function decodeHeaderEntry(buf: Buffer, start: number, end: number): [string, Buffer] {
  const reader = new WireReader(buf, start, end);
  let name = '';
  let value = EMPTY;
  while (!reader.done) {
    const tag = reader.varint();
    if (tag === ((1 << 3) | WIRE_LENGTH_DELIMITED)) {
      const e = reader.bodyEnd();
      name = buf.toString('utf8', reader.position, e);
      reader.position = e;
    } else if (tag === ((2 << 3) | WIRE_LENGTH_DELIMITED)) {
      const e = reader.bodyEnd();
      value = buf.subarray(reader.position, e);
      reader.position = e;
    } else {
      reader.skip(tag & 7);
    }
  }
  return [name, value];
}
