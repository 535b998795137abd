import type { Http2Session } from 'node:http2';
import { Server as NetServer } from 'node:net';
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';

/** The part of grpc-js's `Server` internals this module relies on (grpc-js 1.14). */
interface ServerInternals {
  readonly http2Servers?: unknown;
}

/**
 * The HTTP/2 servers a bound grpc-js `server` listens with, read from grpc-js internals (its
 * private `http2Servers` map, keyed by `http2.Http2Server`). Undefined when they do not have that
 * shape: a grpc-js upgrade moved them. A unit test pins the shape for the grpc-js in
 * package.json, so such an upgrade fails the tests rather than only logging here.
 */
export function http2ServersOf(server: Server): readonly NetServer[] | undefined {
  const http2Servers = (server as unknown as ServerInternals).http2Servers;
  if (!(http2Servers instanceof Map) || http2Servers.size === 0) {
    return undefined;
  }
  const servers = [...(http2Servers as Map<unknown, unknown>).keys()];
  // http2.Http2Server (and Http2SecureServer) extend net.Server: nothing else emits 'session'.
  return servers.every((candidate) => candidate instanceof NetServer) ? (servers as NetServer[]) : undefined;
}

/** What {@link grantReceiveWindow} did: whether the window is applied, and to how many connections. */
export class ReceiveWindowGrant {
  private granted = 0;
  private failed = 0;

  /** @internal Made by {@link grantReceiveWindow}. */
  constructor(
    /** The window granted, bytes. */
    readonly windowBytes: number,
    /** True when every new connection gets the window; false when grpc-js hid its HTTP/2 servers. */
    readonly isHooked: boolean,
  ) {}

  /** Connections granted the window so far. */
  get grantedSessions(): number {
    return this.granted;
  }

  /** Connections for which Node refused it (each logged). */
  get failedSessions(): number {
    return this.failed;
  }

  /** @internal */
  countGranted(): void {
    this.granted++;
  }

  /** @internal */
  countFailed(): void {
    this.failed++;
  }
}

/**
 * Grants every new HTTP/2 connection of `server` a receive window of `bytes`, for the connection
 * (a WINDOW_UPDATE) and for each stream (SETTINGS_INITIAL_WINDOW_SIZE). grpc-js offers this only
 * to clients (`grpc-node.flow_control_window`); its server keeps Node's 64 KiB, so a client
 * pipelining appends stalls after 64 KiB whenever the event loop is busy syncing. Call after the
 * server is bound.
 *
 * Uses grpc-js internals ({@link http2ServersOf}). If they are not there, it logs an error and
 * leaves the windows as they are (a slower server, not a broken one); the returned grant says so
 * (`isHooked` false), for `WaldServer.receiveWindow` and the tests.
 */
export function grantReceiveWindow(server: Server, bytes: number, logger: Logger): ReceiveWindowGrant {
  const http2Servers = http2ServersOf(server);
  const grant = new ReceiveWindowGrant(bytes, http2Servers !== undefined);
  if (http2Servers === undefined) {
    logger.error(
      { receiveWindowBytes: bytes },
      'this grpc-js version hides its HTTP/2 servers: receiveWindowBytes is not applied, windows stay at 64 KiB',
    );
    return grant;
  }
  for (const http2Server of http2Servers) {
    http2Server.on('session', (session: Http2Session) => {
      try {
        session.setLocalWindowSize(bytes);
        session.settings({ initialWindowSize: bytes });
        grant.countGranted();
      } catch (error) {
        grant.countFailed();
        logger.warn({ err: error }, 'could not grant the HTTP/2 receive window to a connection');
      }
    });
  }
  return grant;
}
