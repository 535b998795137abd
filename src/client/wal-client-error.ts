import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { Status as RpcStatus } from '../gen/google/rpc/status.js';
import { errorInfoOfStatus, rpcErrorInfoOf } from './rpc-error-info.js';

/** Options of {@link WalClientError} besides its code and message. */
export interface WalClientErrorOptions {
  /** The `ErrorInfo` reason (a `WAL_*` code); undefined for failures the server did not describe. */
  readonly reason?: string | undefined;
  /** The `ErrorInfo` metadata: the error's values as strings. */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** The error this one reports (the last failure before a deadline, a grpc-js error). */
  readonly cause?: unknown;
}

/**
 * A failed `WalClient` call: the gRPC status `code`, and the `ErrorInfo` `reason` (the server's
 * stable `WAL_*` code, see docs/errors.md) with its `metadata`. Branch on `reason` (or `code`), never
 * on `message`.
 *
 * Failures decided by the client carry no reason: `DEADLINE_EXCEEDED` when the retry deadline
 * passed (`cause` is the last failure), `CANCELLED` when the client was closed, `UNAVAILABLE`
 * without idempotence when a connection broke with the append unanswered (it may or may not be
 * written), `UNAUTHENTICATED` when the `metadata` or `token` provider threw, `INTERNAL` for an
 * answer the client cannot make sense of.
 */
export class WalClientError extends Error {
  override readonly name = 'WalClientError';
  /** The numeric gRPC status code (`@grpc/grpc-js` `status`). */
  readonly code: number;
  readonly reason: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;

  constructor(code: number, message: string, options: WalClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason;
    this.metadata = options.metadata ?? {};
  }

  /** True for a failure worth retrying: the server or the connection was unavailable. */
  get isRetryable(): boolean {
    return this.code === Status.UNAVAILABLE;
  }

  /** The error of a failed grpc-js call, with the ErrorInfo of its `grpc-status-details-bin` trailer. */
  static fromServiceError(error: ServiceError): WalClientError {
    const info = rpcErrorInfoOf(error);
    return new WalClientError(info.code, info.message, { reason: info.reason, metadata: info.metadata, cause: error });
  }

  /** The error of a failed append of an AppendStream: its encoded `google.rpc.Status`. */
  static fromStatusBytes(bytes: Uint8Array): WalClientError {
    try {
      const rpcStatus = RpcStatus.decode(bytes);
      const info = errorInfoOfStatus(rpcStatus);
      return new WalClientError(rpcStatus.code, rpcStatus.message, { reason: info?.reason, metadata: info?.metadata });
    } catch (error) {
      return new WalClientError(Status.INTERNAL, 'the server sent an append failure that does not decode', { cause: error });
    }
  }
}

/**
 * Whether a call's `failure` is a broken connection, to be retried or resumed: `UNAVAILABLE`, or a
 * `CANCELLED` the client did not ask for. grpc-js reports a call the server reset as `CANCELLED`:
 * a server whose shutdown grace ran out cancels the calls still open (see `WaldServer.stop`).
 * Callers rule out their own cancellations (a close, an abort) before they ask.
 */
export function isBrokenConnection(failure: WalClientError): boolean {
  return failure.isRetryable || failure.code === Status.CANCELLED;
}
