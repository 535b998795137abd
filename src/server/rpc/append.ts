import type { AppendRequest, AppendResponse } from '../../gen/wald/v1/append.js';
import { parseAppendRequest } from '../append-request.js';
import { toAppendResponse } from '../append-stream.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The Append RPC: one atomic batch, validated (`append-request.ts`), checked against the cap of
 * the key-value view, written by the log and acknowledged with its offsets.
 *
 * Rejects with the errors of `parseAppendRequest`, `StateKeeper.checkCapacity`
 * (`WAL_STATE_FULL`) and `Wal.append` (`WAL_INVALID_ARGUMENT`, `WAL_OFFSET_MISMATCH`,
 * `WAL_SEQUENCE_STALE`, `WAL_READ_ONLY`, `WAL_NO_SPACE`, ...).
 */
export async function append(request: AppendRequest, context: RpcContext): Promise<AppendResponse> {
  const { records, options } = parseAppendRequest(request);
  context.state.checkCapacity(records);
  return toAppendResponse(await context.wal.append(records, options));
}
