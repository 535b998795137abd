import type { ListKeysRequest, ListKeysResponse } from '../../gen/wald/v1/state.js';
import { invalidArgument } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';

/** Keys a ListKeys page holds when `page_size` is 0. */
export const LIST_KEYS_PAGE_SIZE_DEFAULT = 100;
/** The most keys a ListKeys page holds; a larger `page_size` is lowered to it (AIP-158). Part of the contract. */
export const LIST_KEYS_PAGE_SIZE_MAX = 1000;

/**
 * The ListKeys RPC: a page of the key-value view's keys in byte order, optionally those with a
 * prefix, each with the offset, timestamp and value size of its latest PUT (AIP-158 paging). The
 * page also stays within `maxResponseBytes` of keys: a shorter page with a `next_page_token` when
 * the keys are long.
 *
 * Rejects with `WAL_INVALID_ARGUMENT` for a negative `page_size` (field `page_size`) and a token
 * this server did not issue or issued for another prefix (field `page_token`), and as Get when the
 * view stopped.
 */
export async function listKeys(request: ListKeysRequest, context: RpcContext): Promise<ListKeysResponse> {
  if (request.pageSize < 0) {
    throw invalidArgument('page_size', `must not be negative, got ${request.pageSize}`, { value: request.pageSize });
  }
  const limit = request.pageSize === 0 ? LIST_KEYS_PAGE_SIZE_DEFAULT : Math.min(request.pageSize, LIST_KEYS_PAGE_SIZE_MAX);
  const page = await context.state.listKeys({
    prefix: request.prefix,
    limit,
    pageToken: request.pageToken,
    maxBytes: context.options.maxResponseBytes,
  });
  return {
    keys: page.keys.map((info) => ({
      key: info.key,
      offset: BigInt(info.offset),
      timestamp: BigInt(info.timestamp),
      valueSizeBytes: BigInt(info.valueSizeBytes),
    })),
    nextPageToken: page.nextPageToken,
  };
}
