import { randomUUID } from 'node:crypto';
import { Metadata, status as Status, type ServerErrorResponse } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isWalError, type ErrorCode } from '../errors.js';
import { Any } from '../gen/google/protobuf/any.js';
import { ErrorInfo } from '../gen/google/rpc/error_details.js';
import { Status as RpcStatus } from '../gen/google/rpc/status.js';
import { ERROR_INFO_TYPE_URL, STATUS_DETAILS_TRAILER } from '../wire/status-details.js';
import { STATUS_BY_CODE } from './status-map.js';
import { inWireTerms } from './wire-field-name.js';

/** The `ErrorInfo.domain` of every error wald sends. */
export const ERROR_DOMAIN = 'wald.dev';

/**
 * A failed call, ready to send: the gRPC status code, a message, and the `ErrorInfo` contents
 * (`reason` = the stable code, `metadata` = the error's details as strings).
 */
export interface RpcFailure {
  readonly code: Status;
  readonly message: string;
  readonly reason: ErrorCode;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Where a failure happened, for the log line of an unexpected error. */
export interface FailureContext {
  readonly rpc: string;
}

/** Codes about the caller's request or the server's lifecycle, not a fault: logged at debug level. */
const EXPECTED_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WAL_INVALID_ARGUMENT',
  'WAL_RECORD_TOO_LARGE',
  'WAL_BATCH_TOO_LARGE',
  'WAL_OFFSET_OUT_OF_RANGE',
  'WAL_OFFSET_COMPACTED',
  'WAL_OFFSET_MISMATCH',
  'WAL_SEQUENCE_STALE',
  'WAL_EPOCH_MISMATCH',
  'WAL_TOO_MANY_STREAMS',
  'WAL_SHUTTING_DOWN',
  // Logged at warn by the authenticator, with the peer, once.
  'WAL_UNAUTHENTICATED',
  'WAL_PERMISSION_DENIED',
]);

/**
 * Longest message, and longest ErrorInfo metadata value, a failure sends, in characters. An error
 * that echoes what the client sent (a key, a transaction id: up to a record's size) goes out in the
 * trailers three times (message, `google.rpc.Status.message`, metadata): uncut, a key of some 24 KB
 * passes the 64 KiB header list a grpc-js client accepts, and that client drops the connection
 * with every call on it. Longer texts are cut, saying by how much.
 */
export const MAX_FAILURE_TEXT_CHARS = 1024;

function capped(text: string): string {
  return text.length <= MAX_FAILURE_TEXT_CHARS ? text : `${text.slice(0, MAX_FAILURE_TEXT_CHARS)}... (${text.length - MAX_FAILURE_TEXT_CHARS} more characters)`;
}

function stringMetadata(details: Readonly<Record<string, unknown>>): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(details)) {
    if (value !== undefined) {
      metadata[key] = capped(String(value));
    }
  }
  return metadata;
}

/**
 * The gRPC status `thrown` is sent with: a `WalError`'s own (but `WAL_INTERNAL`), `INTERNAL` for
 * anything else. The same choice as {@link toRpcFailure}, without its log line or message.
 */
export function statusOf(thrown: unknown): Status {
  return isWalError(thrown) && thrown.code !== 'WAL_INTERNAL' ? STATUS_BY_CODE[thrown.code] : Status.INTERNAL;
}

/**
 * Turns anything a handler threw into the failure to send.
 *
 * A `WalError` keeps its code (mapped through {@link STATUS_BY_CODE}), message and details, with the
 * field it names (`details.field`) in proto terms (`producer_id`, not the engine's `producerId`).
 * Anything else, and `WAL_INTERNAL`, is unexpected: it is logged in full with an incident id and
 * the client gets a generic `INTERNAL` whose metadata holds only that id, so that nothing about
 * the server's internals leaks.
 */
export function toRpcFailure(thrown: unknown, logger: Logger, context: FailureContext): RpcFailure {
  if (isWalError(thrown) && thrown.code !== 'WAL_INTERNAL') {
    const error = inWireTerms(thrown);
    const code = STATUS_BY_CODE[error.code];
    if (EXPECTED_CODES.has(error.code)) {
      logger.debug({ rpc: context.rpc, reason: error.code, details: error.details }, error.message);
    } else {
      logger.warn({ rpc: context.rpc, reason: error.code, details: error.details, err: error }, error.message);
    }
    return { code, message: capped(error.message), reason: error.code, metadata: stringMetadata(error.details) };
  }
  const incidentId = randomUUID();
  logger.error({ rpc: context.rpc, incidentId, err: thrown }, 'unexpected error');
  return {
    code: Status.INTERNAL,
    message: `internal error (incident ${incidentId})`,
    reason: 'WAL_INTERNAL',
    metadata: { incidentId },
  };
}

/** The `google.rpc.Status` message of a failure, with its `ErrorInfo` as the only detail. */
export function toRpcStatus(failure: RpcFailure): RpcStatus {
  const info = ErrorInfo.encode({ reason: failure.reason, domain: ERROR_DOMAIN, metadata: { ...failure.metadata } }).finish();
  return {
    code: failure.code,
    message: failure.message,
    details: [Any.create({ typeUrl: ERROR_INFO_TYPE_URL, value: Buffer.from(info) })],
  };
}

/**
 * The error object grpc-js sends for a failure: status code, message, and the serialized
 * `google.rpc.Status` in the `grpc-status-details-bin` trailer. Pass it to a unary callback or
 * emit it as the `'error'` of a streaming call.
 */
export function toServiceError(failure: RpcFailure): ServerErrorResponse {
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_TRAILER, Buffer.from(RpcStatus.encode(toRpcStatus(failure)).finish()));
  return Object.assign(new Error(failure.message), { code: failure.code, details: failure.message, metadata });
}
