import { Metadata, type CallOptions, type ClientOptions, type ServiceError } from '@grpc/grpc-js';
import { Option, type Command } from 'commander';
import { WalServiceClient } from '../gen/wald/v1/wal_service.js';
import { parsePositiveInteger } from './arg-parsers.js';
import { addClientSecurityOptions, bearerTokenInterceptor, channelCredentialsOf, tokenOf, type ClientSecurityOptions } from './client-credentials.js';
import { toRpcError } from './rpc-error.js';

/** Default `--server`: the default listen address of `wald serve`. */
export const DEFAULT_SERVER = '127.0.0.1:7070';

/** Default `--timeout-ms` of one-shot calls: generous for a synced append on a slow disk. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Largest response the CLI accepts, bytes. Above gRPC's 4 MiB default so that a server configured
 * with larger records or responses can still be read; bounded so that a broken server cannot make
 * the CLI buffer without limit.
 */
export const CLIENT_MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The options every client command takes: where the server is, how to reach it (TLS, token), what to print. */
export interface ClientCommandOptions extends ClientSecurityOptions {
  /** `host:port` of the server. */
  readonly server: string;
  /** Print JSON instead of text. */
  readonly json: boolean;
}

/** The options of client commands that make one call, with a deadline. */
export interface UnaryCommandOptions extends ClientCommandOptions {
  readonly timeoutMs: number;
}

/** Adds `--server`, `--json` and the TLS and token options (`client-credentials.ts`) to a client command. */
export function addClientOptions(command: Command): Command {
  const withServer = command
    .addOption(new Option('--server <host:port>', 'address of the wald server').env('WALD_SERVER').default(DEFAULT_SERVER))
    .option('--json', 'print JSON instead of text', false);
  return addClientSecurityOptions(withServer);
}

/** Adds the options of {@link addClientOptions} and `--timeout-ms` to a client command that makes one call. */
export function addUnaryClientOptions(command: Command): Command {
  return addClientOptions(command).addOption(
    new Option('--timeout-ms <ms>', 'deadline of the call').argParser(parsePositiveInteger).default(DEFAULT_TIMEOUT_MS),
  );
}

/**
 * A client of `WalService` at `options.server`: over TLS when the options ask for it, sending the
 * bearer token of `--token-file` or `WALD_TOKEN` with every call. Close it when done.
 *
 * @throws UsageError when a TLS or token file cannot be read or holds no token.
 */
export function connectClient(options: ClientCommandOptions, env: Readonly<Record<string, string | undefined>> = process.env): WalServiceClient {
  const token = tokenOf(options, env);
  const clientOptions: ClientOptions = {
    'grpc.max_receive_message_length': CLIENT_MAX_RECEIVE_MESSAGE_BYTES,
    ...(options.tlsServerName === undefined ? {} : { 'grpc.ssl_target_name_override': options.tlsServerName }),
    ...(token === undefined ? {} : { interceptors: [bearerTokenInterceptor(token)] }),
  };
  return new WalServiceClient(options.server, channelCredentialsOf(options, env), clientOptions);
}

/** Call options with a deadline `timeoutMs` from now. */
export function deadlineOptions(timeoutMs: number): Partial<CallOptions> {
  return { deadline: Date.now() + timeoutMs };
}

/**
 * Runs one unary call: `start` receives empty metadata and the callback to pass to the generated
 * method. Rejects with an `RpcError` (status, reason, metadata) when the call fails.
 */
export function callUnary<Response>(
  start: (metadata: Metadata, callback: (error: ServiceError | null, response: Response) => void) => void,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    start(new Metadata(), (error, response) => (error === null ? resolve(response) : reject(toRpcError(error))));
  });
}

/** Runs `work` with a client made by {@link connectClient} and closes the client afterwards, whatever happens. */
export async function withClient<T>(options: ClientCommandOptions, work: (client: WalServiceClient) => Promise<T>): Promise<T> {
  const client = connectClient(options);
  try {
    return await work(client);
  } finally {
    client.close();
  }
}
