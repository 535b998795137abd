import { WalError } from '../../errors.js';
import type { SnapshotKeyRequest, SnapshotKeyResponse } from '../../gen/wald/v1/snapshot.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The SnapshotKey RPC: one key's current state written as a point snapshot (durable when it
 * answers), once the view has applied every record durable when the request arrived.
 *
 * Rejects with `WAL_KEY_NOT_FOUND` (details `keyBase64`) for a key the view does not hold, the
 * disk's errors (`WAL_NO_SPACE`, `WAL_IO_ERROR`), and as Get when the view stopped.
 */
export async function snapshotKey(request: SnapshotKeyRequest, context: RpcContext): Promise<SnapshotKeyResponse> {
  const written = await context.state.snapshotKey(request.key);
  if (written === undefined) {
    const keyBase64 = Buffer.from(request.key).toString('base64');
    throw new WalError('WAL_KEY_NOT_FOUND', `no key ${keyBase64} (base64) in the key-value view`, { keyBase64 });
  }
  return { snapshotId: written.id, walOffset: BigInt(written.walOffset), sizeBytes: BigInt(written.sizeBytes), checksum: written.checksum, path: written.path };
}
