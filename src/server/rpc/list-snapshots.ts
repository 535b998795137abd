import type { ListSnapshotsRequest, ListSnapshotsResponse } from '../../gen/wald/v1/snapshot.js';
import { listSnapshotPage } from '../../state/snapshot-catalog.js';
import { invalidArgument } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';
import { snapshotInfoMessage } from '../snapshot-info-message.js';

/** Snapshots a ListSnapshots page holds when `page_size` is 0. */
export const LIST_SNAPSHOTS_PAGE_SIZE_DEFAULT = 100;
/** The most snapshots a ListSnapshots page holds; a larger `page_size` is lowered to it (AIP-158). Part of the contract. */
export const LIST_SNAPSHOTS_PAGE_SIZE_MAX = 1000;

/**
 * The ListSnapshots RPC: a page of the snapshot directory's snapshots in id order, from their
 * headers and trailers (AIP-158 paging).
 *
 * Rejects with `WAL_INVALID_ARGUMENT` for a negative `page_size` (field `page_size`) or a token
 * not issued here (field `page_token`), and `WAL_IO_ERROR` when the directory cannot be read.
 */
export async function listSnapshots(request: ListSnapshotsRequest, context: RpcContext): Promise<ListSnapshotsResponse> {
  if (request.pageSize < 0) {
    throw invalidArgument('page_size', `must not be negative, got ${request.pageSize}`, { value: request.pageSize });
  }
  const limit = request.pageSize === 0 ? LIST_SNAPSHOTS_PAGE_SIZE_DEFAULT : Math.min(request.pageSize, LIST_SNAPSHOTS_PAGE_SIZE_MAX);
  const page = listSnapshotPage(context.state.storage, context.state.snapshotDir, { limit, pageToken: request.pageToken });
  return { snapshots: page.snapshots.map((info) => snapshotInfoMessage(info, info.checksum)), nextPageToken: page.nextPageToken };
}
