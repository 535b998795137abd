/**
 * Encodes `wald.v1.ReadResponse` straight from log records into protobuf bytes, as
 * `tail-response-encoder.ts` does for TailWal: the generated encoder makes a `BigInt` per offset
 * and timestamp and builds a message object per record first, and a page of 1000 records is where
 * a Read spends its server time. The server sends these bytes through the Read serializer of
 * `src/server/wal-service-definition.ts`.
 *
 * The bytes are the generated encoder's (`ReadResponse.encode`) for the same response, byte for
 * byte, so clients of the generated stubs (grpcurl, Python, the CLI) see what they saw before: the
 * records by `record-encoder.ts`, then the response's fields in the generated encoder's order,
 * the proto's declaration order (`next_offset` 2, `high_watermark` 5, `first_offset` 4; see
 * `proto/wald/v1/read.proto`). A property test (test/unit/wire/read-response-encoder.test.ts)
 * checks it. `high_watermark` (proto3 `optional`) is written whenever there is one, 0 included.
 */
import type { WalRecord } from '../codec/record.js';
import { varintBytes, writeVarint } from './protobuf-wire.js';
import { recordsFieldBytes, writeRecordsField } from './record-encoder.js';

// Tags: (field number << 3) | wire type. The records (field 1) are record-encoder.ts's.
const TAG_RESPONSE_NEXT_OFFSET = (2 << 3) | 0;
const TAG_RESPONSE_FIRST_OFFSET = (4 << 3) | 0;
const TAG_RESPONSE_HIGH_WATERMARK = (5 << 3) | 0;

/** What a Read response carries besides its records. */
export interface ReadResponsePosition {
  /** Where the next read starts: one past the last record returned, or the request's offset. */
  readonly nextOffset: number;
  /** The high watermark, or -1 for none (the field is then left unset). */
  readonly highWatermark: number;
  /** The first offset still retained. */
  readonly firstOffset: number;
}

/** The encoded `ReadResponse` of `records` (no records at the end of the log). */
export function encodeReadResponse(records: readonly WalRecord[], position: ReadResponsePosition): Buffer {
  const { nextOffset, highWatermark, firstOffset } = position;
  let total = recordsFieldBytes(records);
  if (nextOffset !== 0) total += 1 + varintBytes(nextOffset);
  if (highWatermark >= 0) total += 1 + varintBytes(highWatermark);
  if (firstOffset !== 0) total += 1 + varintBytes(firstOffset);

  const buf = Buffer.allocUnsafe(total);
  let p = writeRecordsField(buf, 0, records);
  if (nextOffset !== 0) {
    buf[p++] = TAG_RESPONSE_NEXT_OFFSET;
    p = writeVarint(buf, p, nextOffset);
  }
  if (highWatermark >= 0) {
    buf[p++] = TAG_RESPONSE_HIGH_WATERMARK;
    p = writeVarint(buf, p, highWatermark);
  }
  if (firstOffset !== 0) {
    buf[p++] = TAG_RESPONSE_FIRST_OFFSET;
    p = writeVarint(buf, p, firstOffset);
  }
  return buf;
}
