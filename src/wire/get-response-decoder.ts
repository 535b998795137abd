/**
 * Decodes `wald.v1.GetResponse` bytes with a `number` offset and timestamp and the value as a view
 * into the message (no copy), for `WalClient.get`: the generated decoder makes a `BigInt` of each
 * and copies the value.
 *
 * Field numbers follow `proto/wald/v1/state.proto`. Unknown fields are skipped, as protobuf
 * requires. Throws `RangeError` on malformed bytes.
 */
import { WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireReader } from './protobuf-wire.js';

/** One decoded Get response: the key's latest PUT. */
export interface GetAnswer {
  readonly value: Buffer;
  readonly offset: number;
  readonly timestamp: number;
}

const EMPTY = Buffer.alloc(0);

/** Decodes one Get response. */
export function decodeGetResponse(buf: Buffer): GetAnswer {
  const reader = new WireReader(buf);
  let value: Buffer = EMPTY;
  let offset = 0;
  let timestamp = 0;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) {
      const end = reader.bodyEnd();
      value = buf.subarray(reader.position, end);
      reader.position = end;
    } else if (field === 2 && wireType === WIRE_VARINT) {
      offset = reader.varint();
    } else if (field === 3 && wireType === WIRE_VARINT) {
      timestamp = reader.varint();
    } else {
      reader.skip(wireType);
    }
  }
  return { value, offset, timestamp };
}
