import { InvalidArgumentError } from 'commander';
import { isWalError } from '../errors.js';
import { parseInstant } from '../state/instant.js';

/**
 * Parsers of option values for commander. Each throws commander's `InvalidArgumentError`, which
 * commander reports as a usage error naming the option (exit code 2).
 */

/** A decimal integer from 0 to 2^53 - 1. */
export function parseNonNegativeInteger(value: string): number {
  const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed)) throw new InvalidArgumentError('expected an integer >= 0.');
  return parsed;
}

/** A decimal integer from 1 to 2^53 - 1. */
export function parsePositiveInteger(value: string): number {
  const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected an integer >= 1.');
  return parsed;
}

/** A decimal integer from 0 to 100 (a percentage). */
export function parsePercent(value: string): number {
  const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed > 100) throw new InvalidArgumentError('expected an integer from 0 to 100.');
  return parsed;
}

/**
 * A point in time: milliseconds since the Unix epoch, or an RFC 3339 date-time
 * (`2024-05-01T12:00:00Z`), by the one parser of instants (src/state/instant.ts).
 */
export function parseTimestamp(value: string): number {
  try {
    return parseInstant(value, 'timestamp');
  } catch (error) {
    if (isWalError(error, 'WAL_INVALID_ARGUMENT')) throw new InvalidArgumentError('expected milliseconds since the epoch or an RFC 3339 date-time (2024-05-01T12:00:00Z).');
    throw error;
  }
}

/** One `name=value` header; collected into a list by repeated options. */
export function collectHeader(value: string, previous: readonly (readonly [string, string])[] = []): (readonly [string, string])[] {
  const equals = value.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError('expected name=value with a non-empty name.');
  return [...previous, [value.slice(0, equals), value.slice(equals + 1)] as const];
}

/** Largest value of a protobuf `uint32` field. */
const MAX_UINT32 = 2 ** 32 - 1;

/** A decimal integer from 1 to 2^32 - 1: the range of a `uint32` request field. */
export function parsePositiveUint32(value: string): number {
  const parsed = parsePositiveInteger(value);
  if (parsed > MAX_UINT32) throw new InvalidArgumentError(`expected an integer from 1 to ${MAX_UINT32}.`);
  return parsed;
}
