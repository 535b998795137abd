import { performance } from 'node:perf_hooks';
import { status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { WalError } from '../errors.js';
import type { AppendResponse, AppendStreamRequest, AppendStreamResponse } from '../gen/wald/v1/append.js';
import type { AppendResult } from '../engine/types.js';
import type { StateKeeper } from '../state/state-keeper.js';
import { parseAppendRequest } from './append-request.js';
import type { ServerMetrics } from './metrics/server-metrics.js';
import { toRpcFailure, toRpcStatus, toServiceError } from './rpc-failure.js';
import type { RegisteredStream } from './stream-registry.js';

type AppendCall = ServerDuplexStream<AppendStreamRequest, AppendStreamResponse>;

/** Counters of one AppendStream, for stats and tests. */
export interface AppendStreamCounters {
  /** Appends read and answered so far. */
  readonly answered: number;
  /** Appends read but not yet answered, now. */
  readonly inFlight: number;
  /** The most appends ever unanswered at once (never above the session's limit). */
  readonly maxInFlightSeen: number;
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
 * they share group commits and are written in arrival order) and answered in arrival order.
 *
 * Memory is bounded: at most `maxInFlight` appends are unanswered; at that point the session stops
 * reading (the call is paused, so HTTP/2 flow control pushes back on the client), and answers wait
 * for `'drain'` when the client does not read them.
 */
export class AppendStreamSession implements RegisteredStream {
  private inFlight = 0;
  private maxInFlightSeen = 0;
  private answeredCount = 0;
  private answered: Promise<void> = Promise.resolve();
  private isPaused = false;
  private isCancelled = false;
  private isStopping = false;
  private hasEnded = false;
  private finished: Promise<void> | undefined;
  private resolveFinished: (() => void) | undefined;

  constructor(
    private readonly call: AppendCall,
    /** Appends each within the cap of the key-value view, as the Append RPC does. */
    private readonly state: StateKeeper,
    private readonly maxInFlight: number,
    private readonly logger: Logger,
    /** Where each append is counted and timed (as the Append RPC's); undefined when metrics are off. */
    private readonly metrics?: ServerMetrics | undefined,
  ) {}

  /** A snapshot of the session's counters. */
  counters(): AppendStreamCounters {
    return { answered: this.answeredCount, inFlight: this.inFlight, maxInFlightSeen: this.maxInFlightSeen };
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
    this.inFlight++;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    if (this.inFlight >= this.maxInFlight && !this.isPaused) {
      this.isPaused = true;
      this.call.pause();
    }
    // Started now, in arrival order, so that the log receives the appends in the order sent.
    const outcome = this.appendOne(request);
    this.answered = this.answered
      .then(() => outcome)
      .then((response) => this.send(response))
      .then(() => {
        this.inFlight--;
        this.answeredCount++;
        if (this.isPaused && this.inFlight < this.maxInFlight && !this.isStopping) {
          this.isPaused = false;
          this.call.resume();
        }
      });
  }

  private async appendOne(request: AppendStreamRequest): Promise<AppendStreamResponse> {
    const started = this.metrics === undefined ? 0 : performance.now();
    try {
      const { records, options } = parseAppendRequest(request.append);
      const result = await this.state.append(records, options);
      this.metrics?.appendAnswered('AppendStream', records.length, Status.OK, performance.now() - started);
      return { requestId: request.requestId, result: { $case: 'appended', value: toAppendResponse(result) } };
    } catch (error) {
      const failure = toRpcFailure(error, this.logger, { rpc: 'AppendStream' });
      this.metrics?.appendAnswered('AppendStream', request.append?.records.length ?? 0, failure.code, performance.now() - started);
      return { requestId: request.requestId, result: { $case: 'error', value: toRpcStatus(failure) } };
    }
  }

  private async send(response: AppendStreamResponse): Promise<void> {
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
