import type { WalRecord } from '../codec/record.js';
import type { ReadBatch } from './log-reader.js';
import type { TailAdmission, TailEvent, TailLoopOptions, TailRecordsEvent } from './types.js';

/** Records per batch when `maxRecords` is not given. */
const DEFAULT_TAIL_RECORDS = 1000;
/** Bytes per batch (by `recordSizeBytes`) when `maxBytes` is not given. */
const DEFAULT_TAIL_BYTES = 1024 * 1024;

/** What a {@link LogTail} needs of the log. */
export interface TailSource {
  /** The last offset readers may see now, or -1. */
  highWatermark(): number;
  /**
   * Reads from `fromOffset` up to the high watermark, within `limit` records and `maxBytes` (one
   * larger record comes alone). Rejects with `WAL_CLOSED` once the log is closing,
   * `WAL_OFFSET_COMPACTED` when compaction removed `fromOffset`, `WAL_CORRUPTION`, `WAL_IO_ERROR`.
   */
  readBatch(fromOffset: number, limit: number, maxBytes: number, skipKeylessPuts?: boolean): Promise<ReadBatch>;
  /** Resolves `true` once the high watermark is above `offset`, `false` on abort; rejects with `WAL_CLOSED`. */
  waitForHighWatermark(offset: number, signal: AbortSignal): Promise<boolean>;
}

const IDLE = Symbol('idle');

/**
 * The log's one tail loop: from an offset it reads batches up to the high watermark, then waits
 * for the high watermark to move, and signals `idle` once when it first catches up and then every
 * `idleMs` while no record arrives. Every consumer of the live log uses it: `Wal.tail` and the
 * server's TailWal (which turns idle signals into heartbeats) now, the state view and followers
 * when they come.
 *
 * It is pulled, as an async iterator of {@link TailEvent}s: it reads the log only when asked for
 * the next event, so a consumer that stops pulling (a slow client) holds the loop still. A consumer
 * that bounds memory across tails gives an `admit` hook, called before each read (see
 * {@link TailLoopOptions.admit}).
 *
 * While caught up it holds one waiter on the high watermark, kept across idle periods, never one
 * per period. It ends (the iterator returns) when `signal` aborts or `admit` says so, and throws
 * `WAL_CLOSED` when the log closes and `WAL_OFFSET_COMPACTED` when compaction removes what it has
 * still to read. Made by `Wal.openTail`, which checks the start.
 */
export class LogTail<A extends TailAdmission = TailAdmission> implements AsyncIterableIterator<TailEvent<A>> {
  private nextOffsetValue: number;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly idleMs: number | undefined;
  private readonly admit: TailLoopOptions<A>['admit'];
  /** Aborted when the caller's signal aborts or the loop ends: gives up the high-watermark waiter. */
  private readonly stopper = new AbortController();
  private readonly events: AsyncGenerator<TailEvent<A>, undefined>;

  /** @throws RangeError / TypeError naming the option when `options` are malformed. */
  constructor(
    private readonly source: TailSource,
    fromOffset: number,
    private readonly options: TailLoopOptions<A> = {},
  ) {
    this.nextOffsetValue = fromOffset;
    this.maxRecords = positiveInteger(options.maxRecords, DEFAULT_TAIL_RECORDS, 'maxRecords');
    this.maxBytes = positiveInteger(options.maxBytes, DEFAULT_TAIL_BYTES, 'maxBytes');
    this.idleMs = options.idleMs === undefined ? undefined : positiveInteger(options.idleMs, 0, 'idleMs');
    if (options.admit !== undefined && typeof options.admit !== 'function') {
      throw new TypeError(`admit must be a function, got ${typeof options.admit}`);
    }
    this.admit = options.admit;
    this.events = this.run();
  }

  /** Where the tail goes on: the offset after the last record it delivered (the start before any). */
  get nextOffset(): number {
    return this.nextOffsetValue;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next batch or idle signal; `done` once the tail has ended. */
  next(): Promise<IteratorResult<TailEvent<A>, undefined>> {
    return this.events.next();
  }

  /** Ends the tail: its waiter is given up. */
  return(): Promise<IteratorResult<TailEvent<A>, undefined>> {
    return this.events.return(undefined);
  }

  /** The records of each batch, idle signals left out: for consumers that only follow records. */
  async *batches(): AsyncGenerator<readonly WalRecord[], undefined> {
    for await (const event of this) {
      if (event.kind === 'records') yield event.records;
    }
    return undefined;
  }

  private async *run(): AsyncGenerator<TailEvent<A>, undefined> {
    const signal = this.stopper.signal;
    const callerSignal = this.options.signal;
    const onAbort = (): void => this.stopper.abort();
    if (callerSignal?.aborted === true) this.stopper.abort();
    callerSignal?.addEventListener('abort', onAbort, { once: true });
    try {
      let hasCaughtUp = false;
      // The one wait for records past `nextOffsetValue`, kept across idle periods.
      let arrival: Promise<boolean> | undefined;
      while (!signal.aborted) {
        if (this.nextOffsetValue <= this.source.highWatermark()) {
          arrival = undefined;
          const before = this.nextOffsetValue;
          const batch = await this.read(signal);
          if (batch === 'stop') return undefined;
          if (batch !== 'none') {
            this.nextOffsetValue = batch.nextOffset;
            yield batch;
            continue;
          }
          // Stepped over a gap of a compacted segment that holds no record: read on from after it.
          if (this.nextOffsetValue > before) continue;
        } else if (!hasCaughtUp) {
          // At once rather than after a period: a consumer learns it has everything durable so far.
          hasCaughtUp = true;
          yield { kind: 'idle', nextOffset: this.nextOffsetValue };
          continue;
        }
        arrival ??= this.source.waitForHighWatermark(this.nextOffsetValue - 1, signal);
        const outcome = await this.orIdle(arrival);
        if (outcome === IDLE) {
          yield { kind: 'idle', nextOffset: this.nextOffsetValue };
          continue;
        }
        arrival = undefined;
        if (!outcome) return undefined;
      }
      return undefined;
    } finally {
      callerSignal?.removeEventListener('abort', onAbort);
      this.stopper.abort();
    }
  }

  /**
   * Reads the next batch, admitted by `admit` when there is one: `'stop'` when the tail is to end
   * (aborted, or `admit` said so), `'none'` when the read found nothing (having moved the tail's
   * position past a gap of a compacted segment when it stepped over one). A single record larger
   * than what `admit` granted is dropped and read again under a grant of its size: at most two
   * reads, since the second asks for exactly that record's size.
   */
  private async read(signal: AbortSignal): Promise<TailRecordsEvent<A> | 'stop' | 'none'> {
    let bytes = this.maxBytes;
    for (let attempt = 0; attempt < 2; attempt++) {
      const admission = this.admit === undefined ? undefined : await this.admit(this.nextOffsetValue, bytes);
      if (this.admit !== undefined && admission === undefined) return 'stop';
      let isHandedOver = false;
      try {
        if (signal.aborted) return 'stop';
        const skips = this.options.skipKeylessPuts === true;
        const { records, sizeBytes, nextOffset } = await this.source.readBatch(this.nextOffsetValue, this.maxRecords, bytes, skips);
        if (signal.aborted) return 'stop';
        if (records.length === 0 && skips && nextOffset > this.nextOffsetValue) {
          // Every record read was a keyless PUT: the consumer still learns how far the log is.
          isHandedOver = true;
          return { kind: 'records', records, nextOffset, sizeBytes, admission };
        }
        if (records.length === 0) {
          this.nextOffsetValue = Math.max(this.nextOffsetValue, nextOffset);
          return 'none';
        }
        if (sizeBytes > bytes && admission !== undefined && attempt === 0) {
          bytes = sizeBytes;
          continue;
        }
        isHandedOver = true;
        return { kind: 'records', records, nextOffset: skips ? nextOffset : records[records.length - 1]!.offset + 1, sizeBytes, admission };
      } finally {
        if (!isHandedOver) admission?.release();
      }
    }
    return 'none';
  }

  /** `arrival`'s outcome, or {@link IDLE} when `idleMs` passes first. */
  private async orIdle(arrival: Promise<boolean>): Promise<boolean | typeof IDLE> {
    if (this.idleMs === undefined) return arrival;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<typeof IDLE>((resolve) => {
      timer = setTimeout(resolve, this.idleMs, IDLE);
    });
    try {
      return await Promise.race([arrival, idle]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}
