import { status as Status, type ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import { STATUS_DETAILS_TRAILER } from '../wire/status-details.js';
import { toServiceError } from './rpc-failure.js';

/** A status as grpc-js's calls send it (its `PartialStatusObject`, which grpc-js does not export). */
type SentStatus = Parameters<ServerInterceptingCallInterface['sendStatus']>[0];

/** The config key that bounds a request message, as the ErrorInfo names it. */
const CONFIG_KEY = 'max_receive_message_bytes';

/**
 * The details of grpc-js 1.14's own statuses for a request message over its limit: read whole
 * ("Received message larger than max (N vs LIMIT)", its stream decoder) or once decompressed.
 */
const GRPC_JS_OVERSIZE = /^Received message (?:larger than max \((\d+) vs|that decompresses to a size larger than)/;

/**
 * `status` with wald's `ErrorInfo` when it is grpc-js's own refusal of a request message over
 * `limitBytes` (`RESOURCE_EXHAUSTED`, no details of ours): reason `WAL_MESSAGE_TOO_LARGE`,
 * metadata `configKey` (`max_receive_message_bytes`), `limit` and, when grpc-js says it, `size`;
 * the message names the key too. Any other status is returned as it is.
 */
export function withMessageTooLargeInfo(status: SentStatus, limitBytes: number): SentStatus {
  if (status.code !== Status.RESOURCE_EXHAUSTED || status.metadata?.get(STATUS_DETAILS_TRAILER).length) return status;
  const match = GRPC_JS_OVERSIZE.exec(status.details ?? '');
  if (match === null) return status;
  const size = match[1];
  const message = `request message ${size === undefined ? '' : `of ${size} bytes `}larger than ${CONFIG_KEY} (${limitBytes})`;
  const metadata: Record<string, string> = { configKey: CONFIG_KEY, limit: String(limitBytes), ...(size === undefined ? {} : { size }) };
  const error = toServiceError({ code: Status.RESOURCE_EXHAUSTED, message, reason: 'WAL_MESSAGE_TOO_LARGE', metadata });
  return { code: Status.RESOURCE_EXHAUSTED, details: message, metadata: error.metadata };
}

/** The details of grpc-js 1.14's own status for a request message its deserializer threw on. */
const GRPC_JS_UNDECODABLE = /^Error deserializing request/;

/**
 * `status` as `INVALID_ARGUMENT` with wald's `ErrorInfo` when it is grpc-js's own answer to a
 * request message that does not decode (`INTERNAL` "Error deserializing request", no details of
 * ours): the message is the client's fault, not the server's. Reason `WAL_INVALID_ARGUMENT`,
 * metadata `field` `request`. Any other status is returned as it is.
 */
export function withUndecodableRequestInfo(status: SentStatus): SentStatus {
  if (status.code !== Status.INTERNAL || status.metadata?.get(STATUS_DETAILS_TRAILER).length) return status;
  if (!GRPC_JS_UNDECODABLE.test(status.details ?? '')) return status;
  const message = 'request: the message is not a valid protobuf encoding of the method\'s request';
  const error = toServiceError({ code: Status.INVALID_ARGUMENT, message, reason: 'WAL_INVALID_ARGUMENT', metadata: { field: 'request' } });
  return { code: Status.INVALID_ARGUMENT, details: message, metadata: error.metadata };
}

/**
 * The grpc-js server interceptor that gives grpc-js's own refusals of a request message wald's
 * `ErrorInfo` (STYLE.md: every status carries one): an oversize one names
 * `max_receive_message_bytes`, an undecodable one the request. grpc-js refuses such a message in
 * its innermost call object, before any interceptor or handler sees it, and sends that status
 * past the interceptor chain: so this interceptor, the first of the server,
 * takes that innermost call (the one it is handed) and puts its own `sendStatus` on it, through
 * which grpc-js's refusals go as well as every status a handler sends. It changes only two of
 * them: the oversize refusal ({@link withMessageTooLargeInfo}) and the answer to a request that
 * does not decode ({@link withUndecodableRequestInfo}); it adds nothing per message (the call it
 * returns is grpc-js's own).
 * Relies on grpc-js 1.14 calling `this.sendStatus` for those refusals:
 * `test/integration/connection-limits.test.ts` checks the ErrorInfo on a real server, so an upgrade
 * that changes it fails the tests.
 */
export function grpcJsRefusalsInterceptor(limitBytes: number): ServerInterceptor {
  return (_method, call) => {
    const sendStatus = call.sendStatus;
    call.sendStatus = (status) => sendStatus.call(call, withUndecodableRequestInfo(withMessageTooLargeInfo(status, limitBytes)));
    // grpc-js declares its own class as the result but uses only this interface of it (the chain's
    // reduce returns a ServerInterceptingCallInterface): wrapping the call in a ServerInterceptingCall
    // would put one more layer in front of every message the server writes.
    return call as unknown as ServerInterceptingCall;
  };
}
