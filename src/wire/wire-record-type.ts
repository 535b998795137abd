/**
 * The one mapping between the log's record types (`RECORD_TYPES`, src/codec/record.ts) and the
 * `wald.v1.RecordType` enum of the wire. The server's messages (record-message.ts,
 * append-request.ts), the hand-written TailWal codecs and the CLI all translate through it.
 */
import { RECORD_TYPE_NAMES, type RecordType } from '../codec/record.js';
import { RecordType as WireRecordType } from '../gen/wald/v1/record.js';

/**
 * The wire value of each record type. A total map: a record type added to `RECORD_TYPES` without
 * a wire value here does not compile (and a unit test checks it against the proto enum).
 */
export const WIRE_RECORD_TYPES = {
  put: WireRecordType.RECORD_TYPE_PUT,
  delete: WireRecordType.RECORD_TYPE_DELETE,
  checkpoint: WireRecordType.RECORD_TYPE_CHECKPOINT,
  flush_all: WireRecordType.RECORD_TYPE_FLUSH_ALL,
  prepare: WireRecordType.RECORD_TYPE_PREPARE,
  commit: WireRecordType.RECORD_TYPE_COMMIT,
  abort: WireRecordType.RECORD_TYPE_ABORT,
} as const satisfies Readonly<Record<RecordType, WireRecordType>>;

/** The record type of each wire value, by index (an array: the TailWal decoder looks one up per record). */
const BY_WIRE_VALUE: readonly (RecordType | undefined)[] = Array.from(
  { length: Math.max(...RECORD_TYPE_NAMES.map((name) => WIRE_RECORD_TYPES[name])) + 1 },
  (_, value) => RECORD_TYPE_NAMES.find((name) => WIRE_RECORD_TYPES[name] === value),
);

/**
 * The record type of a wire value; undefined for `RECORD_TYPE_UNSPECIFIED` (what it means is up to
 * the message: PUT in an append) and for values this build does not know.
 */
export function recordTypeFromWire(value: number): RecordType | undefined {
  return value >= 0 && value < BY_WIRE_VALUE.length ? BY_WIRE_VALUE[value] : undefined;
}
