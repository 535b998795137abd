import { status as Status, type Client, type ClientDuplexStream, type Metadata } from '@grpc/grpc-js';
import type { AppendRecord } from '../codec/record.js';
import { WalServiceService } from '../gen/wald/v1/wal_service.js';
import { encodeAppendStreamRequest, type WireAppend } from '../wire/append-stream-request-encoder.js';
import { decodeAppendStreamResponse, type AppendOutcome, type AppendStreamAnswer } from '../wire/append-stream-response-decoder.js';
import { backoffDelayMs } from './backoff.js';
import { isServiceError } from './rpc-error-info.js';
import { ProducerLanes, type ProducerLane } from './producer-lanes.js';
import { isBrokenConnection, WalClientError } from './wal-client-error.js';
import type { ResolvedWalClientOptions } from './wal-client-options.js';

/** Where an acknowledged append landed. */
export interface AppendResult {
  /** Offset of the append's first record. */
  readonly firstOffset: number;
  /** Offset of its last record (equals `firstOffset` for one record). */
  readonly lastOffset: number;
  /** The timestamp every record of the append got: milliseconds since the Unix epoch. */
  readonly timestamp: number;
  /** True when a retry found the append already written: the offsets are the original ones. */
  readonly duplicate: boolean;
}

/** Options of one append. */
export interface AppendCallOptions {
  /** Force an fdatasync before the acknowledgement, whatever the server's sync policy. */
  readonly sync?: boolean | undefined;
  /** Write only if the first record gets exactly this offset (`WAL_OFFSET_MISMATCH` otherwise). */
  readonly expectedOffset?: number | undefined;
  /**
   * Fencing token: write only while the server's log is at this leader epoch (`WAL_EPOCH_MISMATCH`,
   * `FAILED_PRECONDITION`, otherwise; nothing is written). docs/replication.md.
   */
  readonly expectedEpoch?: number | undefined;
  /**
   * Acknowledge only once this many followers hold the append durably (0 or unset: on the leader's
   * own sync). Past `replication.min_replicas_timeout_ms` without them: `DEADLINE_EXCEEDED`,
   * `WAL_REPLICAS_TIMEOUT` (the records stay in the log). Answers keep their order, so a waiting
   * append holds back the answers of the appends sent after it (not their writes).
   */
  readonly minReplicas?: number | undefined;
}

/** Counters of the append pipeline, for tests and monitoring. */
export interface AppendPipelineCounters {
  /** Appends waiting to be sent, now. */
  readonly queuedAppends: number;
  /** AppendStream messages sent and not yet answered, now. */
  readonly inFlightMessages: number;
  /** The most messages ever unanswered at once: never above `maxInFlightMessages`. */
  readonly maxInFlightMessagesSeen: number;
  /** Messages sent so far (a retry counts again). */
  readonly sentMessages: number;
  /** Appends sent so far (a retry counts again). */
  readonly sentAppends: number;
  /** Appends sent again after a broken connection or a retryable failure. */
  readonly retriedAppends: number;
  /** AppendStreams opened so far (1 without failures). */
  readonly streamsOpened: number;
  /** Producer ids used for idempotent appends (see `ProducerLanes`). */
  readonly producerIds: number;
}

interface PendingAppend {
  readonly records: readonly AppendRecord[];
  readonly recordBytes: number;
  readonly expectedOffset: number | undefined;
  readonly expectedEpoch: number | undefined;
  readonly minReplicas: number;
  readonly sync: boolean;
  readonly deadline: number;
  lane: ProducerLane | undefined;
  sequence: number;
  wasSent: boolean;
  lastFailure: WalClientError | undefined;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: WalClientError) => void;
}

interface InFlightMessage {
  readonly appends: readonly PendingAppend[];
  /** The encoded message's size, bytes. */
  readonly bytes: number;
}

type AppendCall = ClientDuplexStream<Buffer, AppendStreamAnswer>;

const APPEND_STREAM_PATH = WalServiceService.appendStream.path;

function recordBytesOf(record: AppendRecord): number {
  let bytes = record.value.length + (record.key?.length ?? 0) + 8;
  if (record.headers !== undefined) {
    for (const name in record.headers) bytes += name.length + record.headers[name]!.length + 4;
  }
  return bytes;
}

function checkRecords(records: readonly AppendRecord[]): number {
  if (!Array.isArray(records)) throw new TypeError('records must be an array of records');
  let bytes = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    if (record === null || typeof record !== 'object' || !(record.value instanceof Uint8Array)) {
      throw new TypeError(`records[${i}].value must be a Uint8Array`);
    }
    if (record.key !== undefined && !(record.key instanceof Uint8Array)) throw new TypeError(`records[${i}].key must be a Uint8Array`);
    bytes += recordBytesOf(record);
  }
  return bytes;
}

function checkOffset(value: number | undefined, name: string): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${String(value)}`);
  }
}

/**
 * The server's limit on a request message, bytes, when `failure` is its refusal of one as too large
 * (`WAL_MESSAGE_TOO_LARGE` with metadata `limit`, src/server/grpc-js-refusals.ts).
 */
function messageLimitOf(failure: WalClientError): number | undefined {
  if (failure.reason !== 'WAL_MESSAGE_TOO_LARGE') return undefined;
  const limit = Number(failure.metadata['limit']);
  return Number.isSafeInteger(limit) && limit > 0 ? limit : undefined;
}

/** `min_replicas` is a uint32 on the wire. */
const MAX_MIN_REPLICAS = 2 ** 32 - 1;

function checkMinReplicas(value: number | undefined): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > MAX_MIN_REPLICAS)) {
    throw new RangeError(`minReplicas must be an integer from 0 to ${MAX_MIN_REPLICAS}, got ${String(value)}`);
  }
}

/**
 * The appends of a `WalClient`, carried over one AppendStream: appends that accumulate are sent
 * together in one message (`AppendStreamRequest.appends`), each still atomic on its own and answered
 * with its own result.
 *
 * When a message goes out: once nothing is being written, after `lingerMs` (0: at the end of the
 * event-loop turn, so whatever the callers appended in that turn), or at once when the queue holds
 * a full message; while a message is being written, appends accumulate and go out as soon as it
 * is on the wire. A message holds at most `maxAppendsPerMessage` appends, `maxBatchRecords` records
 * and `maxBatchBytes` record bytes (an append larger than the latter two goes alone). At most
 * `maxInFlightMessages` messages are unanswered; beyond, appends wait in the queue, and beyond
 * `maxQueuedAppends` queued, `append` itself waits for room: the client's memory is bounded by those.
 *
 * Failures: an append refused by the server rejects with its own {@link WalClientError} and leaves
 * the others of its message alone. When the stream breaks (`UNAVAILABLE`: a restart, a dropped
 * connection), the unanswered appends are sent again on a new stream, in their order, after a
 * backoff, until their `retryDeadlineMs` passes; with idempotence (the default) each carries its
 * producer id and sequence (see {@link ProducerLanes}), so one that was written is acknowledged as
 * a duplicate with its original offsets, never written twice.
 *
 * Order: appends are sent, and so written, in call order; an append retried after failing on its
 * own can land after appends made after it.
 */
export class AppendPipeline {
  private queue: PendingAppend[] = [];
  private queuedRecords = 0;
  private queuedBytes = 0;
  private inFlight: InFlightMessage[] = [];
  private stream: AppendCall | undefined;
  private isOpening = false;
  private isWriting = false;
  private flushTimer: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private failedAttempts = 0;
  private nextRequestId = 1;
  private unsettled = 0;
  private roomWaiters: (() => void)[] = [];
  private settledWaiters: (() => void)[] = [];
  private isClosed = false;
  private readonly lanes = new ProducerLanes();
  private maxInFlightMessagesSeen = 0;
  private sentMessages = 0;
  private sentAppends = 0;
  private retriedAppends = 0;
  private streamsOpened = 0;
  /** The largest message the server takes and its refusal, once a refusal said so (`WAL_MESSAGE_TOO_LARGE`). */
  private messageLimit: { readonly bytes: number; readonly error: WalClientError } | undefined;

  constructor(
    private readonly client: Client,
    private readonly options: ResolvedWalClientOptions,
    /** The metadata of a new stream (asked for at each reconnect). */
    private readonly metadata: () => Promise<Metadata>,
  ) {}

  /** A snapshot of the counters. */
  counters(): AppendPipelineCounters {
    return {
      queuedAppends: this.queue.length,
      inFlightMessages: this.inFlight.length,
      maxInFlightMessagesSeen: this.maxInFlightMessagesSeen,
      sentMessages: this.sentMessages,
      sentAppends: this.sentAppends,
      retriedAppends: this.retriedAppends,
      streamsOpened: this.streamsOpened,
      producerIds: this.lanes.size,
    };
  }

  /**
   * Appends `records` atomically; resolves with where they landed.
   *
   * @throws TypeError for records that are not records; RangeError for an `expectedOffset` or
   *   `expectedEpoch` that is not a non-negative safe integer, or a `minReplicas` that is not a
   *   uint32. Rejects with {@link WalClientError}.
   */
  async append(records: readonly AppendRecord[], options: AppendCallOptions = {}): Promise<AppendResult> {
    const recordBytes = checkRecords(records);
    checkOffset(options.expectedOffset, 'expectedOffset');
    checkOffset(options.expectedEpoch, 'expectedEpoch');
    checkMinReplicas(options.minReplicas);
    const deadline = Date.now() + this.options.retryDeadlineMs;
    // Bounded: each wake-up follows a message that took appends off the queue.
    while (this.queue.length >= this.options.maxQueuedAppends && !this.isClosed) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.isClosed) throw new WalClientError(Status.CANCELLED, 'the client is closed');
    return new Promise<AppendResult>((resolve, reject) => {
      this.unsettled++;
      this.queue.push({
        records,
        recordBytes,
        expectedOffset: options.expectedOffset,
        expectedEpoch: options.expectedEpoch,
        minReplicas: options.minReplicas ?? 0,
        sync: options.sync === true,
        deadline,
        lane: undefined,
        sequence: 0,
        wasSent: false,
        lastFailure: undefined,
        resolve,
        reject,
      });
      this.queuedRecords += records.length;
      this.queuedBytes += recordBytes;
      this.schedule();
    });
  }

  /** Stops taking appends, waits until every append made settled, then ends the stream. */
  async close(): Promise<void> {
    this.isClosed = true;
    for (const wake of this.roomWaiters.splice(0)) wake();
    if (this.unsettled > 0) await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
    clearTimeout(this.reconnectTimer);
    this.stream?.end();
    this.stream = undefined;
  }

  private isQueueFull(): boolean {
    return (
      this.queue.length >= this.options.maxAppendsPerMessage ||
      this.queuedRecords >= this.options.maxBatchRecords ||
      this.queuedBytes >= this.options.maxBatchBytes
    );
  }

  private schedule(): void {
    if (this.isWriting) return; // the write's callback sends what accumulated
    if (this.isQueueFull()) {
      this.cancelFlushTimer();
      this.pump();
      return;
    }
    if (this.flushTimer !== undefined) return;
    const flush = (): void => {
      this.flushTimer = undefined;
      this.pump();
    };
    this.flushTimer = this.options.lingerMs === 0 ? setImmediate(flush) : setTimeout(flush, this.options.lingerMs);
  }

  private cancelFlushTimer(): void {
    if (this.flushTimer === undefined) return;
    clearImmediate(this.flushTimer as NodeJS.Immediate);
    clearTimeout(this.flushTimer as NodeJS.Timeout);
    this.flushTimer = undefined;
  }

  /** Sends the next message if the queue, the window of in-flight messages and the stream allow. */
  private pump(): void {
    this.expireQueued();
    if (this.queue.length === 0 || this.isWriting || this.inFlight.length >= this.options.maxInFlightMessages) return;
    if (this.stream === undefined) {
      this.open();
      return;
    }
    const next = this.nextMessage();
    if (next !== undefined) this.send(this.stream, next.appends, next.message);
  }

  /**
   * The next message off the queue, encoded. Once the server has said how large a message it takes
   * (its refusal of one, `WAL_MESSAGE_TOO_LARGE`), a message over that is split, its second half
   * going back to the queue, and an append that alone is over it is refused here with the server's
   * error rather than sent to break the stream again. Undefined when nothing is left to send.
   */
  private nextMessage(): { appends: PendingAppend[]; message: Buffer } | undefined {
    const limit = this.messageLimit;
    // Bounded: each turn either returns or refuses (and so removes) one append of the queue.
    while (this.queue.length > 0) {
      const appends = this.takeMessage();
      let message = this.encode(appends);
      while (limit !== undefined && message.length > limit.bytes && appends.length > 1) {
        this.requeue(appends.splice(Math.ceil(appends.length / 2)));
        message = this.encode(appends);
      }
      if (limit === undefined || message.length <= limit.bytes) return { appends, message };
      this.finish(appends[0]!, new WalClientError(limit.error.code, `${limit.error.message} (this append alone encodes to ${message.length} bytes)`, { reason: limit.error.reason, metadata: limit.error.metadata, cause: limit.error }));
    }
    return undefined;
  }

  private takeMessage(): PendingAppend[] {
    const { maxAppendsPerMessage, maxBatchRecords, maxBatchBytes } = this.options;
    let count = 0;
    let records = 0;
    let bytes = 0;
    while (count < this.queue.length && count < maxAppendsPerMessage) {
      const next = this.queue[count]!;
      if (count > 0 && (records + next.records.length > maxBatchRecords || bytes + next.recordBytes > maxBatchBytes)) break;
      records += next.records.length;
      bytes += next.recordBytes;
      count++;
    }
    const taken = this.queue.splice(0, count);
    this.queuedRecords -= records;
    this.queuedBytes -= bytes;
    for (const wake of this.roomWaiters.splice(0)) wake();
    return taken;
  }

  /** `appends` as one AppendStream message; an idempotent append gets its lane and sequence here, once. */
  private encode(appends: readonly PendingAppend[]): Buffer {
    const wire: WireAppend[] = appends.map((pending) => {
      if (this.options.idempotent && pending.lane === undefined) {
        pending.lane = this.lanes.acquire();
        pending.sequence = pending.lane.nextSequence++;
      }
      return {
        records: pending.records,
        expectedOffset: pending.expectedOffset,
        expectedEpoch: pending.expectedEpoch,
        minReplicas: pending.minReplicas,
        sync: pending.sync,
        producerId: pending.lane?.producerId,
        sequence: pending.lane === undefined ? undefined : pending.sequence,
      };
    });
    return encodeAppendStreamRequest(this.nextRequestId++, wire);
  }

  private send(stream: AppendCall, appends: readonly PendingAppend[], message: Buffer): void {
    for (const pending of appends) {
      if (pending.wasSent) this.retriedAppends++;
      pending.wasSent = true;
    }
    this.inFlight.push({ appends, bytes: message.length });
    this.maxInFlightMessagesSeen = Math.max(this.maxInFlightMessagesSeen, this.inFlight.length);
    this.sentMessages++;
    this.sentAppends += appends.length;
    this.isWriting = true;
    stream.write(message, () => {
      if (this.stream !== stream) return;
      this.isWriting = false;
      this.pump();
    });
  }

  private open(): void {
    if (this.isOpening || this.reconnectTimer !== undefined) return;
    this.isOpening = true;
    this.metadata().then(
      (metadata) => {
        this.isOpening = false;
        const stream: AppendCall = this.client.makeBidiStreamRequest(APPEND_STREAM_PATH, (message: Buffer) => message, decodeAppendStreamResponse, metadata);
        this.stream = stream;
        this.streamsOpened++;
        stream.on('data', (answer: AppendStreamAnswer) => this.onAnswer(stream, answer));
        stream.on('error', (error: unknown) => this.onStreamEnd(stream, error));
        stream.on('end', () => this.onStreamEnd(stream, undefined));
        this.pump();
      },
      (error: unknown) => {
        this.isOpening = false;
        // Appends sent on a stream that broke are back in the queue: written, perhaps.
        const sent = this.queue.filter((pending) => pending.wasSent);
        this.queue = this.queue.filter((pending) => !pending.wasSent);
        const failure = error instanceof WalClientError ? error : new WalClientError(Status.UNAUTHENTICATED, 'the metadata provider of the WalClient failed', { cause: error });
        this.failEverything(failure, sent);
      },
    );
  }

  private onAnswer(stream: AppendCall, answer: AppendStreamAnswer): void {
    if (this.stream !== stream) return;
    const message = this.inFlight.shift();
    if (message === undefined) {
      this.onStreamEnd(stream, new WalClientError(Status.INTERNAL, 'the server answered an AppendStream message that was not sent'));
      return;
    }
    this.failedAttempts = 0;
    const { appends } = message;
    const retries: PendingAppend[] = [];
    if (answer.results.length === appends.length) {
      for (let i = 0; i < appends.length; i++) this.settle(appends[i]!, answer.results[i]!, retries);
    } else if (answer.result !== undefined && answer.results.length === 0) {
      // The whole message was refused (or, from a server that predates `appends`, misread).
      for (const pending of appends) this.settle(pending, answer.result, retries);
    } else {
      const error = new WalClientError(Status.INTERNAL, `the server answered ${answer.results.length} results for ${appends.length} appends`);
      for (const pending of appends) this.finish(pending, error);
    }
    this.requeue(retries);
    this.pump();
  }

  private settle(pending: PendingAppend, outcome: AppendOutcome, retries: PendingAppend[]): void {
    if (outcome.kind === 'appended') {
      this.finish(pending, undefined, outcome);
      return;
    }
    const error = WalClientError.fromStatusBytes(outcome.status);
    // A shutting-down server answers what it had read with this; everything else is final.
    if (error.reason === 'WAL_SHUTTING_DOWN' && this.canRetry(pending)) {
      pending.lastFailure = error;
      retries.push(pending);
    } else {
      this.finish(pending, error);
    }
  }

  private canRetry(pending: PendingAppend): boolean {
    return (this.options.idempotent || !pending.wasSent) && Date.now() < pending.deadline;
  }

  /** Puts `retries` back at the front of the queue, in their order. */
  private requeue(retries: readonly PendingAppend[]): void {
    if (retries.length === 0) return;
    this.queue.unshift(...retries);
    for (const pending of retries) {
      this.queuedRecords += pending.records.length;
      this.queuedBytes += pending.recordBytes;
    }
  }

  private onStreamEnd(stream: AppendCall, error: unknown): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.isWriting = false;
    stream.removeAllListeners('data');
    if (error === undefined) stream.cancel();
    const failure =
      error instanceof WalClientError
        ? error
        : isServiceError(error)
          ? WalClientError.fromServiceError(error)
          : new WalClientError(Status.UNAVAILABLE, 'the server ended the AppendStream with appends unanswered');
    const messages = this.inFlight;
    this.inFlight = [];
    let unanswered = messages.flatMap((message) => message.appends);
    const limitBytes = messageLimitOf(failure);
    if (limitBytes !== undefined) {
      // The server refused one message as too large, and with it the stream. That message's append
      // is the one refused; the others were sent in messages it took (written, perhaps, but not
      // answered) or never read: they are retried, as after a broken connection. Later messages
      // are kept under the limit (see nextMessage).
      this.messageLimit = { bytes: limitBytes, error: failure };
      unanswered = [];
      for (const message of messages) {
        if (message.bytes > limitBytes && message.appends.length === 1) this.finish(message.appends[0]!, failure);
        else unanswered.push(...message.appends);
      }
    } else if (!isBrokenConnection(failure)) {
      this.failEverything(failure, unanswered);
      return;
    }
    const retries: PendingAppend[] = [];
    for (const pending of unanswered) {
      pending.lastFailure = failure;
      if (this.canRetry(pending)) retries.push(pending);
      else if (!this.options.idempotent) {
        this.finish(pending, new WalClientError(Status.UNAVAILABLE, 'the connection broke before the append was answered: it may or may not be written', { cause: failure }));
      } else this.finish(pending, this.deadlineError(pending));
    }
    this.requeue(retries);
    if (this.queue.length > 0) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined) return;
    const delay = backoffDelayMs(this.failedAttempts++, this.options.initialBackoffMs, this.options.maxBackoffMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.pump();
    }, delay);
  }

  private deadlineError(pending: PendingAppend): WalClientError {
    return new WalClientError(Status.DEADLINE_EXCEEDED, `the append was not acknowledged within retryDeadlineMs (${this.options.retryDeadlineMs} ms)`, {
      cause: pending.lastFailure,
    });
  }

  /** Rejects the queued appends whose retry deadline passed (only retried appends wait that long). */
  private expireQueued(): void {
    if (this.queue.length === 0 || this.queue[0]!.lastFailure === undefined) return;
    const now = Date.now();
    const kept: PendingAppend[] = [];
    for (const pending of this.queue) {
      if (pending.lastFailure !== undefined && now >= pending.deadline) {
        this.queuedRecords -= pending.records.length;
        this.queuedBytes -= pending.recordBytes;
        this.finish(pending, this.deadlineError(pending));
      } else kept.push(pending);
    }
    // Room was made: callers waiting for it would otherwise wait until the next message or close.
    if (kept.length < this.queue.length) for (const wake of this.roomWaiters.splice(0)) wake();
    this.queue = kept;
  }

  /**
   * Rejects every append with `error`: those sent and unanswered (`unanswered`) with its code and
   * reason but a message saying that they may or may not be written (the stream failed, not
   * they), those never sent with `error` itself.
   */
  private failEverything(error: WalClientError, unanswered: readonly PendingAppend[] = []): void {
    const queued = this.queue;
    this.queue = [];
    this.queuedRecords = 0;
    this.queuedBytes = 0;
    if (unanswered.length > 0) {
      const unknown = new WalClientError(error.code, `the AppendStream failed before the append was answered: it may or may not be written (${error.message})`, {
        reason: error.reason,
        metadata: error.metadata,
        cause: error,
      });
      for (const pending of unanswered) this.finish(pending, unknown);
    }
    for (const pending of queued) this.finish(pending, error);
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private finish(pending: PendingAppend, error: WalClientError | undefined, ack?: AppendOutcome): void {
    if (pending.lane !== undefined) {
      this.lanes.release(pending.lane);
      pending.lane = undefined;
    }
    if (error !== undefined) pending.reject(error);
    else if (ack?.kind === 'appended') {
      pending.resolve({ firstOffset: ack.firstOffset, lastOffset: ack.lastOffset, timestamp: ack.timestamp, duplicate: ack.duplicate });
    }
    this.unsettled--;
    if (this.unsettled === 0) for (const wake of this.settledWaiters.splice(0)) wake();
  }
}
