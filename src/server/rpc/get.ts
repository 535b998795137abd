import { WalError } from '../../errors.js';
import type { GetRequest, GetResponse } from '../../gen/wald/v1/state.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The Get RPC: a key's value, offset and timestamp in the key-value view, once the view has
 * applied every record durable when the request arrived (so a client reads its own acknowledged
 * writes).
 *
 * Rejects with `WAL_KEY_NOT_FOUND` (details `keyBase64`) for a key the view does not hold, and
 * with the error that stopped the view (`WAL_CORRUPTION`, `WAL_IO_ERROR`) when it did.
 */
export async function get(request: GetRequest, context: RpcContext): Promise<GetResponse> {
  const entry = await context.state.get(request.key);
  if (entry === undefined) {
    const keyBase64 = Buffer.from(request.key).toString('base64');
    throw new WalError('WAL_KEY_NOT_FOUND', `no key ${keyBase64} (base64) in the key-value view`, { keyBase64 });
  }
  return { value: entry.value, offset: BigInt(entry.offset), timestamp: BigInt(entry.timestamp) };
}
