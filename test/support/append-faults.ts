import type { AppendLimits, AppendOptions, AppendRecord } from '../../src/engine/types.js';
import type { ErrorCode } from '../../src/errors.js';

/** Small limits for the size cases of {@link APPEND_FAULTS}. */
export const FAULT_LIMITS: AppendLimits = { maxRecordBytes: 100, maxBatchBytes: 400, maxBatchRecords: 5 };

/** One append that breaks exactly one rule of the engine, and the error it must get. */
export interface AppendFault {
  readonly rule: string;
  readonly records: readonly AppendRecord[];
  readonly options?: AppendOptions;
  readonly code: ErrorCode;
  /** `details.field`, in the engine's terms. */
  readonly field: string;
  /** Further details the error must carry. */
  readonly details?: Readonly<Record<string, string | number>>;
}

const one: AppendRecord[] = [{ value: Buffer.from('v') }];
const bytes = (n: number): Buffer => Buffer.alloc(n);
/** A value of the wrong type, as a JavaScript caller (no type checker) could pass. */
const wrong = <T>(value: unknown): T => value as T;

/**
 * Every data rule of an append (src/engine/append-validation.ts), each broken once. Used by the
 * engine's tests (the error) and the server's (the field in proto terms is a field of the proto).
 */
export const APPEND_FAULTS: readonly AppendFault[] = [
  { rule: 'no records', records: [], code: 'WAL_INVALID_ARGUMENT', field: 'records' },
  {
    rule: 'more records than maxBatchRecords',
    records: Array.from({ length: 6 }, () => ({ value: bytes(1) })),
    code: 'WAL_BATCH_TOO_LARGE',
    field: 'records',
    details: { records: 6, limit: 5 },
  },
  {
    rule: 'a record above maxRecordBytes',
    records: [{ value: bytes(1) }, { value: bytes(89) }],
    code: 'WAL_RECORD_TOO_LARGE',
    field: 'records[1]',
    details: { bytes: 101, limit: 100 },
  },
  {
    rule: 'a batch above maxBatchBytes',
    records: Array.from({ length: 5 }, () => ({ value: bytes(80) })),
    code: 'WAL_BATCH_TOO_LARGE',
    field: 'records',
    details: { bytes: 40 + 5 * 92, limit: 400 },
  },
  { rule: 'a value that is not a Uint8Array', records: [{ value: wrong('text') }], code: 'WAL_INVALID_ARGUMENT', field: 'records[0].value' },
  { rule: 'a key that is not a Uint8Array', records: [...one, { key: wrong('k'), value: bytes(0) }], code: 'WAL_INVALID_ARGUMENT', field: 'records[1].key' },
  { rule: 'an unknown type', records: [{ value: bytes(0), type: wrong('upsert') }], code: 'WAL_INVALID_ARGUMENT', field: 'records[0].type', details: { value: 'upsert' } },
  { rule: 'an inherited name as the type', records: [{ value: bytes(0), type: wrong('toString') }], code: 'WAL_INVALID_ARGUMENT', field: 'records[0].type' },
  { rule: 'a delete without a key', records: [...one, { value: bytes(0), type: 'delete' }], code: 'WAL_INVALID_ARGUMENT', field: 'records[1].key' },
  { rule: 'an empty header name', records: [{ value: bytes(0), headers: { ok: bytes(1), '': bytes(1) } }], code: 'WAL_INVALID_ARGUMENT', field: 'records[0].headers' },
  {
    rule: 'a header name above 65535 bytes',
    records: [{ value: bytes(0), headers: { ['n'.repeat(0x10000)]: bytes(0) } }],
    code: 'WAL_INVALID_ARGUMENT',
    field: 'records[0].headers',
    details: { limit: 0xffff },
  },
  {
    rule: 'more than 65535 headers',
    records: [{ value: bytes(0), headers: Object.fromEntries(Array.from({ length: 0x10000 }, (_, i) => [`h${i}`, bytes(0)])) }],
    code: 'WAL_INVALID_ARGUMENT',
    field: 'records[0].headers',
    details: { value: 0x10000, limit: 0xffff },
  },
  { rule: 'a header value that is not a Uint8Array', records: [{ value: bytes(0), headers: { h: wrong('text') } }], code: 'WAL_INVALID_ARGUMENT', field: 'records[0].headers' },
  { rule: 'a negative expectedOffset', records: one, options: { expectedOffset: -1 }, code: 'WAL_INVALID_ARGUMENT', field: 'expectedOffset', details: { value: '-1' } },
  { rule: 'a fractional expectedOffset', records: one, options: { expectedOffset: 1.5 }, code: 'WAL_INVALID_ARGUMENT', field: 'expectedOffset' },
  { rule: 'an expectedOffset above 2^53 - 1', records: one, options: { expectedOffset: 2 ** 53 }, code: 'WAL_INVALID_ARGUMENT', field: 'expectedOffset' },
  { rule: 'a sequence without a producerId', records: one, options: { sequence: 1 }, code: 'WAL_INVALID_ARGUMENT', field: 'sequence' },
  { rule: 'a producerId without a sequence', records: one, options: { producerId: 'p' }, code: 'WAL_INVALID_ARGUMENT', field: 'sequence' },
  { rule: 'an empty producerId', records: one, options: { producerId: '', sequence: 1 }, code: 'WAL_INVALID_ARGUMENT', field: 'producerId' },
  { rule: 'a producerId that is not a string', records: one, options: { producerId: wrong(7), sequence: 1 }, code: 'WAL_INVALID_ARGUMENT', field: 'producerId' },
  {
    rule: 'a producerId above 256 bytes',
    records: one,
    options: { producerId: 'é'.repeat(129), sequence: 1 },
    code: 'WAL_INVALID_ARGUMENT',
    field: 'producerId',
    details: { bytes: 258, limit: 256 },
  },
  { rule: 'a negative sequence', records: one, options: { producerId: 'p', sequence: -1 }, code: 'WAL_INVALID_ARGUMENT', field: 'sequence', details: { value: '-1' } },
  { rule: 'a sequence above 2^53 - 1', records: one, options: { producerId: 'p', sequence: 2 ** 53 }, code: 'WAL_INVALID_ARGUMENT', field: 'sequence' },
];
