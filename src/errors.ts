/**
 * Every stable error code wald can raise for an operating error.
 *
 * Codes are part of the API: clients branch on them (over gRPC they arrive as the `reason` of a
 * `google.rpc.ErrorInfo`). Messages may change; codes do not. Each code is described in
 * `docs/errors.md`, and a unit test keeps that page and this list equal.
 */
export const ERROR_CODES = [
  'WAL_LOCKED',
  'WAL_CORRUPTION',
  'WAL_CLOSED',
  'WAL_READ_ONLY',
  'WAL_NO_SPACE',
  'WAL_IO_ERROR',
  'WAL_OFFSET_OUT_OF_RANGE',
  'WAL_OFFSET_COMPACTED',
  'WAL_RECORD_TOO_LARGE',
  'WAL_BATCH_TOO_LARGE',
  'WAL_INVALID_ARGUMENT',
  'WAL_OFFSET_MISMATCH',
  'WAL_SEQUENCE_STALE',
  'WAL_TOO_MANY_STREAMS',
  'WAL_SHUTTING_DOWN',
  'WAL_KEY_NOT_FOUND',
  'WAL_STATE_FULL',
  'WAL_STATE_LOST',
  'WAL_FLUSH_ALL_DISABLED',
  'WAL_SNAPSHOT_NO_BASE',
  'WAL_SNAPSHOT_NOT_FOUND',
  'WAL_UNAUTHENTICATED',
  'WAL_PERMISSION_DENIED',
  'WAL_NOT_COVERED',
  'WAL_POINT_IN_TIME_UNAVAILABLE',
  'WAL_TOO_MANY_BUILDS',
  'WAL_NOT_LEADER',
  'WAL_EPOCH_MISMATCH',
  'WAL_FRAME_REJECTED',
  'WAL_TXN_STATE',
  'WAL_REPLICAS_TIMEOUT',
  'WAL_MESSAGE_TOO_LARGE',
  'WAL_INTERNAL',
] as const;

/** A stable error code; see {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Values that explain an error: every dynamic part of its message, by name. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>;

/**
 * An operating error of the log or the service: a stable `code`, a human message, and `details`
 * holding every dynamic value the message mentions (segment, position, offsets, limits...).
 *
 * Misuse by calling code that no data can cause (records that are not an array, an option of the
 * wrong kind when opening a log) throws `TypeError` or `RangeError` instead.
 */
export class WalError extends Error {
  override readonly name = 'WalError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/**
 * A `WAL_INVALID_ARGUMENT` error naming the field at fault in `details.field` and at the start of
 * the message. The engine names fields in its TypeScript terms (`records[3].headers`,
 * `producerId`); the server names them in proto terms (`producer_id`) and translates the engine's
 * (src/server/wire-field-name.ts).
 */
export function invalidArgument(field: string, message: string, details: ErrorDetails = {}): WalError {
  return new WalError('WAL_INVALID_ARGUMENT', `${field}: ${message}`, { field, ...details });
}

/** True when `error` is a {@link WalError}, optionally with the given code. */
export function isWalError(error: unknown, code?: ErrorCode): error is WalError {
  return error instanceof WalError && (code === undefined || error.code === code);
}
