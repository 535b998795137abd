import { WalError, type ErrorDetails } from '../errors.js';
import { StorageError } from '../storage/storage.js';

/**
 * Turns a storage failure into the `WalError` an append caller sees: `ENOSPC` (and `EDQUOT`) become
 * `WAL_NO_SPACE`, anything else `WAL_IO_ERROR`, with the original error as `cause`.
 */
export function walErrorFromStorage(error: unknown, what: string, details: ErrorDetails = {}): WalError {
  if (error instanceof WalError) return error;
  const storageError = error instanceof StorageError ? error : undefined;
  const code = storageError?.code ?? 'EUNKNOWN';
  const all = { ...details, errno: code, path: storageError?.path ?? '' };
  if (isNoSpace(error)) return new WalError('WAL_NO_SPACE', `${what}: no space left on device`, all, { cause: error });
  return new WalError('WAL_IO_ERROR', `${what}: ${code}`, all, { cause: error });
}

/** True for out-of-space failures (`ENOSPC`, `EDQUOT`). */
export function isNoSpace(error: unknown): boolean {
  return error instanceof StorageError && (error.code === 'ENOSPC' || error.code === 'EDQUOT');
}
