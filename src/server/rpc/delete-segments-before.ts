import type { DeleteSegmentsBeforeRequest, DeleteSegmentsBeforeResponse } from '../../gen/wald/v1/compaction.js';
import { safeIntegerField } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The DeleteSegmentsBefore RPC: deletes the sealed segments below `offset` that a snapshot covers
 * (or all of them with `force`), through the server's {@link Compactor} so that it never runs
 * during a compaction. Rejects with `WAL_INVALID_ARGUMENT` (`offset`) and the errors of
 * `Compactor.deleteSegmentsBefore` (`WAL_NOT_COVERED`, `WAL_IO_ERROR`, ...).
 */
export async function deleteSegmentsBefore(request: DeleteSegmentsBeforeRequest, context: RpcContext): Promise<DeleteSegmentsBeforeResponse> {
  const offset = safeIntegerField(request.offset, 'offset');
  const result = await context.compactor.deleteSegmentsBefore(offset, { force: request.force });
  return {
    segmentsDeleted: result.segmentsDeleted,
    bytesReclaimed: BigInt(result.bytesReclaimed),
    firstOffset: BigInt(result.firstOffset),
  };
}
