import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { rpcErrorInfoOf } from '../client/rpc-error-info.js';

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

/** Turns what grpc-js reports for a failed call into an {@link RpcError}. */
export function toRpcError(error: ServiceError): RpcError {
  const info = rpcErrorInfoOf(error);
  return new RpcError(info.code, statusName(info.code), info.message, info.reason, info.metadata);
}

/** One line for stderr: `OUT_OF_RANGE (WAL_OFFSET_OUT_OF_RANGE): message [key=value, ...]`. */
export function formatRpcError(error: RpcError): string {
  const reason = error.reason === undefined ? '' : ` (${error.reason})`;
  const entries = Object.entries(error.metadata);
  const metadata = entries.length === 0 ? '' : ` [${entries.map(([k, v]) => `${k}=${v}`).join(', ')}]`;
  return `${error.status}${reason}: ${error.message}${metadata}`;
}
