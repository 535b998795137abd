import type { ChannelCredentials, ChannelOptions, Metadata } from '@grpc/grpc-js';

const MiB = 1024 * 1024;

/** Options of {@link WalClient}; every one is optional. */
export interface WalClientOptions {
  /** How to reach the server: `credentials.createInsecure()` (the default) or `credentials.createSsl(...)` for TLS. */
  readonly credentials?: ChannelCredentials | undefined;
  /**
   * Metadata sent with every call and every stream (for example an `authorization` header),
   * asked for again at each call and at each reconnect so that a provider can refresh a token.
   */
  readonly metadata?: (() => Metadata | Promise<Metadata>) | undefined;
  /** A bearer token sent as `authorization: Bearer <token>` with every call; asked for at each call and reconnect. */
  readonly token?: (() => string | Promise<string>) | undefined;
  /** Extra grpc-js channel options, applied over the client's own (see {@link walChannelOptions}). */
  readonly channelOptions?: ChannelOptions | undefined;
  /**
   * How long an append waits, once nothing is being written, for others to join its message, ms.
   * 0 (default): whatever accumulated during one event-loop turn. While a message is being
   * written, appends accumulate and go out as soon as it is on the wire, whatever this is.
   */
  readonly lingerMs?: number | undefined;
  /** Most records one AppendStream message carries (over all its appends); an append larger goes alone. Default 10,000. */
  readonly maxBatchRecords?: number | undefined;
  /** Most record bytes (values, keys, headers) one message carries; an append larger goes alone. Default 1 MiB. */
  readonly maxBatchBytes?: number | undefined;
  /** Most appends one message carries; at most the server's `max_appends_per_message` (default 1,024). Default 256. */
  readonly maxAppendsPerMessage?: number | undefined;
  /** Most AppendStream messages sent and not yet answered; beyond, appends wait in the queue. Default 4. */
  readonly maxInFlightMessages?: number | undefined;
  /** Most appends queued (not yet sent); beyond, `append` waits for room before queueing. Default 100,000. */
  readonly maxQueuedAppends?: number | undefined;
  /**
   * Idempotent appends (default true): each append carries a producer id and sequence, so a retry
   * after a broken connection or a restart is acknowledged as a duplicate instead of written twice.
   * False: appends unanswered when a connection breaks fail with `UNAVAILABLE` (outcome unknown).
   */
  readonly idempotent?: boolean | undefined;
  /** How long a call may keep retrying after `UNAVAILABLE`, from when it was made, ms. Default 30,000. */
  readonly retryDeadlineMs?: number | undefined;
  /** First backoff between retries and reconnects, ms (doubles each attempt, with jitter). Default 50. */
  readonly initialBackoffMs?: number | undefined;
  /** Longest backoff between retries and reconnects, ms. Default 1,000. */
  readonly maxBackoffMs?: number | undefined;
  /** Deadline of each unary call (Read, Get, GetStats) attempt, ms. Default 30,000. */
  readonly callTimeoutMs?: number | undefined;
  /**
   * Pages `range` asks for ahead of the one the caller consumes, when it is given a `limit` (each
   * guessed to span as many offsets as the page before). Default 3, at most 32; 1: each page is
   * asked for once the page before has arrived.
   */
  readonly readAheadPages?: number | undefined;
}

/** {@link WalClientOptions} with the defaults filled in. */
export type ResolvedWalClientOptions = Required<
  Pick<
    WalClientOptions,
    | 'lingerMs'
    | 'maxBatchRecords'
    | 'maxBatchBytes'
    | 'maxAppendsPerMessage'
    | 'maxInFlightMessages'
    | 'maxQueuedAppends'
    | 'idempotent'
    | 'retryDeadlineMs'
    | 'initialBackoffMs'
    | 'maxBackoffMs'
    | 'callTimeoutMs'
    | 'readAheadPages'
  >
> &
  Pick<WalClientOptions, 'credentials' | 'metadata' | 'token' | 'channelOptions'>;

/** Most Reads `range` keeps under way (`readAheadPages`): each may hold a page of up to `max_response_bytes` in the client. */
export const MAX_READ_AHEAD_PAGES = 32;

/** The defaults of {@link WalClientOptions}. */
export const WAL_CLIENT_DEFAULTS = {
  lingerMs: 0,
  maxBatchRecords: 10_000,
  maxBatchBytes: 1 * MiB,
  maxAppendsPerMessage: 256,
  maxInFlightMessages: 4,
  maxQueuedAppends: 100_000,
  idempotent: true,
  retryDeadlineMs: 30_000,
  initialBackoffMs: 50,
  maxBackoffMs: 1000,
  callTimeoutMs: 30_000,
  readAheadPages: 3,
} as const;

/**
 * Largest message the client accepts or sends, bytes: above a server's 8 MiB default responses,
 * bounded so that a broken server cannot make the client buffer without limit.
 */
export const CLIENT_MAX_MESSAGE_BYTES = 64 * MiB;

/**
 * The grpc-js channel options of a wald client: message sizes, an HTTP/2 receive window of 1 MiB
 * (grpc-js keeps 64 KiB, which stalls a tail or a large Read while the client is busy: the server
 * does the same, see `receive_window_bytes`), keepalive PINGs every 30 s that drop a dead
 * connection after 10 s, quick reconnects (from 100 ms up to 2 s instead of grpc-js's 1 s to 120 s:
 * a restarted server is found again within its restart time), and a connection of the client's own.
 */
export function walChannelOptions(extra: ChannelOptions = {}): ChannelOptions {
  return {
    'grpc.max_receive_message_length': CLIENT_MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': CLIENT_MAX_MESSAGE_BYTES,
    'grpc-node.flow_control_window': 1 * MiB,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2000,
    'grpc.use_local_subchannel_pool': 1,
    ...extra,
  };
}

function check(options: WalClientOptions, key: keyof typeof WAL_CLIENT_DEFAULTS, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = options[key] ?? WAL_CLIENT_DEFAULTS[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new TypeError(`WalClient option ${key} must be an integer, got ${String(value)}`);
  if (value < min) throw new RangeError(`WalClient option ${key} must be at least ${min}, got ${value}`);
  if (value > max) throw new RangeError(`WalClient option ${key} must be at most ${max}, got ${value}`);
  return value;
}

/**
 * Fills in the defaults of `options` and checks them.
 *
 * @throws TypeError naming the option for a value of the wrong type; RangeError naming it for a
 *   value out of range.
 */
export function resolveWalClientOptions(options: WalClientOptions = {}): ResolvedWalClientOptions {
  const idempotent = options.idempotent ?? WAL_CLIENT_DEFAULTS.idempotent;
  if (typeof idempotent !== 'boolean') throw new TypeError(`WalClient option idempotent must be a boolean, got ${String(idempotent)}`);
  const resolved = {
    credentials: options.credentials,
    metadata: options.metadata,
    token: options.token,
    channelOptions: options.channelOptions,
    idempotent,
    lingerMs: check(options, 'lingerMs', 0),
    maxBatchRecords: check(options, 'maxBatchRecords', 1),
    maxBatchBytes: check(options, 'maxBatchBytes', 1),
    maxAppendsPerMessage: check(options, 'maxAppendsPerMessage', 1),
    maxInFlightMessages: check(options, 'maxInFlightMessages', 1),
    maxQueuedAppends: check(options, 'maxQueuedAppends', 1),
    retryDeadlineMs: check(options, 'retryDeadlineMs', 0),
    initialBackoffMs: check(options, 'initialBackoffMs', 1),
    maxBackoffMs: check(options, 'maxBackoffMs', 1),
    callTimeoutMs: check(options, 'callTimeoutMs', 1),
    readAheadPages: check(options, 'readAheadPages', 1, MAX_READ_AHEAD_PAGES),
  };
  if (resolved.maxBackoffMs < resolved.initialBackoffMs) {
    throw new RangeError(`WalClient option maxBackoffMs (${resolved.maxBackoffMs}) must be at least initialBackoffMs (${resolved.initialBackoffMs})`);
  }
  return resolved;
}
