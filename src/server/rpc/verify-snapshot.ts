import type { VerifySnapshotRequest, VerifySnapshotResponse } from '../../gen/wald/v1/snapshot.js';
import { existingSnapshotPath } from '../../state/snapshot-catalog.js';
import { verifySnapshot as verifySnapshotFile } from '../../state/snapshot-reader.js';
import type { RpcContext } from './rpc-context.js';
import { snapshotInfoMessage } from '../snapshot-info-message.js';

/**
 * The VerifySnapshot RPC: reads the snapshot and, for an incremental, every file of its chain
 * down to its full base, recomputing checksums and checking every entry. A damaged file (or a
 * missing base) is the answer, `valid: false` naming the file and the reason, not a failure.
 *
 * Rejects with `WAL_INVALID_ARGUMENT` (field `snapshot_id`) for a malformed id and
 * `WAL_SNAPSHOT_NOT_FOUND` when no file has that id.
 */
export async function verifySnapshot(request: VerifySnapshotRequest, context: RpcContext): Promise<VerifySnapshotResponse> {
  const { storage, snapshotDir } = context.state;
  const path = existingSnapshotPath(storage, snapshotDir, request.snapshotId);
  const verdict = await verifySnapshotFile(storage, path);
  if (!verdict.ok) return { valid: false, chain: [], failedPath: verdict.file, reason: verdict.reason };
  return {
    valid: true,
    chain: verdict.chain.map((info, i) => snapshotInfoMessage(info, verdict.checksums[i]!)),
    failedPath: '',
    reason: '',
  };
}
