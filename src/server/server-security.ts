import { ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { loadAuthFile } from './auth/auth-file.js';
import { TokenAuthenticator } from './auth/token-authenticator.js';
import type { ResolvedServerOptions } from './server-options.js';
import { ReloadableCertificates } from './tls/reloadable-certificates.js';

/** What became of one part of {@link ServerSecurity.reload}: reloaded, not configured, or kept as it was because the new files failed. */
export type SecurityReloadOutcome = { readonly status: 'reloaded' | 'off' } | { readonly status: 'kept'; readonly error: string };

/** What {@link ServerSecurity.reload} did with the TLS files and with the auth file. */
export interface SecurityReloadReport {
  readonly tls: SecurityReloadOutcome;
  readonly authFile: SecurityReloadOutcome;
}

/** The options the security of a server is made of. */
export type SecurityOptions = Pick<ResolvedServerOptions, 'tlsCert' | 'tlsKey' | 'tlsClientCa' | 'authFile' | 'maxAuthFileBytes' | 'authRefusalLogPerSecond'>;

/** How a server's connections are secured, for log lines: plaintext, TLS, or TLS with client certificates. */
export type TlsMode = 'off' | 'on' | 'mutual';

/**
 * The security files of a `WaldServer`: its TLS certificate, key and client CAs, and its auth file
 * of bearer tokens. {@link load} reads them before the server binds and gives the credentials to
 * bind with; {@link reload} (SIGHUP) reads them again, each part keeping what it had when its new
 * files fail. The {@link authenticator} is what the admission checks every call with.
 */
export class ServerSecurity {
  /** The bearer-token check, when the options name an auth file (its tokens are read by {@link load}). */
  readonly authenticator: TokenAuthenticator | undefined;
  private certificates: ReloadableCertificates | undefined;
  private isLoaded = false;

  constructor(
    private readonly options: SecurityOptions,
    private readonly logger: Logger,
    /** Hears each call the token check refuses, with the code sent (for the server's metrics). */
    onRefused?: (reason: 'WAL_UNAUTHENTICATED' | 'WAL_PERMISSION_DENIED') => void,
  ) {
    this.authenticator = options.authFile === undefined ? undefined : new TokenAuthenticator([], logger, onRefused ?? (() => {}), options.authRefusalLogPerSecond);
  }

  /** Plaintext, TLS or mutual TLS, once {@link load} has read the files; `off` before. */
  get tlsMode(): TlsMode {
    return this.certificates === undefined ? 'off' : this.certificates.isMutual ? 'mutual' : 'on';
  }

  /**
   * Reads the auth file and the TLS files, and returns the credentials to bind with (insecure
   * without TLS files).
   *
   * @throws AuthFileError / TlsFilesError when a file cannot be used.
   */
  async load(): Promise<ServerCredentials> {
    const { authFile, tlsCert, tlsKey, tlsClientCa } = this.options;
    if (this.authenticator !== undefined && authFile !== undefined) {
      this.authenticator.replace(await loadAuthFile(authFile, this.options.maxAuthFileBytes));
      this.logger.info({ authFile, tokens: this.authenticator.entryCount }, 'auth file loaded');
    }
    let credentials = ServerCredentials.createInsecure();
    if (tlsCert !== undefined && tlsKey !== undefined) {
      this.certificates = await ReloadableCertificates.load({ certFile: tlsCert, keyFile: tlsKey, clientCaFile: tlsClientCa });
      this.logger.info({ tlsCert, mutual: this.certificates.isMutual, ...this.certificates.summary }, 'TLS certificate loaded');
      credentials = this.certificates.credentials();
    }
    this.isLoaded = true;
    return credentials;
  }

  /**
   * Reads the TLS files and the auth file again. New connections get the new certificate, open
   * ones go on with theirs; calls from now on are checked against the new tokens. A part whose new
   * files cannot be used keeps what it had, and the reason is logged and reported. Before
   * {@link load} there is nothing to reload: both parts report `off`.
   */
  async reload(): Promise<SecurityReloadReport> {
    const { authenticator, certificates } = this;
    const { authFile } = this.options;
    const tls = await this.reloadPart(
      'TLS certificate',
      certificates === undefined
        ? undefined
        : async () => {
            await certificates.reload();
            this.logger.info({ tlsCert: certificates.files.certFile, ...certificates.summary }, 'TLS certificate reloaded');
          },
    );
    const auth = await this.reloadPart(
      'auth file',
      authenticator === undefined || authFile === undefined || !this.isLoaded
        ? undefined
        : async () => {
            authenticator.replace(await loadAuthFile(authFile, this.options.maxAuthFileBytes));
            this.logger.info({ authFile, tokens: authenticator.entryCount }, 'auth file reloaded');
          },
    );
    return { tls, authFile: auth };
  }

  private async reloadPart(what: string, reload: (() => Promise<void>) | undefined): Promise<SecurityReloadOutcome> {
    if (reload === undefined) return { status: 'off' };
    try {
      await reload();
      return { status: 'reloaded' };
    } catch (error) {
      this.logger.error({ err: error }, `${what} not reloaded: the one loaded before stays in force`);
      return { status: 'kept', error: (error as Error).message };
    }
  }
}
