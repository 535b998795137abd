/**
 * Pages of in-doubt transactions (ListTransactions, AIP-158): oldest PREPARE first; the page token
 * names the prepare offset of the last transaction returned, so the next page goes on after it
 * in the table as it is then (transactions ended between pages vanish, new ones come last).
 */
import { invalidArgument } from '../errors.js';
import type { InDoubtTxn } from './txn-table.js';

const TOKEN_VERSION = 't1.';

/** One page of in-doubt transactions. */
export interface TxnPage {
  readonly transactions: readonly InDoubtTxn[];
  /** Continues the listing; empty when this is the last page. */
  readonly nextPageToken: string;
}

/**
 * The page of `inDoubt` (oldest PREPARE first) after the token's, at most `limit` long.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` (field `page_token`) for a token this code did not make;
 *   `RangeError` for a limit that is not a positive integer.
 */
export function txnPage(inDoubt: readonly InDoubtTxn[], options: { readonly limit: number; readonly pageToken?: string | undefined }): TxnPage {
  const { limit } = options;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const after = options.pageToken === undefined || options.pageToken === '' ? -1 : decodeToken(options.pageToken);
  let start = 0;
  while (start < inDoubt.length && inDoubt[start]!.prepareOffset <= after) start++;
  const transactions = inDoubt.slice(start, start + limit);
  const isLast = start + limit >= inDoubt.length;
  return { transactions, nextPageToken: isLast ? '' : encodeToken(transactions[transactions.length - 1]!.prepareOffset) };
}

function encodeToken(prepareOffset: number): string {
  return Buffer.from(`${TOKEN_VERSION}${prepareOffset}`, 'latin1').toString('base64url');
}

function decodeToken(token: string): number {
  const text = Buffer.from(token, 'base64url').toString('latin1');
  const digits = text.startsWith(TOKEN_VERSION) ? text.slice(TOKEN_VERSION.length) : '';
  const offset = /^\d{1,16}$/.test(digits) ? Number(digits) : Number.NaN;
  if (!Number.isSafeInteger(offset) || Buffer.from(text, 'latin1').toString('base64url') !== token) {
    throw invalidArgument('page_token', 'not a page token of ListTransactions');
  }
  return offset;
}
