import { status as Status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { ErrorInfo } from '../gen/google/rpc/error_details.js';
import { Status as RpcStatus } from '../gen/google/rpc/status.js';
import { ERROR_INFO_TYPE_URL, STATUS_DETAILS_TRAILER } from '../server/rpc-failure.js';

/**
 * A failed call as the CLI reports it: the gRPC status (code and name), the message, and the
 * `google.rpc.ErrorInfo` of the `grpc-status-details-bin` trailer when the server sent one
 * (`reason` is then the stable `WAL_*` code).
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';

  constructor(
    /** The numeric gRPC status code. */
    readonly code: Status,
    /** The status name, e.g. `OUT_OF_RANGE`. */
    readonly status: string,
    message: string,
    /** `ErrorInfo.reason`, when the server sent one. */
    readonly reason: string | undefined,
    /** `ErrorInfo.metadata`: the error's values as strings. */
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    super(message);
  }

  /** The JSON form printed with `--json`. */
  toJSON(): { status: string; code: number; reason: string | null; message: string; metadata: Record<string, string> } {
    return { status: this.status, code: this.code, reason: this.reason ?? null, message: this.message, metadata: { ...this.metadata } };
  }
}

/** The name of a gRPC status code (`11` -> `OUT_OF_RANGE`). */
export function statusName(code: number): string {
  return Status[code] ?? `STATUS_${code}`;
}

function errorInfoOf(metadata: Metadata | undefined): ErrorInfo | undefined {
  const [raw] = metadata?.get(STATUS_DETAILS_TRAILER) ?? [];
  if (!Buffer.isBuffer(raw)) return undefined;
  try {
    const detail = RpcStatus.decode(raw).details.find((any) => any.typeUrl === ERROR_INFO_TYPE_URL);
    return detail === undefined ? undefined : ErrorInfo.decode(detail.value);
  } catch {
    // A trailer we cannot decode leaves the status and message, which are still worth showing.
    return undefined;
  }
}

/** Turns what grpc-js reports for a failed call into an {@link RpcError}. */
export function toRpcError(error: ServiceError): RpcError {
  const info = errorInfoOf(error.metadata);
  const message = (error.details !== '' ? error.details : error.message).trim();
  return new RpcError(error.code, statusName(error.code), message, info?.reason, info?.metadata ?? {});
}

/** True when `value` looks like a grpc-js `ServiceError` (an Error with a numeric `code`). */
export function isServiceError(value: unknown): value is ServiceError {
  return value instanceof Error && typeof (value as Partial<ServiceError>).code === 'number' && 'details' in value;
}

/** One line for stderr: `OUT_OF_RANGE (WAL_OFFSET_OUT_OF_RANGE): message [key=value, ...]`. */
export function formatRpcError(error: RpcError): string {
  const reason = error.reason === undefined ? '' : ` (${error.reason})`;
  const entries = Object.entries(error.metadata);
  const metadata = entries.length === 0 ? '' : ` [${entries.map(([k, v]) => `${k}=${v}`).join(', ')}]`;
  return `${error.status}${reason}: ${error.message}${metadata}`;
}
