/**
 * The `ConfigError` a configuration call throws, for tests that check which key and source it names.
 */
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/config-error.js';

/** Runs `run` and returns the `ConfigError` it throws; fails the test when it throws anything else or nothing. */
export function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `ConfigError expected, got ${String(error)}`);
    return error;
  }
  assert.fail('a ConfigError was expected');
}
