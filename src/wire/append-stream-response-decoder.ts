/**
 * Decodes `wald.v1.AppendStreamResponse` bytes for `WalClient`: offsets and timestamps as `number`s
 * (no `BigInt`), and a failure's `google.rpc.Status` left as its bytes, decoded only when a caller
 * gets the error (failures are rare; acknowledgements are the hot path).
 *
 * Field numbers follow `proto/wald/v1/append.proto`. Unknown fields are skipped. Throws
 * `RangeError` on malformed bytes.
 */
import { WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireReader } from './protobuf-wire.js';

/** Where an acknowledged append landed (`wald.v1.AppendResponse`). */
export interface AppendAck {
  readonly kind: 'appended';
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** Milliseconds since the Unix epoch, shared by every record of the append. */
  readonly timestamp: number;
  /** True when this acknowledges a retry of an already written (producer, sequence). */
  readonly duplicate: boolean;
}

/** A failed append: the encoded `google.rpc.Status` (a view into the message). */
export interface AppendRefusal {
  readonly kind: 'error';
  readonly status: Buffer;
}

/** The outcome of one append. */
export type AppendOutcome = AppendAck | AppendRefusal;

/** One decoded AppendStream response. */
export interface AppendStreamAnswer {
  readonly requestId: number;
  /** The answer of a one-`append` request, or the refusal of a whole request; undefined when `results` answers. */
  readonly result: AppendOutcome | undefined;
  /** One outcome per element of the request's `appends`, in order. */
  readonly results: AppendOutcome[];
}

function decodeAck(reader: WireReader, end: number): AppendAck {
  let firstOffset = 0;
  let lastOffset = 0;
  let timestamp = 0;
  let duplicate = false;
  const outerEnd = reader.end;
  reader.end = end;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType !== WIRE_VARINT) reader.skip(wireType);
    else if (field === 1) firstOffset = reader.varint();
    else if (field === 2) lastOffset = reader.varint();
    else if (field === 3) timestamp = reader.varint();
    else if (field === 4) duplicate = reader.varint() !== 0;
    else reader.skip(wireType);
  }
  reader.end = outerEnd;
  return { kind: 'appended', firstOffset, lastOffset, timestamp, duplicate };
}

/** An `AppendStreamResult`: `appended` is field 1, `error` field 2. */
function decodeResult(reader: WireReader, end: number): AppendOutcome | undefined {
  let outcome: AppendOutcome | undefined;
  const outerEnd = reader.end;
  reader.end = end;
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === WIRE_LENGTH_DELIMITED && (field === 1 || field === 2)) {
      const bodyEnd = reader.bodyEnd();
      outcome = field === 1 ? decodeAck(reader, bodyEnd) : { kind: 'error', status: reader.buf.subarray(reader.position, bodyEnd) };
      reader.position = bodyEnd;
    } else {
      reader.skip(wireType);
    }
  }
  reader.end = outerEnd;
  return outcome;
}

/** Decodes one AppendStream response. An element of `results` with neither outcome set throws `RangeError`. */
export function decodeAppendStreamResponse(buf: Buffer): AppendStreamAnswer {
  const reader = new WireReader(buf);
  let requestId = 0;
  let result: AppendOutcome | undefined;
  const results: AppendOutcome[] = [];
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === WIRE_VARINT) {
      requestId = reader.varint();
    } else if (wireType === WIRE_LENGTH_DELIMITED && (field === 2 || field === 3 || field === 4)) {
      const end = reader.bodyEnd();
      if (field === 2) result = decodeAck(reader, end);
      else if (field === 3) result = { kind: 'error', status: buf.subarray(reader.position, end) };
      else {
        const outcome = decodeResult(reader, end);
        if (outcome === undefined) throw new RangeError('an AppendStreamResult with no outcome');
        results.push(outcome);
      }
      reader.position = end;
    } else {
      reader.skip(wireType);
    }
  }
  return { requestId, result, results };
}
