import { credentials as grpcCredentials, Client, Metadata, status as Status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import type { AppendRecord } from '../codec/record.js';
import { GetRequest } from '../gen/wald/v1/state.js';
import { ReadRequest } from '../gen/wald/v1/read.js';
import { GetStatsRequest, GetStatsResponse } from '../gen/wald/v1/stats.js';
import { TailWalRequest } from '../gen/wald/v1/tail.js';
import { WalServiceService } from '../gen/wald/v1/wal_service.js';
import { decodeGetResponse } from '../wire/get-response-decoder.js';
import { decodeReadResponse, type ReadPage } from '../wire/read-response-decoder.js';
import type { TailBatch } from '../wire/tail-response-decoder.js';
import { AppendPipeline, type AppendCallOptions, type AppendPipelineCounters, type AppendResult } from './append-pipeline.js';
import { backoffDelayMs } from './backoff.js';
import { openTailWal } from './open-tail-wal.js';
import { resumingTail, type TailEvent, type TailOptions } from './resuming-tail.js';
import { isServiceError } from './rpc-error-info.js';
import { isBrokenConnection, WalClientError } from './wal-client-error.js';
import { resolveWalClientOptions, walChannelOptions, type ResolvedWalClientOptions, type WalClientOptions } from './wal-client-options.js';

export type { AppendCallOptions, AppendPipelineCounters, AppendResult } from './append-pipeline.js';
export type { ReadPage } from '../wire/read-response-decoder.js';
export type { TailEvent, TailOptions } from './resuming-tail.js';
export type { WalRecord, AppendRecord } from '../codec/record.js';
export { WalClientError } from './wal-client-error.js';
export { WAL_CLIENT_DEFAULTS, walChannelOptions, type WalClientOptions } from './wal-client-options.js';

/** `T` with every `bigint` as a `number`, nested (offsets and counts stay below 2^53). */
export type Numbered<T> = T extends bigint ? number : T extends Uint8Array ? T : T extends object ? { readonly [K in keyof T]: Numbered<T[K]> } : T;

/** What `GetStats` reports, with `number`s for its uint64 fields. */
export type WalStats = Numbered<GetStatsResponse>;

/** A key's latest PUT, from the key-value view. */
export interface KeyValue {
  readonly value: Buffer;
  /** Offset of the PUT that wrote the value. */
  readonly offset: number;
  /** Its timestamp: milliseconds since the Unix epoch. */
  readonly timestamp: number;
}

/** Options of {@link WalClient.read}. */
export interface ReadOptions {
  /** Most records (0 or unset: the server's `max_read_records`). */
  readonly limit?: number | undefined;
  /** Most record bytes (0 or unset: the server's `max_response_bytes`). */
  readonly maxBytes?: number | undefined;
}

/** A page `range` asked for ahead: where it starts, and the call. */
interface PageAhead {
  readonly start: number;
  readonly page: Promise<ReadPage>;
  /** Asked for before the page before it arrived: its start was a guess. */
  readonly isGuess: boolean;
}

function numbered<T>(value: T): Numbered<T> {
  if (typeof value === 'bigint') return Number(value) as Numbered<T>;
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value as Numbered<T>;
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) out[name] = numbered(field);
  return out as Numbered<T>;
}

function checkOffset(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${String(value)}`);
}

/**
 * A client of a wald server for Node (`import { WalClient } from 'wald/client'`), shaped for speed:
 * concurrent appends ride one AppendStream, several per message (see {@link AppendPipeline}),
 * idempotent and retried across disconnects by default; reads and tails decode with the
 * hand-written codecs of `src/wire/` (records with `number` offsets, byte fields that are views
 * into the message). Offsets are `number`s: exact below 2^53, which bounds every offset wald has.
 *
 * Every method rejects with {@link WalClientError} (status code, `ErrorInfo` reason). Unary calls
 * (read, get, stats) are retried after `UNAVAILABLE` with backoff until `retryDeadlineMs`.
 * docs/client.md describes the semantics.
 */
export class WalClient {
  readonly options: ResolvedWalClientOptions;
  private readonly grpc: Client;
  private readonly appends: AppendPipeline;
  private isClosed = false;

  /**
   * Connects lazily to `address` (`host:port`).
   *
   * @throws TypeError or RangeError naming a bad option.
   */
  constructor(
    readonly address: string,
    options: WalClientOptions = {},
  ) {
    this.options = resolveWalClientOptions(options);
    this.grpc = new Client(address, this.options.credentials ?? grpcCredentials.createInsecure(), walChannelOptions(this.options.channelOptions));
    this.appends = new AppendPipeline(this.grpc, this.options, () => this.callMetadata());
  }

  /**
   * Appends `records` atomically (all or none, consecutive offsets, one timestamp). Concurrent
   * calls share AppendStream messages; each resolves with its own result or rejects with its own
   * error.
   *
   * @throws TypeError for records that are not records; RangeError for a bad `expectedOffset`,
   *   `expectedEpoch` or `minReplicas`. Rejects with {@link WalClientError}: the server's reason
   *   (`WAL_INVALID_ARGUMENT`, `WAL_BATCH_TOO_LARGE`, `WAL_OFFSET_MISMATCH`, `WAL_EPOCH_MISMATCH`,
   *   `WAL_REPLICAS_TIMEOUT`, `WAL_STATE_FULL`, ...), `DEADLINE_EXCEEDED`
   *   when retries ran out of `retryDeadlineMs`, `CANCELLED` after {@link close}.
   */
  append(records: readonly AppendRecord[], options: AppendCallOptions = {}): Promise<AppendResult> {
    return this.appends.append(records, options);
  }

  /** Counters of the append pipeline (messages in flight, retries, producer ids), for tests and monitoring. */
  appendCounters(): AppendPipelineCounters {
    return this.appends.counters();
  }

  /**
   * Reads up to `limit` durable records from `fromOffset` (one Read call).
   *
   * @throws RangeError for a bad `fromOffset`. Rejects with {@link WalClientError}: `OUT_OF_RANGE`
   *   (`WAL_OFFSET_COMPACTED`, `WAL_OFFSET_OUT_OF_RANGE`), ...
   */
  read(fromOffset: number, options: ReadOptions = {}): Promise<ReadPage> {
    checkOffset(fromOffset, 'fromOffset');
    const request = ReadRequest.encode({ fromOffset: BigInt(fromOffset), limit: options.limit ?? 0, maxBytes: options.maxBytes ?? 0 }).finish();
    return this.unary(WalServiceService.read.path, Buffer.from(request), decodeReadResponse);
  }

  /**
   * The records from `fromOffset` up to `toOffset` (exclusive; unset: up to the high watermark as
   * of each page), one page per Read call. Stops early at the end of the log. Pages are asked for
   * ahead of the caller, so the server reads them while the caller consumes the one it has: with a
   * `limit`, once the first page has told the high watermark, up to `readAheadPages` (default 3)
   * at once, each guessed to span as many offsets as the last page did (a page that ends elsewhere,
   * cut by `max_bytes`, a compacted gap or the end of the log, drops the guesses after it, and the
   * next page is asked for from where it ended; no guess goes past the high watermark the last
   * page reported); without one, the next page once a page arrives. A guess that failed or came
   * back empty (answered before the log reached it) is asked again, once, when its turn comes.
   *
   * @throws RangeError for bad offsets. Rejects as {@link read}.
   */
  async *range(fromOffset: number, toOffset?: number, options: ReadOptions = {}): AsyncGenerator<ReadPage, void, undefined> {
    checkOffset(fromOffset, 'fromOffset');
    if (toOffset !== undefined) checkOffset(toOffset, 'toOffset');
    const ask = (start: number, isGuess: boolean): PageAhead | undefined => {
      if (toOffset !== undefined && start >= toOffset) return undefined;
      const limit = toOffset === undefined ? options.limit : Math.min(options.limit ?? Number.MAX_SAFE_INTEGER, toOffset - start, 2 ** 32 - 1);
      const page = this.read(start, { ...options, limit });
      // A caller that stops iterating never awaits the pages read ahead: their failures are nobody's.
      page.catch(() => undefined);
      return { start, page, isGuess };
    };
    const depth = (options.limit ?? 0) > 0 ? this.options.readAheadPages : 1;
    const ahead: PageAhead[] = [];
    let position = fromOffset;
    /** The end of the log as of the last page (its high watermark + 1): no guess goes past it. None before the first page. */
    let knownEnd = -1;
    /** How many offsets the last page spanned: the next page is guessed to span as many. */
    let stride = options.limit ?? 0;
    const askAhead = (): void => {
      while (ahead.length < depth) {
        // Behind a page still on its way, the start is a guess.
        const isGuess = ahead.length > 0;
        const start = isGuess ? ahead[ahead.length - 1]!.start + stride : position;
        if (isGuess && start >= knownEnd) return;
        const next = ask(start, isGuess);
        if (next === undefined) return;
        ahead.push(next);
      }
    };
    askAhead();
    // Bounded: each page moves `position` forward, and an empty page ends the range.
    while (ahead.length > 0) {
      const asked = ahead.shift()!;
      // A guess that failed or came back empty may have been answered before the log reached it: asked again, once.
      let page = await asked.page.catch((error: unknown) => {
        if (!asked.isGuess) throw error;
        return undefined;
      });
      if (asked.isGuess && (page === undefined || page.records.length === 0)) page = await ask(asked.start, false)!.page;
      if (page === undefined || page.records.length === 0 || page.nextOffset <= position) return;
      // Read's limit counts records, not offsets: over a key-compaction gap a page runs past `toOffset`.
      if (toOffset !== undefined && page.records[page.records.length - 1]!.offset >= toOffset) {
        const records = page.records.filter((record) => record.offset < toOffset);
        if (records.length > 0) yield { ...page, records, nextOffset: records[records.length - 1]!.offset + 1 };
        return;
      }
      stride = page.nextOffset - asked.start;
      position = page.nextOffset;
      knownEnd = page.highWatermark === undefined ? knownEnd : page.highWatermark + 1;
      if (ahead.length > 0 && ahead[0]!.start !== position) ahead.length = 0;
      askAhead();
      yield page;
    }
  }

  /**
   * A tail from `fromOffset`: the durable records, catching up then following live, resumed from
   * where it was after a disconnect (no gap, no duplicate), with heartbeats that report the lag.
   * See {@link resumingTail}.
   *
   * @throws RangeError for a bad `fromOffset`.
   */
  tail(fromOffset: number, options: TailOptions = {}): AsyncGenerator<TailEvent, void, undefined> {
    checkOffset(fromOffset, 'fromOffset');
    const open = async (from: number): Promise<ClientReadableStream<TailBatch>> => {
      const request = TailWalRequest.fromPartial({
        start: { $case: 'fromOffset', value: BigInt(from) },
        maxRecords: options.maxRecords ?? 0,
        maxBytes: options.maxBytes ?? 0,
      });
      return openTailWal(this.grpc, request, await this.callMetadata());
    };
    const { initialBackoffMs, maxBackoffMs, retryDeadlineMs } = this.options;
    return resumingTail({ open, initialBackoffMs, maxBackoffMs, retryDeadlineMs }, fromOffset, options);
  }

  /** The value of `key` in the key-value view, or undefined when the view holds no such key. */
  async get(key: Uint8Array): Promise<KeyValue | undefined> {
    if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array');
    try {
      return await this.unary(WalServiceService.get.path, Buffer.from(GetRequest.encode({ key: Buffer.from(key) }).finish()), decodeGetResponse);
    } catch (error) {
      if (error instanceof WalClientError && error.reason === 'WAL_KEY_NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** The server's GetStats, with `number`s. */
  async stats(): Promise<WalStats> {
    const response = await this.unary(WalServiceService.getStats.path, Buffer.from(GetStatsRequest.encode({}).finish()), (bytes) => GetStatsResponse.decode(bytes));
    return numbered(response);
  }

  /** Waits for every append made to settle, then closes the connection. Later calls fail with `CANCELLED`. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await this.appends.close();
    this.grpc.close();
  }

  /** The metadata of a call; rejects with `UNAUTHENTICATED` when the `metadata` or `token` provider fails. */
  private async callMetadata(): Promise<Metadata> {
    try {
      const metadata = this.options.metadata === undefined ? new Metadata() : (await this.options.metadata()).clone();
      if (this.options.token !== undefined) metadata.set('authorization', `Bearer ${await this.options.token()}`);
      return metadata;
    } catch (error) {
      throw new WalClientError(Status.UNAUTHENTICATED, `the metadata provider of the WalClient failed: ${String(error)}`, { cause: error });
    }
  }

  /** One unary call, retried after a broken connection (`isBrokenConnection`) with backoff until `retryDeadlineMs`. */
  private async unary<T>(path: string, request: Buffer, decode: (bytes: Buffer) => T): Promise<T> {
    if (this.isClosed) throw new WalClientError(Status.CANCELLED, 'the client is closed');
    const deadline = Date.now() + this.options.retryDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      const metadata = await this.callMetadata();
      try {
        return await new Promise<T>((resolve, reject) => {
          this.grpc.makeUnaryRequest(
            path,
            (bytes: Buffer) => bytes,
            decode,
            request,
            metadata,
            { deadline: Date.now() + this.options.callTimeoutMs },
            (error: ServiceError | null, response?: T) => (error === null ? resolve(response as T) : reject(error)),
          );
        });
      } catch (error) {
        const failure = isServiceError(error) ? WalClientError.fromServiceError(error) : new WalClientError(Status.INTERNAL, String(error), { cause: error });
        const delay = backoffDelayMs(attempt, this.options.initialBackoffMs, this.options.maxBackoffMs);
        if (!isBrokenConnection(failure) || this.isClosed || Date.now() + delay >= deadline) throw failure;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
