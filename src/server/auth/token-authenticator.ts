import { timingSafeEqual } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { WalError } from '../../errors.js';
import { accessTokenDigest, AUTHORIZATION_METADATA_KEY, bearerTokenOf } from './access-token.js';
import type { AuthEntry } from './auth-file.js';
import { RefusalLog } from './refusal-log.js';
import { roleGrants, type Role } from './role.js';

/** Who made a call: the role and the name of the token it presented. */
export interface Caller {
  readonly role: Role;
  /** The token's name in the auth file; undefined when it has none. */
  readonly name: string | undefined;
}

/** What the authenticator needs to know of the RPC being called. */
export interface RpcAccess {
  readonly name: string;
  /** The least role that may call the RPC. */
  readonly role: Role;
}

/** Why a call was not authenticated, as `details.problem` says it. */
type AuthenticationProblem = 'no token' | 'not a bearer token' | 'unknown token';

/**
 * Checks the bearer token of each call against the entries of the auth file: the token's SHA-256
 * compared in constant time with every entry's (`timingSafeEqual`, no early exit, so the time
 * taken tells nothing of which entry or byte differed), then the role the entry grants against
 * the role the RPC needs. Failures are counted, and logged without the token at most
 * `auth_refusal_log_per_second` lines a second ({@link RefusalLog}).
 *
 * The entries can be replaced while calls go on (`replace`, at SIGHUP): a call is checked against
 * the entries in force when it arrives.
 */
export class TokenAuthenticator {
  private entries: readonly AuthEntry[];
  private authenticationFailureCount = 0;
  private permissionDenialCount = 0;
  private readonly refusals: RefusalLog;

  constructor(
    entries: readonly AuthEntry[],
    logger: Logger,
    /** Hears each refusal with the code sent (the server's metrics count them); the line is logged here already. */
    private readonly onRefused: (reason: 'WAL_UNAUTHENTICATED' | 'WAL_PERMISSION_DENIED') => void,
    /** `auth_refusal_log_per_second`: refusal lines logged per second at most. */
    refusalLinesPerSecond: number,
    clock: () => number = Date.now,
  ) {
    this.entries = entries;
    this.refusals = new RefusalLog(logger, refusalLinesPerSecond, clock);
  }

  /** Calls refused with `UNAUTHENTICATED` (no token, not a bearer token, or a token of no entry) since the start. */
  get authenticationFailures(): number {
    return this.authenticationFailureCount;
  }

  /** Calls refused with `PERMISSION_DENIED` (a known token of too small a role) since the start. */
  get permissionDenials(): number {
    return this.permissionDenialCount;
  }

  /** How many tokens are accepted now. */
  get entryCount(): number {
    return this.entries.length;
  }

  /** Accepts the tokens of `entries` from now on, and no others. */
  replace(entries: readonly AuthEntry[]): void {
    this.entries = entries;
  }

  /**
   * The caller of a call with `metadata` to `rpc`, once its token is known and its role may call
   * the RPC. `peerOf` gives the caller's address for the log line of a refusal, and is called
   * only then: reading a call's peer address costs about as much as the rest of the check.
   *
   * @throws WalError `WAL_UNAUTHENTICATED` (details `rpc`, `problem`) when the call carries no
   *   `authorization: Bearer <token>` metadata, or more than one, or a token of no entry;
   *   `WAL_PERMISSION_DENIED` (details `rpc`, `requiredRole`, `role`) when the token's role is
   *   below the RPC's.
   */
  admit(rpc: RpcAccess, metadata: Metadata, peerOf: () => string): Caller {
    const values = metadata.get(AUTHORIZATION_METADATA_KEY);
    if (values.length === 0) throw this.unauthenticated(rpc, peerOf, 'no token');
    const token = values.length === 1 && typeof values[0] === 'string' ? bearerTokenOf(values[0]) : undefined;
    if (token === undefined) throw this.unauthenticated(rpc, peerOf, 'not a bearer token');
    const entry = this.entryOf(accessTokenDigest(token));
    if (entry === undefined) throw this.unauthenticated(rpc, peerOf, 'unknown token');
    if (!roleGrants(entry.role, rpc.role)) {
      this.permissionDenialCount += 1;
      this.onRefused('WAL_PERMISSION_DENIED');
      this.refusals.warn({ rpc: rpc.name, peer: peerOf(), tokenName: entry.name, role: entry.role, requiredRole: rpc.role }, 'permission denied');
      throw new WalError('WAL_PERMISSION_DENIED', `${rpc.name} needs the role ${rpc.role}; the token has the role ${entry.role}`, {
        rpc: rpc.name,
        requiredRole: rpc.role,
        role: entry.role,
      });
    }
    return { role: entry.role, name: entry.name };
  }

  /** The entry whose hash is `hash`, looking at every entry whatever matches. */
  private entryOf(hash: Buffer): AuthEntry | undefined {
    let found: AuthEntry | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.tokenSha256, hash) && found === undefined) found = entry;
    }
    return found;
  }

  private unauthenticated(rpc: RpcAccess, peerOf: () => string, problem: AuthenticationProblem): WalError {
    this.authenticationFailureCount += 1;
    this.onRefused('WAL_UNAUTHENTICATED');
    this.refusals.warn({ rpc: rpc.name, peer: peerOf(), problem }, 'authentication failed');
    return new WalError('WAL_UNAUTHENTICATED', `${rpc.name} needs a valid bearer token (authorization: Bearer <token>): ${problem}`, {
      rpc: rpc.name,
      problem,
    });
  }
}
