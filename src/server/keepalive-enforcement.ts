import { constants as http2Constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { PingStrikes, type PingPolicy } from './ping-strikes.js';
import { http2ServersOf } from './receive-window.js';

/** The GOAWAY debug data of a connection closed for its PINGs: grpc-js, grpc-go and gRPC core clients read it and back their keepalive off. */
export const TOO_MANY_PINGS = Buffer.from('too_many_pings', 'ascii');

/** Bytes of one PING acknowledgement on the wire: a 9-byte frame header and 8 bytes of payload. */
const PING_ACK_BYTES = 17;

/** What {@link enforceKeepalive} did: whether it watches the connections, and how many it closed. */
export class KeepaliveEnforcement {
  private closed = 0;

  /** @internal Made by {@link enforceKeepalive}. */
  constructor(
    /** The rules enforced. */
    readonly policy: PingPolicy,
    /** True when every new connection is watched; false when enforcement is off (`minPingIntervalMs` 0) or grpc-js hid its HTTP/2 servers. */
    readonly isHooked: boolean,
  ) {}

  /** Connections closed with GOAWAY `ENHANCE_YOUR_CALM` `too_many_pings` so far. */
  get closedConnections(): number {
    return this.closed;
  }

  /** @internal */
  countClosed(): void {
    this.closed++;
  }
}

/**
 * Enforces gRPC's keepalive policy on every new HTTP/2 connection of the bound grpc-js `server`
 * (grpc-js 1.14 has no server side for it): each PING the client sends is weighed by
 * {@link PingStrikes}, and a connection over `policy.maxPingStrikes` is sent GOAWAY with
 * `ENHANCE_YOUR_CALM` and the debug data `too_many_pings`, then closed with its calls (as gRPC
 * core and grpc-go do), logged at warn with the peer, and `onClosed` is called (the metric).
 *
 * "The server wrote since the previous PING" is read from the connection's socket byte count
 * (`bytesWritten`, plaintext HTTP/2 bytes with TLS too): anything beyond 17 bytes per PING
 * acknowledgement counts, so a connection that carried a response, a tail message or a heartbeat
 * since clears its strikes. Control frames the server sends (its own keepalive PING, a SETTINGS
 * or WINDOW_UPDATE answering the client) count as well: laxer than gRPC core by one PING at most
 * per such frame, never stricter. Open calls are counted (streams opened, not yet closed) only
 * when the policy tells them apart (`permitWithoutCalls` false). Call after the server is bound;
 * with `minPingIntervalMs` 0 it watches nothing (no listener, no cost per PING).
 *
 * Uses grpc-js internals ({@link http2ServersOf}, as `grantReceiveWindow` does); when they are not
 * there it logs an error and enforces nothing (`isHooked` false).
 */
export function enforceKeepalive(
  server: Server,
  policy: PingPolicy,
  logger: Logger,
  onClosed: () => void = () => {},
  clock: () => number = () => performance.now(),
): KeepaliveEnforcement {
  if (policy.minPingIntervalMs === 0) return new KeepaliveEnforcement(policy, false);
  const http2Servers = http2ServersOf(server);
  const enforcement = new KeepaliveEnforcement(policy, http2Servers !== undefined);
  if (http2Servers === undefined) {
    logger.error({ ...policy }, 'this grpc-js version hides its HTTP/2 servers: keepalive enforcement is off');
    return enforcement;
  }
  for (const http2Server of http2Servers) {
    http2Server.on('session', (session: Http2Session) => {
      watchSession(session, policy, clock, (peer) => {
        enforcement.countClosed();
        onClosed();
        logger.warn(
          { peer, minPingIntervalMs: policy.minPingIntervalMs, maxPingStrikes: policy.maxPingStrikes },
          'too many pings: connection closed with GOAWAY ENHANCE_YOUR_CALM too_many_pings',
        );
      });
    });
  }
  return enforcement;
}

/** Weighs each PING `session` receives; closes it, and calls `onClosed` with its peer, past the strikes. */
function watchSession(session: Http2Session, policy: PingPolicy, clock: () => number, onClosed: (peer: string) => void): void {
  const strikes = new PingStrikes(policy);
  let openCalls = 0;
  if (!policy.permitWithoutCalls) {
    session.on('stream', (stream: ServerHttp2Stream) => {
      openCalls++;
      stream.once('close', () => openCalls--);
    });
  }
  // What the socket will have written once the acknowledgements of the PINGs so far are out: a
  // PING's acknowledgement follows its 'ping' event, and a burst of PINGs read at once is
  // acknowledged after all of their events.
  let writtenWithAcks: number | undefined;
  let isClosed = false;
  session.on('ping', () => {
    if (isClosed) return;
    const written = bytesWrittenOf(session);
    const hasServerWritten = writtenWithAcks !== undefined && written > writtenWithAcks;
    writtenWithAcks = Math.max(written, writtenWithAcks ?? 0) + PING_ACK_BYTES;
    if (!strikes.received({ nowMs: clock(), hasServerWritten, hasOpenCalls: openCalls > 0 })) return;
    isClosed = true;
    const peer = peerOf(session);
    try {
      session.goaway(http2Constants.NGHTTP2_ENHANCE_YOUR_CALM, session.state.lastProcStreamID ?? 0, TOO_MANY_PINGS);
    } finally {
      // The GOAWAY is written before the socket closes (Node flushes it); the calls end with it.
      session.destroy();
    }
    onClosed(peer);
  });
}

/** Bytes the connection's socket has written (0 once it is gone). */
function bytesWrittenOf(session: Http2Session): number {
  return session.socket?.bytesWritten ?? 0;
}

/** `address:port` of the client of `session`, for the log line. */
function peerOf(session: Http2Session): string {
  const socket = session.socket;
  return socket === undefined || socket === null ? 'unknown' : `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
}
