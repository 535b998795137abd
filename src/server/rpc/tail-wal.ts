import type { ServerWritableStream } from '@grpc/grpc-js';
import type { TailWalRequest, TailWalResponse } from '../../gen/wald/v1/tail.js';
import { withSnapshotToInstall } from '../compacted-offset.js';
import { cappedLimit } from '../request-fields.js';
import { FrameTailStream } from '../frame-tail-stream.js';
import { TailStream } from '../tail-stream.js';
import type { Role } from '../auth/role.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The role a TailWal request needs: `write` for a frames tail naming a follower id (that follower
 * counts as connected and holds a retention lease, which keeps segments from compaction), `read`
 * for any other tail.
 */
export function tailWalRole(request: TailWalRequest): Role {
  return request.frames && request.followerId !== '' ? 'write' : 'read';
}

/**
 * The TailWal RPC: the {@link TailStream} that serves one call, with the request's batch bounds
 * capped at the server's (`maxTailBatchRecords`, `maxResponseBytes`); a tail below the first
 * retained offset ends naming the snapshot to install. Responses may be written
 * already encoded (see `wal-service-definition.ts`). In frames mode (`frames: true`, followers)
 * the call is served by a {@link FrameTailStream}: the same bounds, frames as stored instead of
 * records.
 */
export function tailWal(call: ServerWritableStream<TailWalRequest, TailWalResponse | Buffer>, context: RpcContext): TailStream {
  const { options } = context;
  const request = call.request;
  if (request.frames) {
    return new FrameTailStream(
      call,
      context.wal,
      {
        heartbeatIntervalMs: options.tailHeartbeatIntervalMs,
        maxRecords: options.maxTailBatchRecords,
        maxBytes: cappedLimit(request.maxBytes, options.maxResponseBytes),
        maxQueueBytes: options.maxTailQueueBytes,
      },
      context.tailQueueBudget,
      context.logger,
      (error) => withSnapshotToInstall(error, context.state),
    );
  }
  return new TailStream(
    call,
    context.wal,
    {
      heartbeatIntervalMs: options.tailHeartbeatIntervalMs,
      maxRecords: cappedLimit(request.maxRecords, options.maxTailBatchRecords),
      maxBytes: cappedLimit(request.maxBytes, options.maxResponseBytes),
      maxQueueBytes: options.maxTailQueueBytes,
    },
    context.tailQueueBudget,
    context.logger,
    (error) => withSnapshotToInstall(error, context.state),
  );
}
