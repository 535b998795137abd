import { status as Status, type ClientReadableStream } from '@grpc/grpc-js';
import type { WalRecord } from '../codec/record.js';
import type { TailBatch } from '../wire/tail-response-decoder.js';
import { backoffDelayMs } from './backoff.js';
import { isServiceError } from './rpc-error-info.js';
import { isBrokenConnection, WalClientError } from './wal-client-error.js';

/** Options of `WalClient.tail`. */
export interface TailOptions {
  /** Ends the tail: the iterator returns (no error) once it aborts. */
  readonly signal?: AbortSignal | undefined;
  /** Most records per message (TailWal `max_records`; 0 or unset: the server's limit). */
  readonly maxRecords?: number | undefined;
  /** Most record bytes per message (TailWal `max_bytes`; 0 or unset: the server's limit). */
  readonly maxBytes?: number | undefined;
}

/** One step of a tail: records, or a heartbeat (no records) that reports how far behind the tail is. */
export interface TailEvent {
  /** Consecutive records, in offset order; empty for a heartbeat. */
  readonly records: WalRecord[];
  /** The server's high watermark, or undefined while its log holds no durable record. */
  readonly highWatermark: number | undefined;
  /** Where the tail goes on: one past the last record delivered (what it resumes from after a disconnect). */
  readonly nextOffset: number;
  /** Durable records not delivered yet: `highWatermark + 1 - nextOffset` (0 when caught up). */
  readonly lagRecords: number;
}

/** How a resuming tail opens its streams and paces its retries. */
export interface TailSource {
  /** Opens a TailWal stream from `fromOffset`. */
  open(fromOffset: number): Promise<ClientReadableStream<TailBatch>>;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** How long the tail may go without a message (while reconnecting) before it fails, ms. */
  readonly retryDeadlineMs: number;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A function, so that TypeScript does not narrow `aborted` across the awaits that change it. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function toClientError(error: unknown): WalClientError {
  if (error instanceof WalClientError) return error;
  if (isServiceError(error)) return WalClientError.fromServiceError(error);
  return new WalClientError(Status.INTERNAL, `the tail failed: ${String(error)}`, { cause: error });
}

/**
 * A tail from `fromOffset` that survives disconnects: after a retryable failure (`UNAVAILABLE`: a
 * restart, a dropped connection) or a stream the server ended, it opens a new TailWal stream from
 * one past the last record it delivered, after a backoff, so the records it yields have neither a
 * gap nor a duplicate. Records the server sends again below that point are dropped.
 *
 * Ends (returns) when `options.signal` aborts or the consumer stops iterating. Throws
 * {@link WalClientError}: at once for a failure that is not retryable (`OUT_OF_RANGE`
 * `WAL_OFFSET_COMPACTED`, `INVALID_ARGUMENT`, ...), and `DEADLINE_EXCEEDED` (cause: the last
 * failure) when reconnecting found no message within `retryDeadlineMs`.
 */
export async function* resumingTail(source: TailSource, fromOffset: number, options: TailOptions = {}): AsyncGenerator<TailEvent, void, undefined> {
  const { signal } = options;
  let position = fromOffset;
  let failures = 0;
  let lastMessageAt = Date.now();
  while (!isAborted(signal)) {
    let failure: WalClientError;
    let call: ClientReadableStream<TailBatch>;
    try {
      call = await source.open(position);
    } catch (error) {
      throw toClientError(error);
    }
    // An abort while the stream was being opened (its metadata asked for, a backoff before it)
    // fired no listener: this stream must not outlive it.
    if (isAborted(signal)) {
      // Its status (CANCELLED) is nobody's to read.
      call.on('error', () => undefined);
      call.cancel();
      return;
    }
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      for await (const batch of call as AsyncIterable<TailBatch>) {
        failures = 0;
        lastMessageAt = Date.now();
        let records = batch.records;
        if (records.length > 0 && records[0]!.offset < position) records = records.filter((record) => record.offset >= position);
        if (records.length > 0) position = records[records.length - 1]!.offset + 1;
        const { highWatermark } = batch;
        const lagRecords = highWatermark === undefined ? 0 : Math.max(0, highWatermark + 1 - position);
        yield { records, highWatermark, nextOffset: position, lagRecords };
        // The time the consumer took over the event is not time without messages: the retry
        // deadline counts from here.
        lastMessageAt = Date.now();
      }
      failure = new WalClientError(Status.UNAVAILABLE, 'the server ended the tail');
    } catch (error) {
      if (isAborted(signal)) return;
      failure = toClientError(error);
      if (!isBrokenConnection(failure)) throw failure;
    } finally {
      signal?.removeEventListener('abort', cancel);
      call.cancel();
    }
    if (Date.now() - lastMessageAt > source.retryDeadlineMs) {
      throw new WalClientError(Status.DEADLINE_EXCEEDED, `the tail found no message within retryDeadlineMs (${source.retryDeadlineMs} ms)`, { cause: failure });
    }
    await sleep(backoffDelayMs(failures++, source.initialBackoffMs, source.maxBackoffMs), signal);
  }
}
