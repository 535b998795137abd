import { performance } from 'node:perf_hooks';
import {
  status as Status,
  type Deadline,
  type Metadata,
  type handleBidiStreamingCall,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type sendUnaryData,
  type handleUnaryCall,
  type ServerDuplexStream,
  type ServerErrorResponse,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import { WalError } from '../../errors.js';
import type { TokenAuthenticator } from '../auth/token-authenticator.js';
import { toRpcFailure, toServiceError } from '../rpc-failure.js';
import type { RpcContext } from './rpc-context.js';
import type { BidiRpc, ClientStreamRpc, RpcDescriptor, RpcStream, ServerStreamRpc, UnaryCallInfo, UnaryRpc } from './rpc-descriptor.js';

/** What the admission asks of the server, besides the call itself. */
export interface AdmissionState {
  /** True once the server has begun to stop: new calls get `UNAVAILABLE` (`WAL_SHUTTING_DOWN`). */
  readonly isStopping: () => boolean;
  /**
   * The bearer-token check of every call against the RPC's role (the server runs with an
   * `auth_file`); undefined: no token is asked for.
   */
  readonly authenticator?: TokenAuthenticator | undefined;
}

/** What the admission reads of a call: its metadata (the token) and its peer (for log lines). */
interface AdmittedCall {
  readonly metadata: Metadata;
  getPeer(): string;
}

/**
 * The one admission point of `wald.v1.WalService`: it turns each entry of the RPC table into the
 * grpc-js handler of that method, so that every call of every RPC passes {@link admit} before its
 * handler runs, streams are registered (counted against their limit, ended at shutdown) and
 * forgotten in one place, and every failure, refusals included, is sent through `rpc-failure.ts`.
 * Handlers only validate, translate and delegate.
 *
 * Why a wrapper made from the table, not a grpc-js server interceptor (the `interceptors` option
 * of `new Server`, grpc-js >= 1.10):
 * - A stream is registered with the session its handler made; an interceptor runs before any
 *   handler, so the admission would be split between an interceptor and the handlers.
 * - The wrapper holds the table entry (name, kind, later the role) and can hand what it learnt
 *   (the caller's identity) to the handler; an interceptor sees a path string and could pass
 *   things on only by rewriting metadata.
 * - Interceptors see every service of the server: health (which must answer `NOT_SERVING` while
 *   the server stops, not be refused) and reflection would have to be skipped by path.
 * - grpc-js calls unary and server-streaming handlers once the whole request has arrived, an
 *   interceptor when the headers have: the wrapper refuses a call whose request was still on its
 *   way when `stop()` began (as the handlers did before), an interceptor would let it run.
 * - It costs nothing per message: an interceptor's `ServerInterceptingCall` stands in front of
 *   every TailWal write (the pre-encoded Buffers of `wal-service-definition.ts` would pass through
 *   it; the wrapper never sees them).
 * Neither sees the statuses grpc-js sends on its own (an undecodable or oversized request, an
 * expired deadline): grpc-js sends those past the interceptor chain; the oversized one gets its
 * ErrorInfo from `grpc-js-refusals.ts`, which reaches grpc-js's innermost call.
 *
 * The bearer token and the role of the table entry are checked in {@link admit}
 * (`UNAUTHENTICATED`, `PERMISSION_DENIED`), so no RPC can be reached without them.
 *
 * Metrics per RPC and outcome (`wald_rpcs_total`, and `wald_rpc_duration_seconds` of unary calls)
 * are counted here, refusals included: where a unary call's response or failure is sent, and where
 * a stream's `run()` settles, with the status the stream was ended with (see {@link streamOutcome}).
 *
 * A follower refuses the RPCs that would write to its log in {@link admit} too (`WAL_NOT_LEADER`),
 * by the table's `onFollower` column.
 */
export class RpcAdmission {
  constructor(
    private readonly context: RpcContext,
    private readonly state: AdmissionState,
  ) {}

  /** The grpc-js handler of `rpc`: admission, then the entry's handler, then the status. */
  bind(rpc: RpcDescriptor): UntypedHandleCall {
    switch (rpc.kind) {
      case 'unary':
        return this.bindUnary(rpc);
      case 'server-stream':
        return this.bindServerStream(rpc);
      case 'client-stream':
        return this.bindClientStream(rpc);
      case 'bidi':
        return this.bindBidi(rpc);
    }
  }

  /**
   * The checks every call passes before its handler runs.
   *
   * @throws WalError `WAL_SHUTTING_DOWN` once the server has begun to stop; with an authenticator,
   *   `WAL_UNAUTHENTICATED` / `WAL_PERMISSION_DENIED` (see `TokenAuthenticator.admit`); on a
   *   follower, `WAL_NOT_LEADER` for an RPC the table marks `onFollower: 'refuse'` (checked after
   *   the token, so that only callers allowed to write learn the leader's address).
   */
  private admit(rpc: RpcDescriptor, call: AdmittedCall, role = rpc.role): void {
    if (this.state.isStopping()) {
      throw new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down', {});
    }
    this.state.authenticator?.admit({ name: rpc.name, role }, call.metadata, () => call.getPeer());
    if (rpc.onFollower === 'refuse') {
      this.context.replication.assertLeader(rpc.name);
    }
  }

  private bindUnary(rpc: UnaryRpc<unknown, unknown>): handleUnaryCall<unknown, unknown> {
    const serve = async (call: ServerUnaryCall<unknown, unknown>): Promise<unknown> => {
      this.admit(rpc, call, rpc.roleOf?.(call.request));
      return rpc.handle(call.request, this.context, new UnaryCallView(call));
    };
    const { metrics } = this.context;
    return (call, callback) => {
      const started = metrics === undefined ? 0 : performance.now();
      serve(call).then(
        (response) => {
          callback(null, response);
          metrics?.rpcFinished(rpc.name, Status.OK, performance.now() - started);
        },
        (error: unknown) => {
          const failure = this.failure(rpc, error);
          callback(failure);
          metrics?.rpcFinished(rpc.name, failure.code ?? Status.UNKNOWN, performance.now() - started);
        },
      );
    };
  }

  private bindServerStream(rpc: ServerStreamRpc<unknown, unknown>): handleServerStreamingCall<unknown, unknown> {
    return (call) => this.serveStream(rpc, call, () => rpc.open(call, this.context));
  }

  private bindBidi(rpc: BidiRpc<unknown, unknown>): handleBidiStreamingCall<unknown, unknown> {
    return (call) => this.serveStream(rpc, call, () => rpc.open(call, this.context));
  }

  /** A client stream's status is what its session passed to `respond` (the one answer it sends), else `CANCELLED`. */
  private bindClientStream(rpc: ClientStreamRpc<unknown, unknown>): handleClientStreamingCall<unknown, unknown> {
    return (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      let answered: Status | undefined;
      const respond: sendUnaryData<unknown> = (error, value) => {
        if (answered !== undefined) return;
        answered = error === null ? Status.OK : (error.code ?? Status.UNKNOWN);
        callback(error, value);
      };
      this.serveStream(rpc, call, () => rpc.open(call, respond, this.context), {
        refuse: (failure) => respond(failure),
        outcome: () => () => answered ?? Status.CANCELLED,
      });
    };
  }

  /** Admits a streaming call, registers the session `open` makes for it, and runs it to its end. */
  private serveStream(
    rpc: ServerStreamRpc<unknown, unknown> | ClientStreamRpc<unknown, unknown> | BidiRpc<unknown, unknown>,
    call: ServerWritableStream<unknown, unknown> | ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
    open: () => RpcStream,
    ending: {
      readonly refuse: (failure: ServerErrorResponse) => void;
      readonly outcome: () => () => Status;
    } = { refuse: (failure) => call.emit('error', failure), outcome: () => streamOutcome(call as ServerWritableStream<unknown, unknown>) },
  ): void {
    const registry = rpc.streams(this.context);
    const { logger, metrics } = this.context;
    let stream: RpcStream;
    try {
      // A server stream's one request is read before the call is admitted (TailWal's role depends on it).
      this.admit(rpc, call, rpc.kind === 'server-stream' ? rpc.roleOf?.((call as ServerWritableStream<unknown, unknown>).request) : undefined);
      stream = open();
      registry.add(stream);
    } catch (error) {
      const failure = this.failure(rpc, error);
      ending.refuse(failure);
      metrics?.rpcFinished(rpc.name, failure.code ?? Status.UNKNOWN);
      return;
    }
    const outcome = metrics === undefined ? undefined : ending.outcome();
    logger.debug({ rpc: rpc.name, peer: call.getPeer() }, 'stream opened');
    void stream.run().finally(() => {
      registry.delete(stream);
      if (outcome !== undefined) metrics?.rpcFinished(rpc.name, outcome());
      logger.debug({ rpc: rpc.name, peer: call.getPeer(), ...stream.counters() }, 'stream closed');
    });
  }

  private failure(rpc: RpcDescriptor, error: unknown): ServerErrorResponse {
    return toServiceError(toRpcFailure(error, this.context.logger, { rpc: rpc.name }));
  }
}

/**
 * A unary call as its handler sees it ({@link UnaryCallInfo}). The abort signal is made only when
 * a handler asks for it (Append with min_replicas waits on it): most calls never do, and an
 * AbortController and a listener per call would cost every Append.
 */
class UnaryCallView implements UnaryCallInfo {
  private controller: AbortController | undefined;

  constructor(private readonly call: ServerUnaryCall<unknown, unknown>) {}

  get deadline(): Deadline {
    return this.call.getDeadline();
  }

  get peer(): string {
    return this.call.getPeer();
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      const controller = new AbortController();
      this.controller = controller;
      if (this.call.cancelled) controller.abort();
      else this.call.once('cancelled', () => controller.abort());
    }
    return this.controller.signal;
  }
}

/**
 * The status a streaming call ends with, once its session's `run()` has settled: the code of the
 * failure the session emitted (`'error'` is how a grpc-js server stream is given its status), else
 * `OK` when the session ended the call, else `CANCELLED` (the client went away first).
 */
function streamOutcome(call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>): () => Status {
  let failed: Status | undefined;
  call.on('error', (error: Partial<ServerErrorResponse>) => {
    failed ??= error.code ?? Status.UNKNOWN;
  });
  return () => failed ?? (call.writableEnded ? Status.OK : Status.CANCELLED);
}
