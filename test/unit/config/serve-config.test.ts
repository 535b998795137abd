import assert from 'node:assert/strict';
import { FOLLOWER_OPTIONS } from '../../../src/replication/follower-options.js';
import { describe, it } from 'node:test';
import { engineOptionsOf, SERVE_CONFIG, SERVE_OPTIONS, serverOptionsOf, stateOptionsOf } from '../../../src/config/serve-config.js';
import { STORAGE_OPTION_DECLARATIONS } from '../../../src/engine/storage-options.js';
import { resolveWalOptions, WAL_DEFAULTS, WAL_OPTIONS } from '../../../src/engine/wal-options.js';
import type { OptionKey } from '../../../src/options/option-set.js';
import { resolveServerOptions, SERVER_DEFAULTS, SERVER_OPTIONS } from '../../../src/server/server-options.js';
import { resolveStateOptions, snapshotDirOf, STATE_OPTIONS } from '../../../src/state/state-options.js';
import { MemDisk } from '../../support/mem-disk.js';
import { configError } from '../../support/config-error.js';

const resolveConfig = SERVE_CONFIG.resolve.bind(SERVE_CONFIG);
const parseConfigFile = SERVE_CONFIG.parseFile.bind(SERVE_CONFIG);
const keyNames = SERVE_CONFIG.keys.map((key) => key.name);

/** A valid value other than the default, for every key the engine or server declares. */
function otherValue(option: OptionKey): unknown {
  const { spec } = option;
  if (spec.choices !== undefined) return spec.choices.find((choice) => choice !== spec.default);
  if (typeof spec.default === 'boolean') return !spec.default;
  if (typeof spec.default === 'number') return spec.isValid(spec.default + 4096) ? spec.default + 4096 : spec.default - 1;
  if (option.name === 'listen' || option.name === 'metricsListen') return '127.0.0.1:0';
  if (option.name === 'follow') return '127.0.0.1:7171';
  return `${String(spec.default)}-other`;
}

/** The value of the option named `name` (`a`, or `group.a` for an option of a group) in `values`. */
function valueAt(values: object, name: string): unknown {
  return name.split('.').reduce<unknown>((value, part) => (value as Readonly<Record<string, unknown>> | undefined)?.[part], values);
}

/** The key names of `values`, groups flattened (`compaction.enabled`). */
function flatNames(values: object, prefix = ''): string[] {
  return Object.entries(values).flatMap(([name, value]) =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? flatNames(value as object, `${prefix}${name}.`) : [`${prefix}${name}`],
  );
}

describe('the keys of wald serve', () => {
  it('are the engine options, the storage options, the key-value view options, the server options, the follower options, data_dir and log_level, once each', () => {
    const options = SERVE_OPTIONS.keys.map((key) => key.name).sort();
    const composed = [...WAL_OPTIONS.keys, ...STATE_OPTIONS.keys, ...SERVER_OPTIONS.keys, ...FOLLOWER_OPTIONS.keys]
      .map((key) => key.name)
      .concat('dataDir', ...Object.keys(STORAGE_OPTION_DECLARATIONS), 'logLevel')
      .sort();
    assert.deepEqual(options, composed);
    assert.equal(new Set(keyNames).size, keyNames.length);
  });

  it('have one name per key in every source, derived from the option name', () => {
    const byName = new Map(SERVE_CONFIG.keys.map((key) => [key.name, key]));
    const syncPolicy = byName.get('sync_policy');
    assert.deepEqual(
      { flag: syncPolicy?.flag, env: syncPolicy?.env, option: syncPolicy?.option.name },
      { flag: '--sync-policy', env: 'WALD_SYNC_POLICY', option: 'syncPolicy' },
    );
    assert.equal(byName.get('max_tail_batch_records')?.env, 'WALD_MAX_TAIL_BATCH_RECORDS');
    assert.equal(byName.get('data_dir')?.flag, '--data-dir');
    assert.equal(byName.get('sync'), undefined);
  });
});

describe('resolving the configuration of wald serve', () => {
  it('gives the documented defaults when nothing is set', () => {
    const config = resolveConfig();
    assert.deepEqual(config, SERVE_OPTIONS.defaults);
    assert.equal(config.listen, '127.0.0.1:7070');
    assert.equal(config.dataDir, './data');
    assert.equal(config.syncPolicy, 'always');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.segmentSizeBytes, 64 * 1024 * 1024);
    assert.equal(config.maxBatchBytes, WAL_DEFAULTS.maxBatchBytes);
    assert.equal(config.tailHeartbeatIntervalMs, SERVER_DEFAULTS.tailHeartbeatIntervalMs);
    assert.equal(config.maxTailQueueBytes, 8 * 1024 * 1024);
    assert.ok(Object.isFrozen(config));
  });

  it('takes flags over environment over file over defaults, key by key', () => {
    const file = parseConfigFile('data_dir: /from/file\nsync_interval_ms: 300\nlog_level: debug\nlisten: 127.0.0.1:1\n', 'wald.yaml');
    const env = { WALD_DATA_DIR: '/from/env', WALD_SYNC_INTERVAL_MS: '200', WALD_LISTEN: '127.0.0.1:2' };
    const flags = { data_dir: '/from/flag', listen: '127.0.0.1:3' };
    const all = resolveConfig({ flags, env, file });
    assert.equal(all.dataDir, '/from/flag');
    assert.equal(all.listen, '127.0.0.1:3');
    assert.equal(all.syncIntervalMs, 200);
    assert.equal(all.logLevel, 'debug');
    assert.equal(all.syncPolicy, 'always');
    assert.equal(resolveConfig({ env, file }).dataDir, '/from/env');
    const fileOnly = resolveConfig({ file });
    assert.equal(fileOnly.dataDir, '/from/file');
    assert.equal(fileOnly.syncIntervalMs, 300);
  });

  it('reads every key from its environment variable', () => {
    const values = new Map(SERVE_CONFIG.keys.map((key) => [key, otherValue(key.option)]));
    const env = Object.fromEntries([...values].map(([key, value]) => [key.env, String(value)]));
    const config = resolveConfig({ env });
    for (const [key, value] of values) assert.equal(valueAt(config, key.option.name), value, key.env);
  });

  it('ignores empty environment variables', () => {
    assert.equal(resolveConfig({ env: { WALD_DATA_DIR: '' } }).dataDir, './data');
  });

  it('names the key and the flag of a bad flag value', () => {
    const error = configError(() => resolveConfig({ flags: { sync_policy: 'sometimes' } }));
    assert.equal(error.key, 'sync_policy');
    assert.equal(error.source, 'flag --sync-policy');
    assert.equal(error.message, 'invalid sync_policy (from flag --sync-policy): "sometimes" is not one of always, interval, none');
  });

  it('names the key and the variable of a bad environment value', () => {
    const error = configError(() => resolveConfig({ env: { WALD_SYNC_INTERVAL_MS: '10ms' } }));
    assert.equal(error.key, 'sync_interval_ms');
    assert.equal(error.source, 'env WALD_SYNC_INTERVAL_MS');
    assert.equal(error.message, 'invalid sync_interval_ms (from env WALD_SYNC_INTERVAL_MS): "10ms" is not a positive integer');
  });

  it('names the key and the file of a bad file value', () => {
    const error = configError(() => resolveConfig({ file: parseConfigFile('listen: nowhere\n', '/etc/wald.yaml') }));
    assert.equal(error.key, 'listen');
    assert.equal(error.source, '/etc/wald.yaml key listen');
    assert.match(error.message, /^invalid listen \(from \/etc\/wald\.yaml key listen\): "nowhere" is not host:port/);
    const boolean = configError(() => resolveConfig({ file: parseConfigFile('preallocate: sometimes\n', 'w.yaml') }));
    assert.equal(boolean.key, 'preallocate');
  });

  it('refuses zero, negative and fractional integers', () => {
    for (const value of [0, -1, 1.5, '0', '-3', '', '1e3']) {
      assert.equal(configError(() => resolveConfig({ flags: { max_batch_records: value } })).key, 'max_batch_records');
    }
  });

  it('refuses a port above 65535 and accepts bracketed IPv6', () => {
    assert.equal(configError(() => resolveConfig({ flags: { listen: '127.0.0.1:70000' } })).key, 'listen');
    assert.equal(resolveConfig({ flags: { listen: '[::1]:0' } }).listen, '[::1]:0');
  });

  it('checks the bounds of a key, naming it', () => {
    const error = configError(() => resolveConfig({ flags: { segment_size_bytes: '100' } }));
    assert.equal(error.key, 'segment_size_bytes');
    assert.match(error.message, /100 is not an integer from 4096 to 2147483648/);
    assert.equal(configError(() => resolveConfig({ env: { WALD_RECEIVE_WINDOW_BYTES: '1024' } })).key, 'receive_window_bytes');
  });

  it('names the key, and where its value came from, when limits conflict across keys', () => {
    const tooSmallSend = configError(() => resolveConfig({ flags: { max_send_message_bytes: '1024' } }));
    assert.equal(tooSmallSend.key, 'max_send_message_bytes');
    assert.equal(
      tooSmallSend.message,
      'invalid max_send_message_bytes (from flag --max-send-message-bytes): 1024 is not at least ' +
        'max(max_response_bytes, max_record_bytes) + 256 KiB of framing (3407872 here)',
    );
    const tooSmallReceive = configError(() => resolveConfig({ env: { WALD_MAX_RECEIVE_MESSAGE_BYTES: '1024' } }));
    assert.equal(tooSmallReceive.key, 'max_receive_message_bytes');
    assert.equal(tooSmallReceive.source, 'env WALD_MAX_RECEIVE_MESSAGE_BYTES');
    // The other key was raised; the one left at its default is the one to change.
    const bigBatches = configError(() => resolveConfig({ file: parseConfigFile('max_batch_bytes: 8388608\n', 'w.yaml') }));
    assert.equal(bigBatches.key, 'max_receive_message_bytes');
    assert.equal(bigBatches.source, 'default');
    assert.match(bigBatches.message, /^invalid max_receive_message_bytes \(from default\): 5242880 is not at least max_batch_bytes \+ 256 KiB of framing \(8650752 here\)$/);
  });
});

describe('engineOptionsOf, stateOptionsOf and serverOptionsOf', () => {
  const flags = Object.fromEntries(SERVE_CONFIG.keys.map((key) => [key.name, otherValue(key.option)]));
  // Other values of everything but the message sizes, which must then stay large enough.
  const config = resolveConfig({ flags: { ...flags, max_send_message_bytes: String(64 << 20), max_receive_message_bytes: String(64 << 20) } });

  it('hands every engine option to the engine, from its key', () => {
    const options = engineOptionsOf(config);
    assert.deepEqual(Object.keys(options), WAL_OPTIONS.keys.map((key) => key.name));
    const resolved = resolveWalOptions({ dir: '/wal', ...options }, () => new MemDisk().mount());
    for (const key of WAL_OPTIONS.keys) {
      const name = key.name as keyof typeof options;
      assert.notEqual(resolved[name], WAL_DEFAULTS[name], `${key.name} is still its default`);
      assert.equal(resolved[name], config[name], key.name);
    }
  });

  it('hands every option of the key-value view to the view, from its key', () => {
    const options = stateOptionsOf(config);
    assert.deepEqual(flatNames(options), STATE_OPTIONS.keys.map((key) => key.name));
    const resolved = resolveStateOptions(options);
    for (const key of STATE_OPTIONS.keys) {
      assert.notEqual(valueAt(resolved, key.name), valueAt(STATE_OPTIONS.defaults, key.name), `${key.name} is still its default`);
      assert.equal(valueAt(resolved, key.name), valueAt(config, key.name), key.name);
    }
  });

  it('takes a relative snapshot_dir inside the data directory and an absolute one as it is', () => {
    assert.equal(snapshotDirOf('/var/lib/wald', resolveConfig().snapshotDir), '/var/lib/wald/snapshots');
    assert.equal(snapshotDirOf('./data', 'snaps/v1'), 'data/snaps/v1');
    assert.equal(snapshotDirOf('./data', '/backup/snaps'), '/backup/snaps');
  });

  it('hands every server option to the server, and the log limits it checks them against', () => {
    const options = serverOptionsOf(config);
    const resolved = resolveServerOptions(options);
    for (const key of SERVER_OPTIONS.keys) {
      // Dotted names for the members of a group (`replication.max_followers`).
      assert.notEqual(valueAt(resolved, key.name), valueAt(SERVER_DEFAULTS, key.name), `${key.name} is still its default`);
      assert.equal(valueAt(resolved, key.name), valueAt(config, key.name), key.name);
    }
    assert.deepEqual(resolved.appendLimits, {
      maxRecordBytes: config.maxRecordBytes,
      maxBatchBytes: config.maxBatchBytes,
      maxBatchRecords: config.maxBatchRecords,
    });
  });
});

describe('the config file of wald serve', () => {
  it('rejects an unknown key and points camelCase and kebab-case keys to their snake_case form', () => {
    const camel = configError(() => parseConfigFile('dataDir: /x\n', 'wald.yaml'));
    assert.equal(camel.key, 'dataDir');
    assert.equal(camel.message, 'config file wald.yaml: unknown key dataDir (keys are snake_case: did you mean data_dir?)');
    assert.match(configError(() => parseConfigFile('max-batch-bytes: 5\n', 'wald.yaml')).message, /did you mean max_batch_bytes\?/);
    assert.match(configError(() => parseConfigFile('colour: blue\n', 'wald.yaml')).message, /unknown key colour$/);
    assert.match(configError(() => parseConfigFile('sync: none\n', 'wald.yaml')).message, /unknown key sync$/);
  });

  it('rejects YAML that is not a mapping, and bad YAML', () => {
    assert.match(configError(() => parseConfigFile('- a\n- b\n', 'w.yaml')).message, /must be a mapping/);
    assert.match(configError(() => parseConfigFile('a: [1, 2\n', 'w.yaml')).message, /not valid YAML/);
  });

  it('treats an empty file as no values', () => {
    assert.equal(parseConfigFile('', 'w.yaml').values.size, 0);
  });
});

describe('printing the configuration', () => {
  it('prints YAML with snake_case keys that resolves back to the same configuration', () => {
    const config = resolveConfig({ flags: { data_dir: '/var/lib/wald', sync_policy: 'interval', preallocate: false, max_tail_streams: '3' } });
    const yaml = SERVE_CONFIG.format(config, 'yaml');
    assert.match(yaml, /^listen: 127\.0\.0\.1:7070\ndata_dir: \/var\/lib\/wald\nstorage: disk\nmax_memory_storage_bytes: 0\nsync_policy: interval\n/);
    assert.deepEqual(resolveConfig({ file: parseConfigFile(yaml, 'printed.yaml') }), config);
  });

  it('prints JSON with every key', () => {
    const parsed = JSON.parse(SERVE_CONFIG.format(resolveConfig(), 'json')) as Record<string, unknown>;
    assert.deepEqual(flatNames(parsed), keyNames);
  });
});
