import type { handleUnaryCall, sendUnaryData, ServerUnaryCall, ServerWritableStream, ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Wal } from '../engine/wal.js';
import type { WriteState as EngineWriteState } from '../engine/types.js';
import { WalError } from '../errors.js';
import type { AppendRequest, AppendResponse, AppendStreamRequest, AppendStreamResponse } from '../gen/wald/v1/append.js';
import type { ReadRequest, ReadResponse } from '../gen/wald/v1/read.js';
import { WriteState, type GetStatsRequest, type GetStatsResponse, type SyncRequest, type SyncResponse } from '../gen/wald/v1/stats.js';
import type { TailWalRequest, TailWalResponse } from '../gen/wald/v1/tail.js';
import type { WalServiceServer } from '../gen/wald/v1/wal_service.js';
import { parseAppendRequest } from './append-request.js';
import { AppendStreamSession, toAppendResponse } from './append-stream.js';
import { countWithinBytes, optionalOffset, toRecordMessage } from './record-message.js';
import { invalidArgument, safeIntegerField } from './request-fields.js';
import { toRpcFailure, toServiceError } from './rpc-failure.js';
import type { ResolvedServerOptions } from './server-options.js';
import type { StreamRegistry } from './stream-registry.js';
import type { TailQueueBudget } from './tail-queue-budget.js';
import { TailStream } from './tail-stream.js';

/** Records a Read returns when `limit` is 0. */
export const READ_LIMIT_DEFAULT = 100;
/** The largest `limit` a Read accepts; more is `INVALID_ARGUMENT`. Part of the contract. */
export const READ_LIMIT_MAX = 1000;

const WIRE_WRITE_STATES: Readonly<Record<EngineWriteState, WriteState>> = {
  writable: WriteState.WRITE_STATE_WRITABLE,
  'disk-full': WriteState.WRITE_STATE_DISK_FULL,
  'read-only': WriteState.WRITE_STATE_READ_ONLY,
};

/** What the service handlers work with. */
export interface WalServiceContext {
  readonly wal: Wal;
  readonly options: ResolvedServerOptions;
  readonly logger: Logger;
  readonly tails: StreamRegistry<TailStream>;
  /** The bytes all tails together may hold (`maxTotalTailQueueBytes`). */
  readonly tailQueueBudget: TailQueueBudget;
  readonly appendStreams: StreamRegistry<AppendStreamSession>;
  /** True once the server has begun to stop: new calls get `UNAVAILABLE` (`WAL_SHUTTING_DOWN`). */
  readonly isStopping: () => boolean;
}

function shuttingDown(): WalError {
  return new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down', {});
}

/** A budget from a request's `max_*` field: 0 means `cap`, larger values are capped at it. */
function capped(requested: number, cap: number): number {
  return requested === 0 ? cap : Math.min(requested, cap);
}

/**
 * The `wald.v1.WalService` handlers: validate each request, translate it for the `Wal`, delegate,
 * and turn every failure into a status with an ErrorInfo (see `rpc-failure.ts`).
 */
export function createWalService(context: WalServiceContext): WalServiceServer {
  const { wal, options, logger } = context;

  function unary<Req, Res>(rpc: string, handler: (request: Req) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const run = async (): Promise<Res> => {
        if (context.isStopping()) {
          throw shuttingDown();
        }
        return handler(call.request);
      };
      run().then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(toRpcFailure(error, logger, { rpc }))),
      );
    };
  }

  async function append(request: AppendRequest): Promise<AppendResponse> {
    const { records, options: appendOptions } = parseAppendRequest(request);
    return toAppendResponse(await wal.append(records, appendOptions));
  }

  async function read(request: ReadRequest): Promise<ReadResponse> {
    const fromOffset = safeIntegerField(request.fromOffset, 'from_offset');
    const limit = request.limit === 0 ? READ_LIMIT_DEFAULT : request.limit;
    if (limit > READ_LIMIT_MAX) {
      throw invalidArgument('limit', `must be at most ${READ_LIMIT_MAX}, got ${limit}`, { value: limit, limit: READ_LIMIT_MAX });
    }
    const maxBytes = capped(request.maxBytes, options.maxResponseBytes);
    const found = await wal.read(fromOffset, { limit, maxBytes });
    const count = countWithinBytes(found, maxBytes);
    const records = count === found.length ? found : found.slice(0, count);
    const last = records[records.length - 1];
    return {
      records: records.map(toRecordMessage),
      nextOffset: BigInt(last === undefined ? fromOffset : last.offset + 1),
      highWatermark: optionalOffset(wal.highWatermark),
      firstOffset: BigInt(wal.firstOffset),
    };
  }

  async function getStats(_request: GetStatsRequest): Promise<GetStatsResponse> {
    const stats = wal.stats();
    return {
      entryCount: BigInt(stats.recordCount),
      segmentCount: BigInt(stats.segmentCount),
      totalSizeBytes: BigInt(stats.bytesOnDisk),
      firstOffset: BigInt(stats.firstOffset),
      latestOffset: optionalOffset(stats.lastOffset),
      highWatermark: optionalOffset(stats.highWatermark),
      nextOffset: BigInt(stats.nextOffset),
      ioStats: {
        bytesWritten: BigInt(stats.io.bytesWritten),
        bytesRead: BigInt(stats.io.bytesRead),
        writes: BigInt(stats.io.writes),
        reads: BigInt(stats.io.reads),
        fsyncs: BigInt(stats.io.fsyncs),
      },
      tailStreamCount: context.tails.size,
      tailQueueBytes: BigInt(context.tailQueueBudget.usedBytes),
      writeState: WIRE_WRITE_STATES[stats.writeState],
    };
  }

  async function sync(_request: SyncRequest): Promise<SyncResponse> {
    return { highWatermark: optionalOffset(await wal.sync()) };
  }

  function tailWal(call: ServerWritableStream<TailWalRequest, TailWalResponse>): void {
    const request = call.request;
    const stream = new TailStream(
      call,
      wal,
      {
        heartbeatIntervalMs: options.tailHeartbeatIntervalMs,
        maxRecords: capped(request.maxRecords, options.maxTailBatchRecords),
        maxBytes: capped(request.maxBytes, options.maxResponseBytes),
        maxQueueBytes: options.maxTailQueueBytes,
      },
      context.tailQueueBudget,
      logger,
    );
    try {
      if (context.isStopping()) {
        throw shuttingDown();
      }
      context.tails.add(stream);
    } catch (error) {
      call.emit('error', toServiceError(toRpcFailure(error, logger, { rpc: 'TailWal' })));
      return;
    }
    logger.debug({ peer: call.getPeer(), start: request.start?.$case }, 'tail opened');
    void stream.run().finally(() => {
      context.tails.delete(stream);
      logger.debug({ peer: call.getPeer(), ...stream.counters() }, 'tail closed');
    });
  }

  function appendStream(call: ServerDuplexStream<AppendStreamRequest, AppendStreamResponse>): void {
    const session = new AppendStreamSession(call, wal, options.maxInFlightAppends, logger);
    try {
      if (context.isStopping()) {
        throw shuttingDown();
      }
      context.appendStreams.add(session);
    } catch (error) {
      call.emit('error', toServiceError(toRpcFailure(error, logger, { rpc: 'AppendStream' })));
      return;
    }
    void session.run().finally(() => context.appendStreams.delete(session));
  }

  return {
    append: unary('Append', append),
    appendStream,
    read: unary('Read', read),
    tailWal,
    getStats: unary('GetStats', getStats),
    sync: unary('Sync', sync),
  };
}
