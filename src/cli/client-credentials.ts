import { readFileSync, statSync } from 'node:fs';
import { credentials, InterceptingCall, type ChannelCredentials, type Interceptor } from '@grpc/grpc-js';
import { Option, type Command } from 'commander';
import { AUTHORIZATION_METADATA_KEY, bearerValueOf, isAccessToken } from '../server/auth/access-token.js';
import { UsageError } from './exit-codes.js';

/** Environment variable holding the bearer token itself, when `--token-file` is not given. */
export const TOKEN_ENV = 'WALD_TOKEN';

/** Environment variable that turns TLS on (`true`/`1`) when `--tls` is not given. */
export const TLS_ENV = 'WALD_TLS';

/** Largest token file read, bytes: a token is at most 4096 characters; more is a wrong file. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/** How a client command reaches a server that asks for TLS or a token. Every field is optional. */
export interface ClientSecurityOptions {
  /** Use TLS, trusting the system's CAs unless `tlsCa` is given. Implied by any `tls*` file. */
  readonly tls?: boolean | undefined;
  /** PEM CA certificates that signed the server's certificate. */
  readonly tlsCa?: string | undefined;
  /** PEM certificate of the client, for a server with mutual TLS (with `tlsKey`). */
  readonly tlsCert?: string | undefined;
  /** PEM private key of `tlsCert`. */
  readonly tlsKey?: string | undefined;
  /** The name the server's certificate must carry, when it is not the host of `--server`. */
  readonly tlsServerName?: string | undefined;
  /** File holding the bearer token (surrounding whitespace ignored). */
  readonly tokenFile?: string | undefined;
}

/** Adds `--tls`, `--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-server-name` and `--token-file` (and their `WALD_*` variables). */
export function addClientSecurityOptions(command: Command): Command {
  return command
    // Not commander's .env(): it turns a boolean flag on for any value of the variable, WALD_TLS=0 too.
    .addOption(new Option('--tls', `connect with TLS (implied by --tls-ca, --tls-cert and --tls-key; env ${TLS_ENV}=true)`))
    .addOption(new Option('--tls-ca <file>', "PEM CA certificates that signed the server's certificate").env('WALD_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'PEM client certificate, for a server with mutual TLS').env('WALD_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert').env('WALD_TLS_KEY'))
    .addOption(new Option('--tls-server-name <name>', "name the server's certificate must carry (default: the host of --server)").env('WALD_TLS_SERVER_NAME'))
    .addOption(new Option('--token-file <file>', `file holding the bearer token (else env ${TOKEN_ENV} holds the token)`).env('WALD_TOKEN_FILE'));
}

function readClientFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

/** The bearer token of the options (`--token-file`, else `WALD_TOKEN`), or undefined when none is given. */
export function tokenOf(options: ClientSecurityOptions, env: Readonly<Record<string, string | undefined>>): string | undefined {
  let token: string;
  let from: string;
  if (options.tokenFile !== undefined) {
    let size: number;
    try {
      size = statSync(options.tokenFile).size;
    } catch (error) {
      throw new UsageError(`cannot read the token file ${options.tokenFile}: ${(error as Error).message}`);
    }
    if (size > MAX_TOKEN_FILE_BYTES) throw new UsageError(`the token file ${options.tokenFile} holds more than ${MAX_TOKEN_FILE_BYTES} bytes: not a token`);
    token = readClientFile(options.tokenFile, 'token file').toString('utf8').trim();
    from = `the token file ${options.tokenFile}`;
  } else {
    const value = env[TOKEN_ENV];
    if (value === undefined || value === '') return undefined;
    token = value.trim();
    from = TOKEN_ENV;
  }
  if (!isAccessToken(token)) throw new UsageError(`${from} does not hold a token: 1 to 4096 printable ASCII characters without spaces`);
  return token;
}

/**
 * The channel credentials of the options: TLS when `--tls` or a TLS file is given (mutual with
 * `--tls-cert` and `--tls-key`), else plaintext.
 *
 * @throws UsageError when a file cannot be read, only one of `--tls-cert` and `--tls-key` is given,
 *   or `WALD_TLS` is neither `true`/`1` nor `false`/`0`.
 */
export function channelCredentialsOf(options: ClientSecurityOptions, env: Readonly<Record<string, string | undefined>>): ChannelCredentials {
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new UsageError('give --tls-cert and --tls-key together');
  const tlsEnv = env[TLS_ENV] ?? '';
  if (!['', 'true', '1', 'false', '0'].includes(tlsEnv)) throw new UsageError(`${TLS_ENV} must be true, 1, false or 0, got ${JSON.stringify(tlsEnv)}`);
  const isTls = options.tls === true || tlsEnv === 'true' || tlsEnv === '1' || options.tlsCa !== undefined || options.tlsCert !== undefined;
  if (!isTls) return credentials.createInsecure();
  return credentials.createSsl(
    options.tlsCa === undefined ? null : readClientFile(options.tlsCa, 'CA file (--tls-ca)'),
    options.tlsKey === undefined ? null : readClientFile(options.tlsKey, 'key file (--tls-key)'),
    options.tlsCert === undefined ? null : readClientFile(options.tlsCert, 'certificate file (--tls-cert)'),
  );
}

/**
 * A client interceptor that sends `token` with every call (`authorization: Bearer <token>`).
 * Metadata rather than grpc-js call credentials, which refuse a plaintext channel: a token over
 * plaintext is the operator's choice to make (loopback), not the client's to refuse.
 */
export function bearerTokenInterceptor(token: string): Interceptor {
  const value = bearerValueOf(token);
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(AUTHORIZATION_METADATA_KEY, value);
        next(metadata, listener);
      },
    });
}
