/**
 * A configuration that cannot be used: a bad value, an unknown key, a file that does not parse.
 * `key` names the config key (`sync_interval_ms`; undefined when the whole file is wrong) and
 * `source` where the value came from (`flag --sync-interval-ms`, `env WALD_SYNC_INTERVAL_MS`,
 * `wald.yaml key sync_interval_ms`, `default`).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    readonly key: string | undefined,
    readonly source: string,
    message: string,
  ) {
    super(message);
  }
}
