import { EventEmitter } from 'node:events';
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Wal } from '../engine/wal.js';
import type { WalRecord } from '../engine/types.js';
import { WalError } from '../errors.js';
import type { TailWalRequest, TailWalResponse } from '../gen/wald/v1/tail.js';
import { encodeTailWalResponse } from '../wire/tail-response-encoder.js';
import { countWithinBytes, recordWireBytes } from './record-message.js';
import { invalidArgument, safeIntegerField } from './request-fields.js';
import { toRpcFailure, toServiceError } from './rpc-failure.js';
import type { RegisteredStream } from './stream-registry.js';

/** The bounds of one tail, resolved from the request and the server's limits. */
export interface TailSettings {
  /** Period of heartbeats while no record arrives, ms. */
  readonly heartbeatIntervalMs: number;
  /** Most records per message. */
  readonly maxRecords: number;
  /** Most encoded record bytes per message (one larger record still goes out alone). */
  readonly maxBytes: number;
  /** Most record bytes written to the call but not yet taken by the transport. */
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
  /** Record bytes written but not yet taken by the transport, now. */
  readonly queuedBytes: number;
  /** The most record bytes ever queued at once. */
  readonly maxQueuedBytes: number;
  /** The call's own buffer limit, in messages (`write()` returns false at it). */
  readonly queueLimitMessages: number;
  /** True while the tail waits for the client to take queued messages. */
  readonly isWaitingForClient: boolean;
}

/** Events of a {@link TailStream}. */
export interface TailStreamEvents {
  /** The stream stopped writing until the client takes what is queued (flow control). */
  blocked: [];
  /** A message (batch or heartbeat) was written: its record count and next offset. */
  message: [recordCount: number, nextOffset: number];
  /** The stream's work is over (its status is sent or the call is gone). */
  done: [];
}

/** The call: responses are written already encoded (see `tailWalServiceDefinition`). */
type TailCall = ServerWritableStream<TailWalRequest, TailWalResponse | Buffer>;

const HEARTBEAT = Symbol('heartbeat');

function shuttingDown(): WalError {
  return new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down; resume from next_offset', {});
}
type AbortReason = 'cancelled' | 'shutdown';

/**
 * One TailWal call: resolves its start, catches up from disk, follows new records live, sends
 * heartbeats when idle, and ends with a typed status.
 *
 * Memory stays bounded however slow the client: the tail reads the next batch from the log only
 * when the call has room, which it has while `write()` returned true (the call buffers at most its
 * high-water mark of messages) and fewer than `maxQueueBytes` record bytes await the transport.
 * So one tail holds at most `maxQueueBytes` plus one batch.
 */
export class TailStream extends EventEmitter<TailStreamEvents> implements RegisteredStream {
  private readonly abort = new AbortController();
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
  private arrival: { readonly next: number; readonly promise: Promise<boolean> } | undefined;

  constructor(
    private readonly call: TailCall,
    private readonly wal: Wal,
    readonly settings: TailSettings,
    private readonly logger: Logger,
  ) {
    super();
    call.on('cancelled', () => this.stop('cancelled'));
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
    };
  }

  /** Runs the tail to its end; never rejects (failures become the call's status). */
  run(): Promise<void> {
    this.finished ??= this.follow().finally(() => this.emit('done'));
    return this.finished;
  }

  /** Ends the tail with `UNAVAILABLE` (`WAL_SHUTTING_DOWN`); resolves when its loop has stopped. */
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

  private get isStopped(): boolean {
    return this.abortReason !== undefined;
  }

  private async follow(): Promise<void> {
    try {
      let next = await this.startOffset();
      let hasCaughtUp = false;
      while (!this.isStopped) {
        if (next <= this.wal.highWatermark) {
          next = await this.sendFrom(next);
          continue;
        }
        if (!hasCaughtUp) {
          // Tells the client it has everything durable so far, at once rather than after a period.
          hasCaughtUp = true;
          await this.send([], next);
          continue;
        }
        if ((await this.waitForRecords(next)) === HEARTBEAT) {
          await this.send([], next);
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

  private fail(error: unknown): void {
    if (this.abortReason === 'cancelled') {
      return;
    }
    this.call.emit('error', toServiceError(toRpcFailure(error, this.logger, { rpc: 'TailWal' })));
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
    const fromOffset = safeIntegerField(start.value, 'from_offset');
    this.wal.checkStart(fromOffset);
    return fromOffset;
  }

  /** Reads one batch at `next` and sends it in messages within `maxBytes`; returns the new position. */
  private async sendFrom(next: number): Promise<number> {
    const { maxRecords, maxBytes } = this.settings;
    const records = await this.wal.read(next, { limit: maxRecords, maxBytes });
    let start = 0;
    while (start < records.length && !this.isStopped) {
      const rest = start === 0 ? records : records.slice(start);
      const count = countWithinBytes(rest, maxBytes);
      const chunk = count === rest.length ? rest : rest.slice(0, count);
      start += count;
      await this.send(chunk, chunk[chunk.length - 1]!.offset + 1);
    }
    return start === 0 ? next : records[start - 1]!.offset + 1;
  }

  /**
   * Waits until a record at `next` is durable, the heartbeat period passes, or the stream stops.
   * The log's wait is kept across heartbeats, so an idle tail holds one waiter, not one per period.
   */
  private async waitForRecords(next: number): Promise<boolean | typeof HEARTBEAT> {
    if (this.arrival?.next !== next) {
      this.arrival = { next, promise: this.wal.waitForHighWatermark(next - 1, this.abort.signal) };
    }
    const arrived = this.arrival.promise;
    let timer: NodeJS.Timeout | undefined;
    const heartbeat = new Promise<typeof HEARTBEAT>((resolve) => {
      timer = setTimeout(resolve, this.settings.heartbeatIntervalMs, HEARTBEAT);
    });
    try {
      const outcome = await Promise.race([arrived, heartbeat]);
      if (outcome !== HEARTBEAT) {
        this.arrival = undefined;
      }
      return outcome;
    } finally {
      clearTimeout(timer);
    }
  }

  private async send(records: readonly WalRecord[], nextOffset: number): Promise<void> {
    if (this.isStopped) {
      return;
    }
    // Encoded here, by hand, rather than by the generated codec: see src/wire/tail-response-encoder.ts.
    const response = encodeTailWalResponse(records, {
      highWatermark: this.wal.highWatermark,
      firstOffset: this.wal.firstOffset,
      nextOffset,
    });
    let bytes = 0;
    for (const record of records) {
      bytes += recordWireBytes(record);
    }
    this.queuedMessages++;
    this.queuedBytes += bytes;
    this.maxQueuedMessages = Math.max(this.maxQueuedMessages, this.queuedMessages);
    this.maxQueuedBytes = Math.max(this.maxQueuedBytes, this.queuedBytes);
    const hasRoom = this.call.write(response, () => {
      this.queuedMessages--;
      this.queuedBytes -= bytes;
      this.wakeUp();
    });
    this.messagesSent++;
    this.recordsSent += records.length;
    if (records.length === 0) {
      this.heartbeatsSent++;
    }
    this.emit('message', records.length, nextOffset);
    if (!hasRoom || this.queuedBytes >= this.settings.maxQueueBytes) {
      await this.waitForClient();
    }
  }

  /** Waits until the call has room again (or the stream stops): flow control. */
  private async waitForClient(): Promise<void> {
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

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
