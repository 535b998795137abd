import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ServerMetrics } from './server-metrics.js';

/** Why the server is not ready to take appends, or undefined when it is. */
export type ReadinessCheck = () => string | undefined;

/** The host and port of a `host:port` address (`[::1]:9464` gives `::1`). */
function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(address.slice(colon + 1)) };
}

/**
 * The HTTP listener of `metrics_listen`, on a `node:http` server of its own (never the gRPC port):
 * `GET /metrics` (the Prometheus exposition of {@link ServerMetrics}), `GET /healthz` (liveness:
 * 200 while the process serves HTTP at all) and `GET /readyz` (readiness: 200 while the log is open
 * and writable, else 503 with the reason as text). Anything else is 404; a method other than GET or
 * HEAD is 405.
 */
export class MetricsListener {
  private readonly http: Server;

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly readiness: ReadinessCheck,
    private readonly logger: Logger,
  ) {
    this.http = createServer((request, response) => {
      this.serve(request, response).catch((error: unknown) => {
        this.logger.error({ err: error, url: request.url }, 'metrics request failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('internal error\n');
      });
    });
    // After the bind, an accept failure (too many open files...) is logged, never an uncaught 'error'.
    this.http.on('error', (error) => {
      if (this.http.listening) this.logger.error({ err: error }, 'metrics listener error');
    });
  }

  /**
   * Listens on `address` (`host:port`; port 0 picks one); resolves with the port bound.
   *
   * @throws Error when the address cannot be bound (`EADDRINUSE`, ...).
   */
  listen(address: string): Promise<number> {
    const { host, port } = splitAddress(address);
    return new Promise<number>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        resolve((this.http.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and drops open connections (scrapers keep theirs alive); resolves once closed. */
  close(): Promise<void> {
    if (!this.http.listening) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    return closed;
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      reply(response, 405, 'only GET and HEAD\n', { allow: 'GET, HEAD' });
      return;
    }
    const path = (request.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/metrics':
        try {
          const { text, contentType } = await this.metrics.exposition();
          reply(response, 200, text, { 'content-type': contentType });
        } catch (error) {
          this.logger.error({ err: error }, 'collecting the metrics failed');
          reply(response, 500, 'collecting the metrics failed\n');
        }
        return;
      case '/healthz':
        reply(response, 200, 'ok\n');
        return;
      case '/readyz': {
        const reason = this.readiness();
        if (reason === undefined) reply(response, 200, 'ready\n');
        else reply(response, 503, `not ready: ${reason}\n`);
        return;
      }
      default:
        reply(response, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  }
}

function reply(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
