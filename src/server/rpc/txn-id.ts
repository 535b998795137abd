import { invalidArgument } from '../request-fields.js';

/**
 * The `txn_id` of a Prepare, Commit or Abort request, which must not be empty (proto3 cannot tell
 * an unset bytes field from an empty one, and an empty id is refused everywhere).
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` (field `txn_id`) when it is empty.
 */
export function txnIdOf(txnId: Uint8Array): Uint8Array {
  if (txnId.length === 0) throw invalidArgument('txn_id', 'a transaction id is required');
  return txnId;
}
