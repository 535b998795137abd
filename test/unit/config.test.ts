import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  CONFIG_DEFAULTS,
  CONFIG_KEY_NAMES,
  ConfigError,
  engineOptionsOf,
  envName,
  flagName,
  formatConfig,
  parseConfigFile,
  resolveConfig,
  type ConfigKey,
} from '../../src/config.js';
import { WAL_DEFAULTS } from '../../src/engine/wal-options.js';
import { SERVER_DEFAULTS } from '../../src/server/server-options.js';

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `ConfigError expected, got ${String(error)}`);
    return error;
  }
  assert.fail('a ConfigError was expected');
}

describe('resolveConfig', () => {
  it('gives the documented defaults when nothing is set', () => {
    const config = resolveConfig();
    assert.deepEqual({ ...config }, { ...CONFIG_DEFAULTS });
    assert.equal(config.listen, '127.0.0.1:7070');
    assert.equal(config.dataDir, './data');
    assert.equal(config.sync, 'always');
    assert.equal(config.segmentSizeBytes, WAL_DEFAULTS.segmentSizeBytes);
    assert.equal(config.maxBatchBytes, WAL_DEFAULTS.maxBatchBytes);
    assert.equal(config.tailHeartbeatIntervalMs, SERVER_DEFAULTS.tailHeartbeatIntervalMs);
    assert.ok(Object.isFrozen(config));
  });

  it('takes flags over environment over file over defaults, key by key', () => {
    const file = parseConfigFile('dataDir: /from/file\nsyncIntervalMs: 300\nlogLevel: debug\nlisten: 127.0.0.1:1\n', 'wald.yaml');
    const env = { WALD_DATA_DIR: '/from/env', WALD_SYNC_INTERVAL_MS: '200', WALD_LISTEN: '127.0.0.1:2' };
    const flags = { dataDir: '/from/flag', listen: '127.0.0.1:3' };
    const all = resolveConfig({ flags, env, file });
    assert.equal(all.dataDir, '/from/flag');
    assert.equal(all.listen, '127.0.0.1:3');
    assert.equal(all.syncIntervalMs, 200);
    assert.equal(all.logLevel, 'debug');
    assert.equal(all.sync, 'always');
    const noFlags = resolveConfig({ env, file });
    assert.equal(noFlags.dataDir, '/from/env');
    const fileOnly = resolveConfig({ file });
    assert.equal(fileOnly.dataDir, '/from/file');
    assert.equal(fileOnly.syncIntervalMs, 300);
  });

  it('maps every key to one flag and one environment variable derived from its name', () => {
    assert.equal(flagName('dataDir'), '--data-dir');
    assert.equal(envName('dataDir'), 'WALD_DATA_DIR');
    assert.equal(flagName('syncIntervalMs'), '--sync-interval-ms');
    assert.equal(envName('maxTailBatchRecords'), 'WALD_MAX_TAIL_BATCH_RECORDS');
    const flags = new Set(CONFIG_KEY_NAMES.map(flagName));
    const envs = new Set(CONFIG_KEY_NAMES.map(envName));
    assert.equal(flags.size, CONFIG_KEY_NAMES.length);
    assert.equal(envs.size, CONFIG_KEY_NAMES.length);
  });

  it('reads every key from its environment variable', () => {
    const values: Partial<Record<ConfigKey, string>> = { sync: 'interval', preallocate: 'false', maxTailStreams: '7', logLevel: 'warn' };
    const env = Object.fromEntries(Object.entries(values).map(([key, value]) => [envName(key as ConfigKey), value]));
    const config = resolveConfig({ env });
    assert.equal(config.sync, 'interval');
    assert.equal(config.preallocate, false);
    assert.equal(config.maxTailStreams, 7);
    assert.equal(config.logLevel, 'warn');
  });

  it('ignores empty environment variables', () => {
    assert.equal(resolveConfig({ env: { WALD_DATA_DIR: '' } }).dataDir, './data');
  });

  it('names the key and the flag of a bad flag value', () => {
    const error = configError(() => resolveConfig({ flags: { sync: 'sometimes' } }));
    assert.equal(error.key, 'sync');
    assert.match(error.message, /invalid sync \(from flag --sync\): "sometimes" is not one of always, interval, none/);
  });

  it('names the key and the variable of a bad environment value', () => {
    const error = configError(() => resolveConfig({ env: { WALD_SYNC_INTERVAL_MS: '10ms' } }));
    assert.equal(error.key, 'syncIntervalMs');
    assert.match(error.message, /WALD_SYNC_INTERVAL_MS/);
    assert.match(error.message, /not a positive integer/);
  });

  it('names the key and the file of a bad file value', () => {
    const file = parseConfigFile('listen: nowhere\n', '/etc/wald.yaml');
    const error = configError(() => resolveConfig({ file }));
    assert.equal(error.key, 'listen');
    assert.match(error.message, /\/etc\/wald\.yaml key listen/);
  });

  it('refuses zero, negative and fractional integers', () => {
    for (const value of [0, -1, 1.5, '0', '-3', '']) {
      const error = configError(() => resolveConfig({ flags: { maxBatchRecords: value } }));
      assert.equal(error.key, 'maxBatchRecords');
    }
  });

  it('refuses a port above 65535 and accepts bracketed IPv6', () => {
    assert.equal(configError(() => resolveConfig({ flags: { listen: '127.0.0.1:70000' } })).key, 'listen');
    assert.equal(resolveConfig({ flags: { listen: '[::1]:0' } }).listen, '[::1]:0');
  });

  it('names the key when limits conflict across keys', () => {
    const tooSmallSegment = configError(() => resolveConfig({ flags: { segmentSizeBytes: '100' } }));
    assert.equal(tooSmallSegment.key, 'segmentSizeBytes');
    const tooSmallSend = configError(() => resolveConfig({ flags: { maxSendMessageBytes: '1024' } }));
    assert.equal(tooSmallSend.key, 'maxSendMessageBytes');
    const tooSmallReceive = configError(() => resolveConfig({ flags: { maxReceiveMessageBytes: '1024' } }));
    assert.equal(tooSmallReceive.key, 'maxReceiveMessageBytes');
  });
});

describe('engineOptionsOf', () => {
  it('hands every engine option with a default to the engine, from its key', () => {
    const options = engineOptionsOf(resolveConfig({ flags: { maxOpenSegmentFiles: '7' } }));
    assert.deepEqual(Object.keys(options).sort(), Object.keys(WAL_DEFAULTS).sort());
    assert.equal(options.maxOpenSegmentFiles, 7);
  });
});

describe('parseConfigFile', () => {
  it('rejects an unknown key and points snake_case keys to their camelCase form', () => {
    const error = configError(() => parseConfigFile('data_dir: /x\n', 'wald.yaml'));
    assert.equal(error.key, 'data_dir');
    assert.match(error.message, /unknown key data_dir \(keys are camelCase: did you mean dataDir\?\)/);
    assert.match(configError(() => parseConfigFile('colour: blue\n', 'wald.yaml')).message, /unknown key colour$/);
  });

  it('rejects YAML that is not a mapping, and bad YAML', () => {
    assert.match(configError(() => parseConfigFile('- a\n- b\n', 'w.yaml')).message, /must be a mapping/);
    assert.match(configError(() => parseConfigFile('a: [1, 2\n', 'w.yaml')).message, /not valid YAML/);
  });

  it('treats an empty file as no values', () => {
    assert.deepEqual(parseConfigFile('', 'w.yaml').values, {});
  });
});

describe('formatConfig', () => {
  it('prints YAML that resolves back to the same configuration', () => {
    const config = resolveConfig({ flags: { dataDir: '/var/lib/wald', sync: 'interval', preallocate: false, maxTailStreams: '3' } });
    const again = resolveConfig({ file: parseConfigFile(formatConfig(config, 'yaml'), 'printed.yaml') });
    assert.deepEqual({ ...again }, { ...config });
  });

  it('prints JSON with every key', () => {
    const parsed = JSON.parse(formatConfig(resolveConfig(), 'json')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), CONFIG_KEY_NAMES);
  });
});

describe('docs/configuration.md', () => {
  it('lists every key with its flag, environment variable and default', () => {
    const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    const rows = new Map(
      doc
        .split('\n')
        .filter((line) => line.startsWith('| `'))
        .map((line) => [/^\| `([^`]+)`/.exec(line)?.[1], line] as const),
    );
    for (const key of CONFIG_KEY_NAMES) {
      const row = rows.get(key);
      assert.ok(row !== undefined, `docs/configuration.md has no row for ${key}`);
      assert.ok(row.includes(`\`${flagName(key)}\``), `${key}: flag ${flagName(key)} missing`);
      assert.ok(row.includes(`\`${envName(key)}\``), `${key}: env ${envName(key)} missing`);
      assert.ok(row.includes(`\`${String(CONFIG_DEFAULTS[key])}\``), `${key}: default ${String(CONFIG_DEFAULTS[key])} missing`);
    }
    const documented = [...rows.keys()].filter((key) => key !== undefined && /^[a-z][A-Za-z]+$/.test(key));
    assert.deepEqual(documented.sort(), [...CONFIG_KEY_NAMES].sort());
  });
});
