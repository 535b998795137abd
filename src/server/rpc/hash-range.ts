import type { HashRangeRequest, HashRangeResponse } from '../../gen/wald/v1/replication.js';
import { withSnapshotToInstall } from '../compacted-offset.js';
import { safeIntegerField } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The HashRange RPC: `Wal.hashRange` over the stored frames whose base offset is in
 * [`from_offset`, `to_offset`) (unset: up to the high watermark), so that two copies of a log can
 * be compared range by range (`wald verify --against`).
 *
 * Rejects with `WAL_INVALID_ARGUMENT` (`from_offset`, `to_offset` above 2^53 - 1, or `to_offset`
 * below `from_offset`) and the errors of `Wal.hashRange` (`WAL_OFFSET_COMPACTED`, naming the
 * snapshot to install, `WAL_OFFSET_OUT_OF_RANGE`, `WAL_CORRUPTION`, ...), as Read.
 */
export async function hashRange(request: HashRangeRequest, context: RpcContext): Promise<HashRangeResponse> {
  const fromOffset = safeIntegerField(request.fromOffset, 'from_offset');
  const toOffset = request.toOffset === undefined ? undefined : safeIntegerField(request.toOffset, 'to_offset');
  const hash = await context.wal.hashRange(fromOffset, toOffset).catch((error: unknown) => {
    throw withSnapshotToInstall(error, context.state);
  });
  return {
    sha256: hash.sha256,
    fromOffset: BigInt(hash.fromOffset),
    toOffset: BigInt(hash.toOffset),
    frameCount: BigInt(hash.frameCount),
    recordCount: BigInt(hash.recordCount),
  };
}
