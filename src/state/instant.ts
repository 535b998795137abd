/**
 * Instants as wald's users write them: the one parser of `--at`, `--from`, `--to` and
 * `--from-timestamp` (and what docs/api.md tells RPC clients to send as `timestamp_ms`), so that a
 * time means the same thing everywhere.
 */
import { invalidArgument } from '../errors.js';

/**
 * RFC 3339 date-time (section 5.6): `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`; `t`, `z`
 * and a space for `T` are allowed, as the RFC's note says.
 */
const RFC_3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Largest instant a JavaScript date holds, in ms since the epoch (about the year 275760). */
export const MAX_INSTANT_MS = 8.64e15;

/**
 * Milliseconds since the Unix epoch of `text`: a decimal integer (epoch milliseconds, 0 to
 * {@link MAX_INSTANT_MS}) or an RFC 3339 date-time (`2026-12-01T17:00:00Z`,
 * `2026-12-01T18:00:00.250+01:00`). Fractions finer than a millisecond are cut (a record's
 * timestamp is whole milliseconds, so the instant `...00.0009Z` holds what `...00.000Z` holds).
 * Instants before 1970 are refused, since record timestamps never are.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` naming `field` for anything else (a date without a time,
 *   a time without an offset, February 30th, a leap second, a number out of range).
 */
export function parseInstant(text: string, field = 'at'): number {
  if (/^\d+$/.test(text)) {
    const ms = Number(text);
    if (!Number.isSafeInteger(ms) || ms > MAX_INSTANT_MS) throw invalidArgument(field, `${text} is out of range for ms since the epoch`, { value: text });
    return ms;
  }
  const match = RFC_3339.exec(text);
  if (match === null) {
    throw invalidArgument(field, `expected ms since the epoch or an RFC 3339 date-time such as 2026-12-01T17:00:00Z, got ${JSON.stringify(text)}`, { value: text });
  }
  const [, year, month, day, hour, minute, second, fraction, zone] = match as unknown as [string, string, string, string, string, string, string, string | undefined, string];
  const parts = [Number(year), Number(month), Number(day), Number(hour), Number(minute), Number(second)] as const;
  const [y, mo, d, h, mi, s] = parts;
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(utc);
  // Date.UTC rolls over (February 30th is March 2nd): a field out of its range shows as a change.
  if (mo < 1 || mo > 12 || check.getUTCDate() !== d || check.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || s > 59 || (y < 100 && check.getUTCFullYear() !== y)) {
    throw invalidArgument(field, `${JSON.stringify(text)} is not a valid date-time`, { value: text });
  }
  const fractionMs = fraction === undefined ? 0 : Math.floor(Number(`0${fraction}`) * 1000);
  let offsetMs = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const zoneHours = Number(zone.slice(1, 3));
    const zoneMinutes = Number(zone.slice(4, 6));
    if (zoneHours > 23 || zoneMinutes > 59) throw invalidArgument(field, `${JSON.stringify(text)} has an invalid UTC offset`, { value: text });
    offsetMs = (zone.startsWith('-') ? -1 : 1) * (zoneHours * 60 + zoneMinutes) * 60_000;
  }
  const ms = utc + fractionMs - offsetMs;
  if (ms < 0 || ms > MAX_INSTANT_MS) throw invalidArgument(field, `${JSON.stringify(text)} is before 1970 or out of range`, { value: text });
  return ms;
}
