import type { AppendRequest, AppendResponse } from '../../gen/wald/v1/append.js';
import { parseAppendRequest } from '../append-request.js';
import { toAppendResponse } from '../append-stream.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The Append RPC: one atomic batch, validated (`append-request.ts`), appended within the cap of
 * the key-value view (`StateKeeper.append`) and acknowledged with its offsets.
 *
 * Rejects with the errors of `parseAppendRequest` and `StateKeeper.append`: `WAL_STATE_FULL` and
 * those of `Wal.append` (`WAL_INVALID_ARGUMENT`, `WAL_OFFSET_MISMATCH`, `WAL_SEQUENCE_STALE`,
 * `WAL_READ_ONLY`, `WAL_NO_SPACE`, ...).
 */
export async function append(request: AppendRequest, context: RpcContext): Promise<AppendResponse> {
  const { records, options } = parseAppendRequest(request);
  return toAppendResponse(await context.state.append(records, options));
}
