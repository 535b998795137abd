import type { Http2Session } from 'node:http2';
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';

/** The part of grpc-js's `Server` internals this module relies on (grpc-js 1.14). */
interface ServerInternals {
  readonly http2Servers?: Map<{ on(event: 'session', listener: (session: Http2Session) => void): unknown }, unknown>;
}

/**
 * Grants every new HTTP/2 connection of `server` a receive window of `bytes`, for the connection
 * and for each stream. grpc-js offers this only to clients (`grpc-node.flow_control_window`); its
 * server keeps Node's 64 KiB, so a client pipelining appends stalls after 64 KiB whenever the
 * event loop is busy syncing. Call after the server is bound.
 *
 * Uses grpc-js internals (its map of HTTP/2 servers). If they are not there, it logs a warning
 * and leaves the windows as they are: a slower server, not a broken one.
 */
export function grantReceiveWindow(server: Server, bytes: number, logger: Logger): void {
  const http2Servers = (server as unknown as ServerInternals).http2Servers;
  if (!(http2Servers instanceof Map)) {
    logger.warn('this grpc-js version hides its HTTP/2 servers: receive windows stay at 64 KiB');
    return;
  }
  for (const http2Server of http2Servers.keys()) {
    http2Server.on('session', (session: Http2Session) => {
      try {
        session.setLocalWindowSize(bytes);
        session.settings({ initialWindowSize: bytes });
      } catch (error) {
        logger.warn({ err: error }, 'could not grant the HTTP/2 receive window to a connection');
      }
    });
  }
}
