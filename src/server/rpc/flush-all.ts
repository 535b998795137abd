import { WalError } from '../../errors.js';
import type { FlushAllRequest, FlushAllResponse } from '../../gen/wald/v1/state.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The FlushAll RPC: removes every key of the key-value view by appending one `flush_all` record,
 * and answers once the view has applied it, with the keys removed and the record's offset.
 *
 * Rejects with `WAL_FLUSH_ALL_DISABLED` (details `configKey`) unless the server runs with
 * `allowFlushAll`, and with the errors of appending (`WAL_READ_ONLY`, `WAL_NO_SPACE`,
 * `WAL_IO_ERROR`, ...).
 */
export async function flushAll(_request: FlushAllRequest, context: RpcContext): Promise<FlushAllResponse> {
  if (!context.options.allowFlushAll) {
    throw new WalError('WAL_FLUSH_ALL_DISABLED', 'FlushAll is disabled on this server: start it with allow_flush_all: true (--allow-flush-all)', {
      configKey: 'allow_flush_all',
    });
  }
  const { keysRemoved, offset } = await context.state.flushAll();
  return { keysRemoved: BigInt(keysRemoved), offset: BigInt(offset) };
}
