/**
 * The benchmark's client side of `WalService`: the generated grpc-js client, and the few calls the
 * service workloads share.
 */
import { credentials, type ClientOptions } from '@grpc/grpc-js';
import { bearerTokenInterceptor } from '../../src/cli/client-credentials.js';
import { AppendRequest, type AppendResponse } from '../../src/gen/wald/v1/append.js';
import { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';

/** Client-side transport settings of a benchmark client. */
export interface BenchClientOptions {
  /**
   * Its own connection: grpc-js otherwise shares one connection between clients of the same address
   * and options (a tail beside an appender must not share one).
   */
  readonly isOwnConnection?: boolean;
  /**
   * The HTTP/2 receive window the client announces, per stream and per connection
   * (`grpc-node.flow_control_window`), bytes; grpc-js default 65,535.
   */
  readonly flowControlWindowBytes?: number;
  /** TLS, trusting these PEM CA certificates; default plaintext. */
  readonly tlsCa?: Buffer;
  /** A bearer token sent with every call (as the CLI sends one); default none. */
  readonly token?: string;
}

/** A client of the server at `address`: the generated grpc-js client, plaintext unless `tlsCa` is given. */
export function connectBenchClient(address: string, options: BenchClientOptions = {}): WalServiceClient {
  const channelOptions: ClientOptions = {};
  if (options.isOwnConnection === true) channelOptions['grpc.use_local_subchannel_pool'] = 1;
  if (options.flowControlWindowBytes !== undefined) channelOptions['grpc-node.flow_control_window'] = options.flowControlWindowBytes;
  if (options.token !== undefined) channelOptions.interceptors = [bearerTokenInterceptor(options.token)];
  // The certificate names localhost too: an IP address as the TLS server name makes Node warn.
  if (options.tlsCa !== undefined) channelOptions['grpc.ssl_target_name_override'] = 'localhost';
  const channel = options.tlsCa === undefined ? credentials.createInsecure() : credentials.createSsl(options.tlsCa);
  return new WalServiceClient(address, channel, channelOptions);
}

/** An `AppendRequest` of `count` records with `value` each, no key, no headers. */
export function appendRequestOf(value: Buffer, count: number): AppendRequest {
  return AppendRequest.fromPartial({ records: Array.from({ length: count }, () => ({ value })) });
}

/** One unary `Append`. */
export function appendOnce(client: WalServiceClient, request: AppendRequest): Promise<AppendResponse> {
  return new Promise((resolve, reject) => {
    client.append(request, (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}

/** The server's `fdatasync` count so far (`GetStats.io_stats.fsyncs`; 0 from the no-op server). */
export function fsyncCount(client: WalServiceClient): Promise<number> {
  return new Promise((resolve, reject) => {
    client.getStats({}, (error, response) => (error === null ? resolve(Number(response.ioStats?.fsyncs ?? 0n)) : reject(error)));
  });
}
