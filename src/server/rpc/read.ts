import type { ReadRequest } from '../../gen/wald/v1/read.js';
import { encodeReadResponse } from '../../wire/read-response-encoder.js';
import { withSnapshotToInstall } from '../compacted-offset.js';
import { cappedLimit, invalidArgument, safeIntegerField } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';

/** Records a Read returns when `limit` is 0. */
export const READ_LIMIT_DEFAULT = 100;
/** The largest `limit` a Read accepts; more is `INVALID_ARGUMENT`. Part of the contract. */
export const READ_LIMIT_MAX = 1000;

/**
 * The Read RPC: up to `limit` records from `from_offset`, within `max_bytes` (capped at
 * `maxResponseBytes`; one larger record still comes alone), with the offset to read next. The
 * engine counts `max_bytes` as the wire does (`recordSizeBytes` bounds a record's encoding), so its
 * records go out as they come. The response is encoded here, by hand
 * (`src/wire/read-response-encoder.ts`: the generated encoder's bytes at a fraction of its cost),
 * and Read's serializer passes the bytes through (`wal-service-definition.ts`).
 *
 * Rejects with `WAL_INVALID_ARGUMENT` (`from_offset`, `limit`) and the errors of `Wal.read`
 * (`WAL_OFFSET_COMPACTED`, naming the snapshot to install, `WAL_OFFSET_OUT_OF_RANGE`,
 * `WAL_CORRUPTION`, ...).
 */
export async function read(request: ReadRequest, context: RpcContext): Promise<Buffer> {
  const { wal } = context;
  const fromOffset = safeIntegerField(request.fromOffset, 'from_offset');
  const limit = request.limit === 0 ? READ_LIMIT_DEFAULT : request.limit;
  if (limit > READ_LIMIT_MAX) {
    throw invalidArgument('limit', `must be at most ${READ_LIMIT_MAX}, got ${limit}`, { value: limit, limit: READ_LIMIT_MAX });
  }
  const maxBytes = cappedLimit(request.maxBytes, context.options.maxResponseBytes);
  const records = await wal.read(fromOffset, { limit, maxBytes }).catch((error: unknown) => {
    throw withSnapshotToInstall(error, context.state);
  });
  const last = records[records.length - 1];
  return encodeReadResponse(records, {
    nextOffset: last === undefined ? fromOffset : last.offset + 1,
    highWatermark: wal.highWatermark,
    firstOffset: wal.firstOffset,
  });
}
