import { invalidArgument } from '../errors.js';

/**
 * A `WAL_INVALID_ARGUMENT` error naming the request field at fault (sent as `INVALID_ARGUMENT`
 * with `field` in the ErrorInfo metadata): the one definition, in src/errors.ts.
 */
export { invalidArgument };

/**
 * A uint64 request field (offset, timestamp, sequence) as an engine `number`.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` naming `field` above `Number.MAX_SAFE_INTEGER`: the
 *   engine keeps offsets in doubles, and rounding one would address the wrong record.
 */
export function safeIntegerField(value: bigint, field: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidArgument(field, `must be at most ${Number.MAX_SAFE_INTEGER}, got ${value}`, {
      value: value.toString(),
      limit: Number.MAX_SAFE_INTEGER,
    });
  }
  return Number(value);
}

/**
 * A limit from a request's `max_*` field (records, bytes): 0 means the server's `cap`, and larger
 * values are lowered to it.
 */
export function cappedLimit(requested: number, cap: number): number {
  return requested === 0 ? cap : Math.min(requested, cap);
}
