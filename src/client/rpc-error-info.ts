import type { Metadata, ServiceError } from '@grpc/grpc-js';
import { ErrorInfo } from '../gen/google/rpc/error_details.js';
import { Status as RpcStatus } from '../gen/google/rpc/status.js';
import { ERROR_INFO_TYPE_URL, STATUS_DETAILS_TRAILER } from '../wire/status-details.js';

/**
 * A failed call as a client sees it: the gRPC status, the message, and the `google.rpc.ErrorInfo`
 * that wald puts in the `grpc-status-details-bin` trailer. Branch on `reason` (the stable `WAL_*`
 * code), never on `message`.
 */
export interface RpcErrorInfo {
  /** The numeric gRPC status code. */
  readonly code: number;
  /** The status message sent by the server. */
  readonly message: string;
  /** `ErrorInfo.reason`; undefined when the call carried no (decodable) ErrorInfo. */
  readonly reason: string | undefined;
  /** `ErrorInfo.domain` (`wald.dev` from a wald server); undefined without an ErrorInfo. */
  readonly domain: string | undefined;
  /** `ErrorInfo.metadata`: the error's values as strings; empty without an ErrorInfo. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The code inside the trailer's `google.rpc.Status` (equal to `code`); undefined without one. */
  readonly statusCode: number | undefined;
}

/** True when `value` looks like a grpc-js `ServiceError`: an Error with a numeric `code`, `details` and `metadata`. */
export function isServiceError(value: unknown): value is ServiceError {
  return value instanceof Error && typeof (value as Partial<ServiceError>).code === 'number' && 'details' in value && 'metadata' in value;
}

/** The `ErrorInfo` among the details of a `google.rpc.Status` (an AppendStream result, a trailer), if any. */
export function errorInfoOfStatus(status: RpcStatus): ErrorInfo | undefined {
  const detail = status.details.find((any) => any.typeUrl === ERROR_INFO_TYPE_URL);
  return detail === undefined ? undefined : ErrorInfo.decode(detail.value);
}

function statusOfTrailers(metadata: Metadata | undefined): RpcStatus | undefined {
  const [raw] = metadata?.get(STATUS_DETAILS_TRAILER) ?? [];
  return Buffer.isBuffer(raw) ? RpcStatus.decode(raw) : undefined;
}

/**
 * Decodes what grpc-js reports for a failed call. A trailer that cannot be decoded counts as
 * absent: the status code and message are still worth reporting.
 */
export function rpcErrorInfoOf(error: ServiceError): RpcErrorInfo {
  let status: RpcStatus | undefined;
  let info: ErrorInfo | undefined;
  try {
    status = statusOfTrailers(error.metadata);
    info = status === undefined ? undefined : errorInfoOfStatus(status);
  } catch {
    status = undefined;
    info = undefined;
  }
  return {
    code: error.code,
    message: (error.details !== '' ? error.details : error.message).trim(),
    reason: info?.reason,
    domain: info?.domain,
    metadata: info?.metadata ?? {},
    statusCode: status?.code,
  };
}
