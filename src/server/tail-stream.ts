import { EventEmitter } from 'node:events';
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Wal } from '../engine/wal.js';
import type { TailAdmission, TailRecordsEvent, WalRecord } from '../engine/types.js';
import { WalError } from '../errors.js';
import type { TailWalRequest, TailWalResponse } from '../gen/wald/v1/tail.js';
import { encodeTailWalResponse, TAIL_RESPONSE_POSITION_BYTES } from '../wire/tail-response-encoder.js';
import { invalidArgument, safeIntegerField } from './request-fields.js';
import { toRpcFailure, toServiceError } from './rpc-failure.js';
import type { RegisteredStream } from './stream-registry.js';
import type { TailQueueBudget, TailQueueGrant } from './tail-queue-budget.js';

/** The bounds of one tail, resolved from the request and the server's limits. */
export interface TailSettings {
  /** Period of heartbeats while no record arrives, ms. */
  readonly heartbeatIntervalMs: number;
  /** Most records per message. */
  readonly maxRecords: number;
  /** Most record bytes per message, by `recordSizeBytes` (one larger record still goes out alone). */
  readonly maxBytes: number;
  /** Most message bytes written to the call but not yet taken by the transport. */
  readonly maxQueueBytes: number;
}

/** Counters of one tail, for stats and tests. */
export interface TailCounters {
  /** Messages written to the call (batches and heartbeats). */
  readonly messagesSent: number;
  /** Heartbeats among them. */
  readonly heartbeatsSent: number;
  /** Records sent. */
  readonly recordsSent: number;
  /** Messages written but not yet taken by the transport, now. */
  readonly queuedMessages: number;
  /** The most messages ever queued at once. */
  readonly maxQueuedMessages: number;
  /** Bytes of record messages written but not yet taken by the transport, now (heartbeats weigh 0). */
  readonly queuedBytes: number;
  /** The most such bytes ever queued at once. */
  readonly maxQueuedBytes: number;
  /** The call's own buffer limit, in messages (`write()` returns false at it). */
  readonly queueLimitMessages: number;
  /** True while the tail waits for the client to take queued messages. */
  readonly isWaitingForClient: boolean;
  /** True while the tail waits for the server-wide budget before reading the log. */
  readonly isWaitingForBudget: boolean;
  /** Bytes this tail holds of the server-wide budget, now (queued messages and a read in progress). */
  readonly budgetBytes: number;
}

/** Events of a {@link TailStream}. */
export interface TailStreamEvents {
  /** The stream stopped writing until the client takes what is queued (flow control). */
  blocked: [];
  /** The stream stopped reading the log until other tails give back server-wide budget. */
  throttled: [];
  /** A message (batch or heartbeat) was written: its record count and next offset. */
  message: [recordCount: number, nextOffset: number];
  /** The stream's work is over (its status is sent or the call is gone). */
  done: [];
}

/** The call: responses are written already encoded (see `tailWalServiceDefinition`). */
type TailCall = ServerWritableStream<TailWalRequest, TailWalResponse | Buffer>;

const HEARTBEAT = Symbol('heartbeat');

/** A read's reservation of the budget, lent to the engine's tail; given back through the stream. */
interface BudgetAdmission extends TailAdmission {
  readonly grant: TailQueueGrant;
}

/** The failure a tail ends with when the server stops: retry from `next_offset`. */
export function shuttingDown(): WalError {
  return new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down; resume from next_offset', {});
}
type AbortReason = 'cancelled' | 'shutdown';

/**
 * One TailWal call: resolves its start, then turns the engine's tail (`Wal.openTail`: catch up,
 * follow live, idle signals) into messages, heartbeats from the idle signals, and ends with a typed
 * status.
 *
 * Memory stays bounded however slow the client: the engine's tail reads the next batch only when
 * this stream pulls it, and the stream pulls only when the call has room, which it has while
 * `write()` returned true (the call buffers at most its high-water mark of messages) and fewer than
 * `maxQueueBytes` message bytes await the transport. So one tail holds at most `maxQueueBytes` plus
 * one message.
 *
 * All tails together are bounded by the server's {@link TailQueueBudget}, through the tail's
 * `admit` hook: before each read the tail reserves a full message (`maxBytes` plus the response's
 * own fields) and waits in line while the budget is spent; once the message is encoded the
 * reservation shrinks to its size (never more: `recordSizeBytes` bounds the encoding), and that is
 * given back when the transport takes the message or when the call ends, whichever comes first
 * (exactly once). `FrameTailStream` (frames mode, for followers) is this stream with another
 * reading loop: the flow control, the budget and the heartbeats are these. A record larger than `maxBytes` is read again by the engine under a reservation of
 * its own size, so nothing waits in line while holding records the budget does not count.
 */
export class TailStream extends EventEmitter<TailStreamEvents> implements RegisteredStream {
  protected readonly abort = new AbortController();
  private abortReason: AbortReason | undefined;
  private wake: (() => void) | undefined;
  private finished: Promise<void> | undefined;
  private messagesSent = 0;
  private heartbeatsSent = 0;
  private recordsSent = 0;
  private queuedMessages = 0;
  private maxQueuedMessages = 0;
  private queuedBytes = 0;
  private maxQueuedBytes = 0;
  private isWaitingForClient = false;
  private isWaitingForBudget = false;
  /** Budget held: by messages the transport has not taken, and by the read in progress. */
  private readonly grants = new Set<TailQueueGrant>();
  private readonly callOver: Promise<void>;

  constructor(
    protected readonly call: TailCall,
    protected readonly wal: Wal,
    readonly settings: TailSettings,
    private readonly budget: TailQueueBudget,
    protected readonly logger: Logger,
    /** Adds what the server knows to a failure before it is sent (the snapshot to install below the first offset). */
    protected readonly explainFailure: (error: unknown) => unknown = (error) => error,
  ) {
    super();
    // grpc-js emits 'cancelled' when the call is over however it ends (client cancel, lost
    // connection, or its status sent after every message): nothing of it is queued any more. Write
    // callbacks of messages still queued then never come, so their budget is given back here.
    this.callOver = new Promise<void>((resolve) => {
      call.on('cancelled', () => {
        this.releaseGrants();
        this.stop('cancelled');
        resolve();
      });
    });
    call.on('drain', () => this.wakeUp());
  }

  /** A snapshot of the stream's counters. */
  counters(): TailCounters {
    return {
      messagesSent: this.messagesSent,
      heartbeatsSent: this.heartbeatsSent,
      recordsSent: this.recordsSent,
      queuedMessages: this.queuedMessages,
      maxQueuedMessages: this.maxQueuedMessages,
      queuedBytes: this.queuedBytes,
      maxQueuedBytes: this.maxQueuedBytes,
      queueLimitMessages: this.call.writableHighWaterMark,
      isWaitingForClient: this.isWaitingForClient,
      isWaitingForBudget: this.isWaitingForBudget,
      budgetBytes: this.heldBudgetBytes(),
    };
  }

  private heldBudgetBytes(): number {
    let bytes = 0;
    for (const grant of this.grants) {
      bytes += grant.bytes;
    }
    return bytes;
  }

  /**
   * Runs the tail to its end; never rejects (failures become the call's status). Resolves, and
   * emits `done`, once the loop has stopped and the call is over, so that every byte the tail held
   * has been given back.
   */
  run(): Promise<void> {
    this.finished ??= this.runToEnd();
    return this.finished;
  }

  private async runToEnd(): Promise<void> {
    await this.follow();
    await this.callOver;
    this.emit('done');
  }

  /**
   * Ends the tail with `UNAVAILABLE` (`WAL_SHUTTING_DOWN`); resolves when its loop has stopped and
   * the call is over (a client that reads nothing keeps it open until the call is cancelled).
   */
  async shutdown(): Promise<void> {
    this.stop('shutdown');
    await this.finished;
  }

  private stop(reason: AbortReason): void {
    if (this.abortReason === undefined) {
      this.abortReason = reason;
      this.abort.abort();
      this.wakeUp();
    }
  }

  /**
   * Why the tail stopped, for logs: `cancelled` (the call is over: the client cancelled or its
   * connection went), `shutdown` (the server stops), `ended` (it failed or ended itself); undefined
   * while it runs.
   */
  get endReason(): 'cancelled' | 'shutdown' | 'ended' | undefined {
    return this.abortReason ?? (this.finished === undefined ? undefined : 'ended');
  }

  protected get isStopped(): boolean {
    return this.abortReason !== undefined;
  }

  /** True once the stream stopped because the server stops (not because the client went away). */
  protected get isShuttingDown(): boolean {
    return this.abortReason === 'shutdown';
  }

  /** Reads the log and writes its messages until the stream stops; failures end the call. */
  protected async follow(): Promise<void> {
    try {
      const { maxRecords, maxBytes, heartbeatIntervalMs } = this.settings;
      const tail = this.wal.openTail(await this.startOffset(), {
        signal: this.abort.signal,
        maxRecords,
        maxBytes,
        idleMs: heartbeatIntervalMs,
        admit: (nextOffset, bytes) => this.admitRead(nextOffset, bytes),
      });
      for await (const event of tail) {
        if (event.kind === 'idle') {
          await this.sendHeartbeat(event.nextOffset);
        } else {
          await this.sendBatch(event);
        }
      }
      if (this.abortReason === 'shutdown') {
        this.fail(shuttingDown());
      }
    } catch (error) {
      // A failure caused by the shutdown (the log closing under a read) is reported as the shutdown.
      this.fail(this.abortReason === 'shutdown' ? shuttingDown() : error);
    }
  }

  /** Ends the call with `error`'s status (nothing when the client went away first). */
  protected fail(error: unknown): void {
    if (this.abortReason === 'cancelled') {
      return;
    }
    this.call.emit('error', toServiceError(toRpcFailure(this.explainFailure(error), this.logger, { rpc: 'TailWal' })));
  }

  private async startOffset(): Promise<number> {
    const start = this.call.request.start;
    if (start === undefined) {
      return this.wal.firstOffset;
    }
    if (start.$case === 'fromEnd') {
      if (!start.value) {
        throw invalidArgument('from_end', 'must be true when set');
      }
      return this.wal.highWatermark + 1;
    }
    if (start.$case === 'fromTimestamp') {
      return this.wal.offsetForTimestamp(safeIntegerField(start.value, 'from_timestamp'));
    }
    return safeIntegerField(start.value, 'from_offset');
  }

  /**
   * The tail's `admit` hook: reserves a message of `bytes` of records plus the response's own
   * fields. The grant is lent to the tail until it hands it back with the batch.
   */
  private async admitRead(nextOffset: number, bytes: number): Promise<BudgetAdmission | undefined> {
    const grant = await this.reserveBudget(bytes + TAIL_RESPONSE_POSITION_BYTES, nextOffset);
    return grant === undefined ? undefined : { grant, release: () => this.releaseGrant(grant) };
  }

  /** Encodes a batch into one message, trims its reservation to the message's size, and writes it. */
  private async sendBatch(batch: TailRecordsEvent<BudgetAdmission>): Promise<void> {
    const grant = batch.admission!.grant;
    let isHandedOver = false;
    try {
      if (this.isStopped) {
        return;
      }
      const response = this.encode(batch.records, batch.nextOffset);
      // At most the reservation: it covers `sizeBytes` plus the response's fields (see above).
      grant.shrinkTo(response.length);
      isHandedOver = true;
      if (!this.enqueue(response, batch.records.length, batch.nextOffset, grant)) {
        await this.waitForClient();
      }
    } finally {
      if (!isHandedOver) {
        this.releaseGrant(grant);
      }
    }
  }

  /**
   * Waits in line for `bytes` of the server-wide budget; undefined when the stream stopped first.
   * While it waits it keeps sending heartbeats (at `next`), so that its client can tell a tail
   * held back by the server from a dead one.
   */
  protected async reserveBudget(bytes: number, next: number): Promise<TailQueueGrant | undefined> {
    if (this.budget.hasRoomFor(bytes)) {
      return this.keepGrant(await this.budget.reserve(bytes, this.abort.signal));
    }
    const reserved = this.budget.reserve(bytes, this.abort.signal);
    this.isWaitingForBudget = true;
    this.emit('throttled');
    try {
      let outcome: TailQueueGrant | undefined | typeof HEARTBEAT;
      while ((outcome = await this.orHeartbeat(reserved)) === HEARTBEAT) {
        // Only into room the call has: a client that reads nothing gets no more than the call's
        // own buffer of these few-byte messages.
        if (!this.isStopped && !this.call.writableNeedDrain) {
          this.enqueue(this.encodeHeartbeat(next), 0, next, undefined);
        }
      }
      return this.keepGrant(outcome);
    } finally {
      this.isWaitingForBudget = false;
    }
  }

  private keepGrant(grant: TailQueueGrant | undefined): TailQueueGrant | undefined {
    if (grant !== undefined && this.isStopped) {
      // Granted in the turn the stream stopped: nothing would use the bytes or give them back.
      grant.release();
      return undefined;
    }
    if (grant !== undefined) {
      this.grants.add(grant);
    }
    return grant;
  }

  /** Gives `grant` back to the server-wide budget. */
  protected releaseGrant(grant: TailQueueGrant): void {
    grant.release();
    this.grants.delete(grant);
  }

  private releaseGrants(): void {
    for (const grant of this.grants) {
      grant.release();
    }
    this.grants.clear();
  }

  /** `promise`'s value, or {@link HEARTBEAT} when a heartbeat period passes first. */
  protected async orHeartbeat<T>(promise: Promise<T>): Promise<T | typeof HEARTBEAT> {
    let timer: NodeJS.Timeout | undefined;
    const heartbeat = new Promise<typeof HEARTBEAT>((resolve) => {
      timer = setTimeout(resolve, this.settings.heartbeatIntervalMs, HEARTBEAT);
    });
    try {
      return await Promise.race([promise, heartbeat]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a heartbeat (an empty batch), then waits while the call has no room. */
  protected async sendHeartbeat(nextOffset: number): Promise<void> {
    if (this.isStopped) {
      return;
    }
    if (!this.enqueue(this.encodeHeartbeat(nextOffset), 0, nextOffset, undefined)) {
      await this.waitForClient();
    }
  }

  /** A heartbeat at `nextOffset`: an empty message saying where the log is. */
  protected encodeHeartbeat(nextOffset: number): Buffer {
    return this.encode([], nextOffset);
  }

  private encode(records: readonly WalRecord[], nextOffset: number): Buffer {
    // Encoded here, by hand, rather than by the generated codec: see src/wire/tail-response-encoder.ts.
    return encodeTailWalResponse(records, {
      highWatermark: this.wal.highWatermark,
      firstOffset: this.wal.firstOffset,
      nextOffset,
    });
  }

  /**
   * Writes one encoded message. `grant` holds the message's bytes of the budget (none for a
   * heartbeat, a few bytes) and is given back when the transport takes the message. Returns
   * whether the call still has room.
   */
  protected enqueue(response: Buffer, recordCount: number, nextOffset: number, grant: TailQueueGrant | undefined): boolean {
    const bytes = grant === undefined ? 0 : response.length;
    this.queuedMessages++;
    this.queuedBytes += bytes;
    this.maxQueuedMessages = Math.max(this.maxQueuedMessages, this.queuedMessages);
    this.maxQueuedBytes = Math.max(this.maxQueuedBytes, this.queuedBytes);
    const hasRoom = this.call.write(response, () => {
      this.queuedMessages--;
      this.queuedBytes -= bytes;
      if (grant !== undefined) {
        this.releaseGrant(grant);
      }
      this.wakeUp();
    });
    this.messagesSent++;
    this.recordsSent += recordCount;
    if (recordCount === 0) {
      this.heartbeatsSent++;
    }
    this.emit('message', recordCount, nextOffset);
    return hasRoom && this.queuedBytes < this.settings.maxQueueBytes;
  }

  /** Waits until the call has room again (or the stream stops): flow control. */
  protected async waitForClient(): Promise<void> {
    this.isWaitingForClient = true;
    this.emit('blocked');
    try {
      while (!this.isStopped && (this.call.writableNeedDrain || this.queuedBytes >= this.settings.maxQueueBytes)) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      this.isWaitingForClient = false;
    }
  }

  /** Wakes the loop waiting for room (a message was taken, or the stream stopped). */
  protected wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
