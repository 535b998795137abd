/**
 * Decodes `wald.v1.ReadResponse` bytes into plain records with `number` offsets and byte fields that
 * are views into the message (no copies), for Node clients reading at speed (`WalClient.read`,
 * `range`): the generated decoder makes a `BigInt` per offset and timestamp and copies every value.
 *
 * Field numbers follow `proto/wald/v1/read.proto` and `record.proto`. Unknown fields are skipped,
 * as protobuf requires (so is the retired field 3). Throws `RangeError` on malformed bytes.
 */
import type { WalRecord } from '../codec/record.js';
import { WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireReader } from './protobuf-wire.js';
import { decodeRecord } from './record-decoder.js';

/** One decoded Read response. */
export interface ReadPage {
  /** The records, in offset order; empty at the end of the log. */
  readonly records: WalRecord[];
  /** Where the next read continues: one past the last record returned (the request's offset when none). */
  readonly nextOffset: number;
  /** The first offset still retained in the log. */
  readonly firstOffset: number;
  /** The server's high watermark, or undefined (the field unset) when its log holds no durable record. */
  readonly highWatermark: number | undefined;
}

/** Decodes one Read response. */
export function decodeReadResponse(buf: Buffer): ReadPage {
  const reader = new WireReader(buf);
  const records: WalRecord[] = [];
  let nextOffset = 0;
  let firstOffset = 0;
  let highWatermark: number | undefined;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) {
      const end = reader.bodyEnd();
      records.push(decodeRecord(reader, reader.position, end));
      reader.position = end;
    } else if (field === 2 && wireType === WIRE_VARINT) {
      nextOffset = reader.varint();
    } else if (field === 4 && wireType === WIRE_VARINT) {
      firstOffset = reader.varint();
    } else if (field === 5 && wireType === WIRE_VARINT) {
      highWatermark = reader.varint();
    } else {
      reader.skip(wireType);
    }
  }
  return { records, nextOffset, firstOffset, highWatermark };
}
