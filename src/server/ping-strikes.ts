/**
 * How long gRPC core and grpc-go make a client wait between two PINGs on a connection with no call
 * open, when the server does not permit pings without calls: two hours (grpc-go's
 * `defaultPingTimeout`, core's `RecvPingIntervalWithoutData` for an idle transport).
 */
export const IDLE_MIN_PING_INTERVAL_MS = 2 * 60 * 60 * 1000;

/** The rules a {@link PingStrikes} counts by: the `keepalive_*` enforcement keys of the server. */
export interface PingPolicy {
  /** Least time between two PINGs the server sent nothing between, ms; 0: no PING is too soon. */
  readonly minPingIntervalMs: number;
  /** Whether that interval holds on a connection with no call open too (else two hours do). */
  readonly permitWithoutCalls: boolean;
  /** Too-soon PINGs tolerated; the next one closes the connection. */
  readonly maxPingStrikes: number;
}

/** What the server saw since the client's previous PING, as {@link PingStrikes.received} weighs it. */
export interface PingContext {
  /** Arrival of this PING, ms (any monotonic clock). */
  readonly nowMs: number;
  /** Whether the server wrote anything on the connection since the previous PING other than the acknowledgements of PINGs. */
  readonly hasServerWritten: boolean;
  /** Whether a call is open on the connection now. */
  readonly hasOpenCalls: boolean;
}

/**
 * The ping-strike count of one HTTP/2 connection: gRPC core's and grpc-go's keepalive enforcement
 * (grpc-go `internal/transport/http2_server.go` `handlePing`, core `ping_abuse_policy`), fed one
 * received PING at a time. A PING is too soon when it comes less than `minPingIntervalMs` after the
 * previous one (two hours on a connection with no call open, unless `permitWithoutCalls`), and it
 * is a strike then; but a PING after the server wrote anything ("with data": headers, messages,
 * trailers) is never a strike and clears the strikes, as grpc-go's `resetPingStrikes` does, so a
 * client that pings back at what it receives (a gRPC core client's BDP probes while a tail pours
 * records in) is not punished. More than `maxPingStrikes` strikes: the connection is to be closed.
 *
 * Pure: the caller ({@link enforceKeepalive}) says when the PING came and what happened since.
 */
export class PingStrikes {
  private lastPingMs: number | undefined;
  private strikes = 0;

  constructor(private readonly policy: PingPolicy) {}

  /** Strikes counted since the server last wrote. */
  get count(): number {
    return this.strikes;
  }

  /** Counts one received PING; true when it takes the strikes over `maxPingStrikes`. */
  received(ping: PingContext): boolean {
    const previous = this.lastPingMs;
    this.lastPingMs = ping.nowMs;
    if (ping.hasServerWritten || previous === undefined) {
      this.strikes = 0;
      return false;
    }
    const { minPingIntervalMs, permitWithoutCalls, maxPingStrikes } = this.policy;
    if (minPingIntervalMs === 0) return false;
    const least = ping.hasOpenCalls || permitWithoutCalls ? minPingIntervalMs : Math.max(minPingIntervalMs, IDLE_MIN_PING_INTERVAL_MS);
    if (ping.nowMs - previous < least) this.strikes++;
    return this.strikes > maxPingStrikes;
  }
}
