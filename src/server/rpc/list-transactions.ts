import type { ListTransactionsRequest, ListTransactionsResponse } from '../../gen/wald/v1/transaction.js';
import { invalidArgument } from '../request-fields.js';
import type { RpcContext } from './rpc-context.js';

/** Transactions a ListTransactions page holds when `page_size` is 0. */
export const LIST_TRANSACTIONS_PAGE_SIZE_DEFAULT = 100;
/** The most transactions a ListTransactions page holds; a larger `page_size` is lowered to it (AIP-158). */
export const LIST_TRANSACTIONS_PAGE_SIZE_MAX = 1000;

/**
 * The ListTransactions RPC: a page of the in-doubt transactions (prepared, neither committed nor
 * aborted), oldest PREPARE first, with their ages (AIP-158 paging).
 *
 * Rejects with `WAL_INVALID_ARGUMENT` for a negative `page_size` (field `page_size`) or a token
 * this server did not issue (field `page_token`), and as Get when the view stopped.
 */
export async function listTransactions(request: ListTransactionsRequest, context: RpcContext): Promise<ListTransactionsResponse> {
  if (request.pageSize < 0) throw invalidArgument('page_size', `must not be negative, got ${request.pageSize}`, { value: request.pageSize });
  const limit = request.pageSize === 0 ? LIST_TRANSACTIONS_PAGE_SIZE_DEFAULT : Math.min(request.pageSize, LIST_TRANSACTIONS_PAGE_SIZE_MAX);
  const page = await context.state.listInDoubt({ limit, pageToken: request.pageToken });
  return {
    transactions: page.transactions.map((txn) => ({
      txnId: Buffer.from(txn.txnIdBase64, 'base64'),
      prepareOffset: BigInt(txn.prepareOffset),
      prepareTimestamp: BigInt(txn.prepareTimestamp),
      ageMs: BigInt(txn.ageMs),
      writeCount: txn.writeCount,
    })),
    nextPageToken: page.nextPageToken,
    inDoubtCount: BigInt(page.inDoubtCount),
  };
}
