import type { SyncRequest, SyncResponse } from '../../gen/wald/v1/stats.js';
import { optionalOffset } from '../record-message.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The Sync RPC: forces an fsync of the log and answers with the durable offset.
 *
 * Rejects with the errors of `Wal.sync` (`WAL_READ_ONLY`, `WAL_IO_ERROR`, ...).
 */
export async function sync(_request: SyncRequest, context: RpcContext): Promise<SyncResponse> {
  return { highWatermark: optionalOffset(await context.wal.sync()) };
}
