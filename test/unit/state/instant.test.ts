/** The one parser of instants (instant.ts): epoch milliseconds and RFC 3339 date-times, and what it refuses. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isWalError } from '../../../src/errors.js';
import { parseInstant } from '../../../src/state/instant.js';

describe('parseInstant', () => {
  test('takes epoch milliseconds and RFC 3339 date-times with Z or a UTC offset, cutting sub-millisecond fractions', () => {
    assert.equal(parseInstant('0'), 0);
    assert.equal(parseInstant('1764608400000'), 1764608400000);
    assert.equal(parseInstant('2026-12-01T17:00:00Z'), Date.UTC(2026, 11, 1, 17));
    assert.equal(parseInstant('2026-12-01t17:00:00z'), Date.UTC(2026, 11, 1, 17));
    assert.equal(parseInstant('2026-12-01 17:00:00Z'), Date.UTC(2026, 11, 1, 17));
    assert.equal(parseInstant('2026-12-01T18:30:00.250+01:30'), Date.UTC(2026, 11, 1, 17, 0, 0, 250));
    assert.equal(parseInstant('2026-12-01T12:00:00-05:00'), Date.UTC(2026, 11, 1, 17));
    assert.equal(parseInstant('2026-12-01T17:00:00.0009Z'), Date.UTC(2026, 11, 1, 17));
    assert.equal(parseInstant('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
  });

  test('refuses anything else with WAL_INVALID_ARGUMENT naming the field', () => {
    for (const text of ['', 'yesterday', '2026-12-01', '2026-12-01T17:00:00', '2026-12-01T17:00Z', '2026-02-30T00:00:00Z', '2026-12-01T24:00:00Z', '2026-12-01T23:59:60Z', '2026-13-01T00:00:00Z', '1969-12-31T23:59:59Z', '0070-01-01T00:00:00Z', '2026-12-01T17:00:00+25:00', '-5', '1.5', '99999999999999999999']) {
      assert.throws(() => parseInstant(text, 'at'), (error: unknown) => isWalError(error, 'WAL_INVALID_ARGUMENT') && error.details['field'] === 'at', JSON.stringify(text));
    }
  });
});
