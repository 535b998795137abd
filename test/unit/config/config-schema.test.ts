/**
 * The derivation of config keys from declarations, on a test-only declaration that has a group
 * (`wald serve` has none yet): names in every source, the nested YAML form, reading and printing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { camelCase, configKeysOf, snakeCase } from '../../../src/config/config-key.js';
import { ConfigSchema } from '../../../src/config/config-schema.js';
import { OptionSet } from '../../../src/options/option-set.js';
import { booleanOption, integerOption, optionGroup, textOption } from '../../../src/options/option-spec.js';
import { configError } from '../../support/config-error.js';

const doc = { unit: 'ms', doc: 'a period', why: 'a test key.' };

const TEST_CONFIG = new ConfigSchema(
  new OptionSet(
    {
      dataDir: textOption({ ...doc, unit: 'path', default: './data' }),
      retentionMs: integerOption({ ...doc, default: 1000 }),
      compaction: optionGroup({
        enabled: booleanOption({ doc: 'compact', why: 'a group member.', default: false }),
        minIntervalMs: integerOption({ ...doc, default: 60_000 }),
      }),
    },
    [
      {
        key: 'compaction.minIntervalMs',
        describe: (name) => `at least ${name('retentionMs')}`,
        check: (values) => (values.compaction.minIntervalMs >= values.retentionMs ? undefined : String(values.retentionMs)),
      },
    ],
  ),
  'TEST_',
);

describe('config key names', () => {
  it('derives every form of a key and of a group member from the option name', () => {
    assert.deepEqual(
      TEST_CONFIG.keys.map(({ name, filePath, flag, env, option }) => ({ name, filePath, flag, env, option: option.name })),
      [
        { name: 'data_dir', filePath: ['data_dir'], flag: '--data-dir', env: 'TEST_DATA_DIR', option: 'dataDir' },
        { name: 'retention_ms', filePath: ['retention_ms'], flag: '--retention-ms', env: 'TEST_RETENTION_MS', option: 'retentionMs' },
        { name: 'compaction.enabled', filePath: ['compaction', 'enabled'], flag: '--compaction-enabled', env: 'TEST_COMPACTION_ENABLED', option: 'compaction.enabled' },
        {
          name: 'compaction.min_interval_ms',
          filePath: ['compaction', 'min_interval_ms'],
          flag: '--compaction-min-interval-ms',
          env: 'TEST_COMPACTION_MIN_INTERVAL_MS',
          option: 'compaction.minIntervalMs',
        },
      ],
    );
  });

  it('turns snake_case back into the camelCase name', () => {
    for (const name of ['maxTailQueueBytes', 'http2WindowBytes', 'listen']) assert.equal(camelCase(snakeCase(name)), name);
  });

  it('refuses keys that would share a flag or a variable', () => {
    const clash = new OptionSet({
      compactionEnabled: booleanOption({ doc: 'x', why: 'x', default: true }),
      compaction: optionGroup({ enabled: booleanOption({ doc: 'x', why: 'x', default: true }) }),
    });
    assert.throws(() => configKeysOf(clash.keys, 'TEST_'), /config keys compaction_enabled and compaction\.enabled share the flag --compaction-enabled/);
  });

  it('refuses a name with no snake_case form that reads back', () => {
    const odd = new OptionSet({ max_bytes: integerOption({ ...doc, default: 1 }) });
    assert.throws(() => configKeysOf(odd.keys, 'TEST_'), /option max_bytes has no snake_case form/);
  });
});

describe('ConfigSchema', () => {
  it('reads a group from a nested mapping in the file', () => {
    const file = TEST_CONFIG.parseFile('data_dir: /x\ncompaction:\n  enabled: true\n  min_interval_ms: 5000\n', 'test.yaml');
    assert.deepEqual([...file.values], [['data_dir', '/x'], ['compaction.enabled', true], ['compaction.min_interval_ms', 5000]]);
    const config = TEST_CONFIG.resolve({ file });
    assert.deepEqual(config, { dataDir: '/x', retentionMs: 1000, compaction: { enabled: true, minIntervalMs: 5000 } });
  });

  it('reads a group member from its flag and its variable, flag first', () => {
    assert.equal(TEST_CONFIG.resolve({ env: { TEST_COMPACTION_ENABLED: 'true' } }).compaction.enabled, true);
    assert.equal(TEST_CONFIG.resolve({ env: { TEST_COMPACTION_ENABLED: 'true' }, flags: { 'compaction.enabled': false } }).compaction.enabled, false);
  });

  it('names a group member, dotted, with its source in errors', () => {
    const fromEnv = configError(() => TEST_CONFIG.resolve({ env: { TEST_COMPACTION_MIN_INTERVAL_MS: 'soon' } }));
    assert.equal(fromEnv.key, 'compaction.min_interval_ms');
    assert.equal(fromEnv.source, 'env TEST_COMPACTION_MIN_INTERVAL_MS');
    assert.equal(fromEnv.message, 'invalid compaction.min_interval_ms (from env TEST_COMPACTION_MIN_INTERVAL_MS): "soon" is not a positive integer');
    const file = TEST_CONFIG.parseFile('compaction:\n  enabled: maybe\n', 't.yaml');
    assert.equal(configError(() => TEST_CONFIG.resolve({ file })).source, 't.yaml key compaction.enabled');
  });

  it('names the key of a rule across keys in snake_case, with the source of its value', () => {
    const fromFlag = configError(() => TEST_CONFIG.resolve({ flags: { retention_ms: '90000' } }));
    assert.equal(fromFlag.key, 'compaction.min_interval_ms');
    assert.equal(fromFlag.source, 'default');
    assert.equal(fromFlag.message, 'invalid compaction.min_interval_ms (from default): 60000 is not at least retention_ms (90000 here)');
    const fromEnv = configError(() => TEST_CONFIG.resolve({ env: { TEST_COMPACTION_MIN_INTERVAL_MS: '10' } }));
    assert.equal(fromEnv.source, 'env TEST_COMPACTION_MIN_INTERVAL_MS');
  });

  it('refuses an unknown group member, a group that is not a mapping, and hints at snake_case', () => {
    const member = configError(() => TEST_CONFIG.parseFile('compaction:\n  minIntervalMs: 5\n', 't.yaml'));
    assert.equal(member.key, 'compaction.minIntervalMs');
    assert.match(member.message, /unknown key compaction\.minIntervalMs \(keys are snake_case: did you mean compaction\.min_interval_ms\?\)/);
    assert.match(configError(() => TEST_CONFIG.parseFile('compaction: true\n', 't.yaml')).message, /compaction must be a mapping/);
    assert.match(configError(() => TEST_CONFIG.parseFile('retention-ms: 5\n', 't.yaml')).message, /did you mean retention_ms\?/);
    const flat = configError(() => TEST_CONFIG.parseFile('compaction.enabled: true\n', 't.yaml'));
    assert.equal(flat.message, "config file t.yaml: unknown key compaction.enabled (a group's keys nest: compaction: { enabled: ... })");
  });

  it('prints groups nested, in a form that reads back as the same configuration', () => {
    const config = TEST_CONFIG.resolve({ flags: { 'compaction.enabled': true, retention_ms: '7' } });
    const yaml = TEST_CONFIG.format(config, 'yaml');
    assert.equal(yaml, 'data_dir: ./data\nretention_ms: 7\ncompaction:\n  enabled: true\n  min_interval_ms: 60000\n');
    assert.deepEqual(TEST_CONFIG.resolve({ file: TEST_CONFIG.parseFile(yaml, 'printed.yaml') }), config);
    assert.deepEqual(JSON.parse(TEST_CONFIG.format(config, 'json')), TEST_CONFIG.fileForm(config));
  });
});
