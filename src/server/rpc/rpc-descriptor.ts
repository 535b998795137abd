import type { Deadline, ServerDuplexStream, ServerReadableStream, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { Role } from '../auth/role.js';
import type { RegisteredStream, StreamRegistry } from '../stream-registry.js';
import type { RpcContext } from './rpc-context.js';

/**
 * How an RPC's messages flow, as its proto declares: one request and one response, one request
 * and a stream of responses, a stream of requests and one response (ReportFollower), or streams
 * both ways.
 */
export type RpcKind = 'unary' | 'server-stream' | 'client-stream' | 'bidi';

/** What a unary handler may need of its call besides the request: its deadline, and whether the client gave up. */
export interface UnaryCallInfo {
  /** The call's deadline (ms since the Unix epoch, or a Date), `Infinity` when the client set none. */
  readonly deadline: Deadline;
  /** Aborts when the client cancels the call (or its deadline passes and grpc-js cancels it). */
  readonly signal: AbortSignal;
  /** The client's address, for log lines. */
  readonly peer: string;
}

/**
 * What a follower (`wald serve --follow`) does with a call of the RPC: `serve` it (reads, tails,
 * stats, snapshots it holds), or `refuse` it with `FAILED_PRECONDITION` (`WAL_NOT_LEADER`, naming
 * the leader) because it would write to a log that only the leader's frames may change.
 */
export type FollowerPolicy = 'serve' | 'refuse';

/**
 * What a streaming handler makes of one call: the session that serves it. The admission registers
 * it in its RPC's {@link StreamRegistry} (so the stream counts against the limit and is ended at
 * shutdown), runs it, and forgets it once it is over.
 */
export interface RpcStream extends RegisteredStream {
  /** Serves the call to its end; never rejects: every failure becomes the call's status. */
  run(): Promise<void>;
  /** The session's counters, logged when the stream closes. */
  counters(): object;
}

/** A unary RPC: its full name's last part (`Append`), the role it needs, and the handler of one request. */
export interface UnaryRpc<Req, Res> {
  readonly name: string;
  readonly kind: 'unary';
  /**
   * The least role a bearer token must hold to call the RPC, when the server runs with an auth
   * file. Required, so that an RPC added to the table without one does not compile.
   */
  readonly role: Role;
  /** Whether a follower serves the RPC or refuses it (`WAL_NOT_LEADER`). Required, as the role. */
  readonly onFollower: FollowerPolicy;
  /**
   * The role a request needs when it depends on the request (StateAt: `admin` to write a
   * snapshot, else `read`); checked instead of {@link role} when given. Absent: {@link role}.
   */
  roleOf?(request: Req): Role;
  /**
   * Answers one request. A rejection fails the call: a `WalError` with its own status and
   * ErrorInfo, anything else as `INTERNAL` (see `rpc-failure.ts`).
   */
  handle(request: Req, context: RpcContext, call: UnaryCallInfo): Promise<Res>;
}

/** A server-streaming RPC: its name, the session it opens per call, and where sessions are counted. */
export interface ServerStreamRpc<Req, Res> {
  readonly name: string;
  readonly kind: 'server-stream';
  /** The least role that may call the RPC; see {@link UnaryRpc.role}. */
  readonly role: Role;
  /** Whether a follower serves the RPC; see {@link UnaryRpc.onFollower}. */
  readonly onFollower: FollowerPolicy;
  /** The role the request needs when it depends on it (TailWal: `write` for a follower's frames tail); see {@link UnaryRpc.roleOf}. */
  roleOf?(request: Req): Role;
  /** Makes the session of an admitted call; the call is not read or written before `run()`. */
  open(call: ServerWritableStream<Req, Res>, context: RpcContext): RpcStream;
  /** The registry that counts and ends this RPC's streams. */
  streams(context: RpcContext): StreamRegistry<RpcStream>;
}

/** A bidirectional-streaming RPC: as {@link ServerStreamRpc}, with a call that reads requests too. */
export interface BidiRpc<Req, Res> {
  readonly name: string;
  readonly kind: 'bidi';
  /** The least role that may call the RPC; see {@link UnaryRpc.role}. */
  readonly role: Role;
  /** Whether a follower serves the RPC; see {@link UnaryRpc.onFollower}. */
  readonly onFollower: FollowerPolicy;
  /** Makes the session of an admitted call; the call is not read or written before `run()`. */
  open(call: ServerDuplexStream<Req, Res>, context: RpcContext): RpcStream;
  /** The registry that counts and ends this RPC's streams. */
  streams(context: RpcContext): StreamRegistry<RpcStream>;
}

/**
 * A client-streaming RPC: as {@link ServerStreamRpc}, with a call that reads requests and a
 * `respond` callback that sends the one response or the failure (the admission counts its status).
 */
export interface ClientStreamRpc<Req, Res> {
  readonly name: string;
  readonly kind: 'client-stream';
  /** The least role that may call the RPC; see {@link UnaryRpc.role}. */
  readonly role: Role;
  /** Whether a follower serves the RPC; see {@link UnaryRpc.onFollower}. */
  readonly onFollower: FollowerPolicy;
  /** Makes the session of an admitted call; the call is not read before `run()`. `respond` is called once. */
  open(call: ServerReadableStream<Req, Res>, respond: sendUnaryData<Res>, context: RpcContext): RpcStream;
  /** The registry that counts and ends this RPC's streams. */
  streams(context: RpcContext): StreamRegistry<RpcStream>;
}

/** Any entry of an RPC table, whatever its message types. */
export type RpcDescriptor = UnaryRpc<unknown, unknown> | ServerStreamRpc<unknown, unknown> | ClientStreamRpc<unknown, unknown> | BidiRpc<unknown, unknown>;

type RequestOf<Method> = Method extends { readonly requestDeserialize: (bytes: Buffer) => infer Req } ? Req : never;
type ResponseOf<Method> = Method extends { readonly responseSerialize: (value: infer Res) => Buffer } ? Res : never;

/**
 * The entry that a method of a grpc-js service definition needs: its kind follows the method's
 * `requestStream`/`responseStream`, its message types the method's codec.
 */
export type RpcFor<Method> = Method extends { readonly requestStream: false; readonly responseStream: false }
  ? UnaryRpc<RequestOf<Method>, ResponseOf<Method>>
  : Method extends { readonly requestStream: false; readonly responseStream: true }
    ? ServerStreamRpc<RequestOf<Method>, ResponseOf<Method>>
    : Method extends { readonly requestStream: true; readonly responseStream: true }
      ? BidiRpc<RequestOf<Method>, ResponseOf<Method>>
      : Method extends { readonly requestStream: true; readonly responseStream: false }
        ? ClientStreamRpc<RequestOf<Method>, ResponseOf<Method>>
        : never;

/**
 * The RPC table of a service: one entry for each method of its definition, under the method's
 * key, and no others. Declaring a table with `satisfies RpcTable<typeof definition>` makes a
 * method without an entry, or an entry of the wrong kind or message types, a compile error.
 */
export type RpcTable<Definition> = { readonly [Key in keyof Definition]: RpcFor<Definition[Key]> };
