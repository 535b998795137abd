/**
 * Encodes `wald.v1.AppendStreamResponse` messages for the server straight from the engine's
 * append results: no `BigInt` per offset, no generated message object per result, one buffer per
 * message. A failure's `google.rpc.Status` comes already encoded (failures are rare and built by
 * `rpc-failure.ts`). A unit test checks that the generated decoder reads the bytes as the message
 * meant.
 *
 * Field numbers follow `proto/wald/v1/append.proto`, written in field-number order; proto3
 * defaults are left out, as the generated encoder does.
 */
import { delimitedBytes, varintBytes, writeVarint } from './protobuf-wire.js';

/** Where an acknowledged append landed (the engine's `AppendResult`). */
export interface AppendedAt {
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly timestamp: number;
  readonly duplicate: boolean;
}

/** The outcome of one append, as the server sends it. */
export type AppendStreamOutcome =
  | { readonly kind: 'appended'; readonly result: AppendedAt }
  /** `status`: an encoded `google.rpc.Status`. */
  | { readonly kind: 'error'; readonly status: Uint8Array };

// Tags: (field number << 3) | wire type.
const TAG_REQUEST_ID = (1 << 3) | 0;
const TAG_APPENDED = (2 << 3) | 2;
const TAG_ERROR = (3 << 3) | 2;
const TAG_RESULTS = (4 << 3) | 2;
const TAG_RESULT_APPENDED = (1 << 3) | 2;
const TAG_RESULT_ERROR = (2 << 3) | 2;
const TAG_FIRST_OFFSET = (1 << 3) | 0;
const TAG_LAST_OFFSET = (2 << 3) | 0;
const TAG_TIMESTAMP = (3 << 3) | 0;
const TAG_DUPLICATE = (4 << 3) | 0;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function ackBodyBytes(result: AppendedAt): number {
  let size = 0;
  if (result.firstOffset !== 0) size += 1 + varintBytes(result.firstOffset);
  if (result.lastOffset !== 0) size += 1 + varintBytes(result.lastOffset);
  if (result.timestamp !== 0) size += 1 + varintBytes(result.timestamp);
  if (result.duplicate) size += 2;
  return size;
}

/** Bytes of an outcome's body: the `AppendResponse` or the `Status`. */
function outcomeBodyBytes(outcome: AppendStreamOutcome): number {
  return outcome.kind === 'appended' ? ackBodyBytes(outcome.result) : outcome.status.length;
}

function writeAck(buf: Buffer, position: number, result: AppendedAt): number {
  let p = position;
  if (result.firstOffset !== 0) {
    buf[p++] = TAG_FIRST_OFFSET;
    p = writeVarint(buf, p, result.firstOffset);
  }
  if (result.lastOffset !== 0) {
    buf[p++] = TAG_LAST_OFFSET;
    p = writeVarint(buf, p, result.lastOffset);
  }
  if (result.timestamp !== 0) {
    buf[p++] = TAG_TIMESTAMP;
    p = writeVarint(buf, p, result.timestamp);
  }
  if (result.duplicate) {
    buf[p++] = TAG_DUPLICATE;
    buf[p++] = 1;
  }
  return p;
}

/** Writes `outcome` as a length-delimited field: `appendedTag` or `errorTag`, then its body. */
function writeOutcome(buf: Buffer, position: number, outcome: AppendStreamOutcome, bodyBytes: number, appendedTag: number, errorTag: number): number {
  let p = position;
  buf[p++] = outcome.kind === 'appended' ? appendedTag : errorTag;
  p = writeVarint(buf, p, bodyBytes);
  if (outcome.kind === 'appended') return writeAck(buf, p, outcome.result);
  buf.set(outcome.status, p);
  return p + outcome.status.length;
}

/** The varint bytes of a request id too large for a number (a client's choice; echoed exactly). */
function bigVarint(value: bigint): Buffer {
  const bytes: number[] = [];
  let rest = BigInt.asUintN(64, value);
  // Bounded: a uint64 has at most 10 groups of 7 bits.
  for (let i = 0; i < 10 && rest > 0x7fn; i++) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return Buffer.from(bytes);
}

/**
 * The encoded `AppendStreamResponse` answering request `requestId`: `single`, the answer of a
 * one-`append` request or the refusal of a whole message (fields `appended` / `error`), or
 * `results`, one per element of the request's `appends`. Offsets and timestamps are non-negative
 * safe integers (the engine's).
 */
export function encodeAppendStreamResponse(requestId: bigint, single: AppendStreamOutcome | undefined, results: readonly AppendStreamOutcome[]): Buffer {
  const bigId = requestId > MAX_SAFE ? bigVarint(requestId) : undefined;
  const id = bigId === undefined ? Number(requestId) : 0;
  let total = bigId !== undefined ? 1 + bigId.length : id === 0 ? 0 : 1 + varintBytes(id);
  const singleBytes = single === undefined ? 0 : outcomeBodyBytes(single);
  if (single !== undefined) total += delimitedBytes(singleBytes);
  for (const outcome of results) total += delimitedBytes(delimitedBytes(outcomeBodyBytes(outcome)));
  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  if (bigId !== undefined) {
    buf[p++] = TAG_REQUEST_ID;
    buf.set(bigId, p);
    p += bigId.length;
  } else if (id !== 0) {
    buf[p++] = TAG_REQUEST_ID;
    p = writeVarint(buf, p, id);
  }
  if (single !== undefined) p = writeOutcome(buf, p, single, singleBytes, TAG_APPENDED, TAG_ERROR);
  for (const outcome of results) {
    const body = outcomeBodyBytes(outcome);
    buf[p++] = TAG_RESULTS;
    p = writeVarint(buf, p, delimitedBytes(body));
    p = writeOutcome(buf, p, outcome, body, TAG_RESULT_APPENDED, TAG_RESULT_ERROR);
  }
  return buf;
}
