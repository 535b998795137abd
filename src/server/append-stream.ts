import { performance } from 'node:perf_hooks';
import { status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { WalError } from '../errors.js';
import type { AppendRequest, AppendResponse, AppendStreamRequest, AppendStreamResponse } from '../gen/wald/v1/append.js';
import { Status as RpcStatus } from '../gen/google/rpc/status.js';
import type { AppendResult } from '../engine/types.js';
import type { StateKeeper } from '../state/state-keeper.js';
import { encodeAppendStreamResponse, type AppendStreamOutcome } from '../wire/append-stream-response-encoder.js';
import { parseAppendRequest } from './append-request.js';
import type { ReplicaAcks } from './followers/replica-acks.js';
import type { ServerMetrics } from './metrics/server-metrics.js';
import { invalidArgument } from './request-fields.js';
import { toRpcFailure, toRpcStatus, toServiceError } from './rpc-failure.js';
import type { RegisteredStream } from './stream-registry.js';

/**
 * The call: requests are decoded by `src/wire/append-stream-request-decoder.ts`, responses written
 * already encoded (`append-stream-response-encoder.ts`; see `wal-service-definition.ts`).
 */
type AppendCall = ServerDuplexStream<AppendStreamRequest, AppendStreamResponse | Buffer>;

/** Counters of one AppendStream, for stats and tests. */
export interface AppendStreamCounters {
  /** Appends read and answered so far (each element of a message's `appends` counts). */
  readonly answered: number;
  /** Appends read but not yet answered, now. */
  readonly inFlight: number;
  /**
   * The most appends ever unanswered at once: never above the session's limit plus the appends of
   * one message less one (the session stops reading once the limit is reached, and a message is read whole).
   */
  readonly maxInFlightSeen: number;
  /** Messages read and answered so far. */
  readonly answeredMessages: number;
}

/** The wire form of an acknowledged append. */
export function toAppendResponse(result: AppendResult): AppendResponse {
  return {
    firstOffset: BigInt(result.firstOffset),
    lastOffset: BigInt(result.lastOffset),
    timestamp: BigInt(result.timestamp),
    duplicate: result.duplicate,
  };
}

/**
 * One AppendStream call: pipelined appends, each handed to the log as soon as it arrives (so
 * they share group commits and are written in arrival order) and answered in arrival order. A
 * message carries one append (`append`) or several independent ones (`appends`, at most
 * `maxAppendsPerMessage`): those are handed to the log together, in order, each through
 * `StateKeeper.append` on its own, and answered together by one response with one result each.
 *
 * Memory is bounded: once `maxInFlight` appends are unanswered the session stops
 * reading (the call is paused, so HTTP/2 flow control pushes back on the client), and answers wait
 * for `'drain'` when the client does not read them.
 */
export class AppendStreamSession implements RegisteredStream {
  private inFlight = 0;
  private maxInFlightSeen = 0;
  private answeredCount = 0;
  private answeredMessages = 0;
  private answered: Promise<void> = Promise.resolve();
  private isPaused = false;
  private isCancelled = false;
  private isStopping = false;
  private hasEnded = false;
  private finished: Promise<void> | undefined;
  private resolveFinished: (() => void) | undefined;
  /** Aborts when the client cancels: appends waiting for their followers stop waiting. */
  private readonly cancelled = new AbortController();

  constructor(
    private readonly call: AppendCall,
    /** Appends each within the cap of the key-value view, as the Append RPC does. */
    private readonly state: StateKeeper,
    private readonly maxInFlight: number,
    /** Most elements of `appends` one message may carry. */
    private readonly maxAppendsPerMessage: number,
    private readonly logger: Logger,
    /** Where each append is counted and timed (as the Append RPC's); undefined when metrics are off. */
    private readonly metrics?: ServerMetrics | undefined,
    /**
     * The wait of appends with `min_replicas`, bounded by the stream's deadline or
     * `replication.min_replicas_timeout_ms`; undefined: `min_replicas` is refused (`INVALID_ARGUMENT`).
     */
    private readonly replicaAcks?: ReplicaAcks | undefined,
  ) {}

  /** A snapshot of the session's counters. */
  counters(): AppendStreamCounters {
    return {
      answered: this.answeredCount,
      inFlight: this.inFlight,
      maxInFlightSeen: this.maxInFlightSeen,
      answeredMessages: this.answeredMessages,
    };
  }

  /** Starts reading the call; resolves when the stream is over. Never rejects. */
  run(): Promise<void> {
    if (this.finished === undefined) {
      this.finished = new Promise<void>((resolve) => {
        this.resolveFinished = resolve;
      });
      this.call.on('data', (request: AppendStreamRequest) => this.accept(request));
      this.call.on('end', () => this.finish(undefined));
      this.call.on('cancelled', () => {
        this.isCancelled = true;
        this.cancelled.abort();
        this.finish(undefined);
      });
    }
    return this.finished;
  }

  /** Stops reading, answers the appends already read, then ends with `UNAVAILABLE` (`WAL_SHUTTING_DOWN`). */
  async shutdown(): Promise<void> {
    this.isStopping = true;
    this.call.pause();
    this.finish(new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down; appends not answered were not written', {}));
    await this.finished;
  }

  private accept(request: AppendStreamRequest): void {
    if (this.isStopping || this.isCancelled) {
      return;
    }
    const appendCount = Math.max(1, request.appends.length);
    this.inFlight += appendCount;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    if (this.inFlight >= this.maxInFlight && !this.isPaused) {
      this.isPaused = true;
      this.call.pause();
    }
    // Started now, in arrival order, so that the log receives the appends in the order sent.
    const outcome = request.appends.length === 0 ? this.appendOne(request) : this.appendMany(request);
    this.answered = this.answered
      .then(() => outcome)
      .then((response) => this.send(response))
      .then(() => {
        this.inFlight -= appendCount;
        this.answeredCount += appendCount;
        this.answeredMessages++;
        if (this.isPaused && this.inFlight < this.maxInFlight && !this.isStopping) {
          this.isPaused = false;
          this.call.resume();
        }
      });
  }

  private async appendOne(request: AppendStreamRequest): Promise<Buffer> {
    return encodeAppendStreamResponse(request.requestId, await this.appendRequest(request.append), []);
  }

  /** Hands every element of `appends` to the log now, in order, and answers them together. */
  private async appendMany(request: AppendStreamRequest): Promise<Buffer> {
    const refusal = this.refuseMany(request);
    if (refusal !== undefined) return encodeAppendStreamResponse(request.requestId, this.refusalOf(refusal), []);
    // Each started before the next, so the log receives them in message order (and one group
    // commit usually takes them all); each settles on its own.
    const outcomes = request.appends.map((append) => this.appendRequest(append));
    return encodeAppendStreamResponse(request.requestId, undefined, await Promise.all(outcomes));
  }

  /** A failure as the encoded `google.rpc.Status` an outcome carries (logged when unexpected). */
  private refusalOf(error: unknown): AppendStreamOutcome {
    const failure = toRpcFailure(error, this.logger, { rpc: 'AppendStream' });
    return { kind: 'error', status: RpcStatus.encode(toRpcStatus(failure)).finish() };
  }

  /** Why a message of several appends is refused whole, if it is. */
  private refuseMany(request: AppendStreamRequest): WalError | undefined {
    if (request.append !== undefined) {
      return invalidArgument('appends', 'a message carries either `append` or `appends`, not both');
    }
    if (request.appends.length > this.maxAppendsPerMessage) {
      return invalidArgument('appends', `${request.appends.length} appends in one message; at most ${this.maxAppendsPerMessage} (max_appends_per_message)`, {
        limit: this.maxAppendsPerMessage,
        count: request.appends.length,
      });
    }
    return undefined;
  }

  /** One append through `StateKeeper.append`: its result, or its failure as a status. Never rejects. */
  private async appendRequest(append: AppendRequest | undefined): Promise<AppendStreamOutcome> {
    const started = this.metrics === undefined ? 0 : performance.now();
    try {
      const { records, options, minReplicas } = parseAppendRequest(append);
      if (minReplicas > 0) this.checkMinReplicas(minReplicas);
      const result = await this.state.append(records, options);
      // Answers go in request order: a waiting append holds back the answers after it (not their writes).
      if (minReplicas > 0) await this.replicaAcks!.await(result, minReplicas, this.call.getDeadline(), this.cancelled.signal);
      this.metrics?.appendAnswered('AppendStream', records.length, Status.OK, performance.now() - started);
      return { kind: 'appended', result };
    } catch (error) {
      const failure = toRpcFailure(error, this.logger, { rpc: 'AppendStream' });
      this.metrics?.appendAnswered('AppendStream', append?.records.length ?? 0, failure.code, performance.now() - started);
      return { kind: 'error', status: RpcStatus.encode(toRpcStatus(failure)).finish() };
    }
  }

  private checkMinReplicas(minReplicas: number): void {
    if (this.replicaAcks === undefined) throw invalidArgument('min_replicas', 'not served on this stream');
    this.replicaAcks.check(minReplicas);
  }

  private async send(response: Buffer): Promise<void> {
    if (this.isCancelled) {
      return;
    }
    if (!this.call.write(response)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.call.off('drain', done);
          this.call.off('cancelled', done);
          resolve();
        };
        this.call.on('drain', done);
        this.call.on('cancelled', done);
      });
    }
  }

  /** Once every read append is answered, ends the call (OK, or `error`) and resolves {@link run}. */
  private finish(error: WalError | undefined): void {
    if (this.hasEnded) {
      return;
    }
    this.hasEnded = true;
    void this.answered.then(() => {
      if (!this.isCancelled) {
        if (error === undefined) {
          this.call.end();
        } else {
          this.call.emit('error', toServiceError(toRpcFailure(error, this.logger, { rpc: 'AppendStream' })));
        }
      }
      this.resolveFinished?.();
    });
  }
}
