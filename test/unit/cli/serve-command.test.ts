import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { keyFlagOptions, keyFlagValues } from '../../../src/cli/serve-command.js';
import { buildProgram } from '../../../src/cli/program.js';
import { ConfigSchema } from '../../../src/config/config-schema.js';
import { SERVE_CONFIG } from '../../../src/config/serve-config.js';
import { OptionSet } from '../../../src/options/option-set.js';
import { booleanOption, integerOption, optionGroup } from '../../../src/options/option-spec.js';

function serveHelp(): string {
  const serve = buildProgram().commands.find((command) => command.name() === 'serve');
  assert.ok(serve !== undefined);
  return serve.helpInformation();
}

describe('wald serve --help', () => {
  it('lists every key with its flag, unit, doc line, default and environment variable', () => {
    const help = serveHelp().replace(/\s+/g, ' ');
    for (const key of SERVE_CONFIG.keys) {
      const { spec } = key.option;
      const flag = spec.textForm === 'boolean' ? `${key.flag} [true|false]` : `${key.flag} <${spec.unit}>`;
      assert.ok(help.includes(`${flag} ${spec.doc}`), `${key.name}: "${flag} ${spec.doc}" missing`);
      const written = spec.default === undefined ? 'none' : String(spec.default);
      assert.ok(help.includes(`default: ${written}; env ${key.env})`), `${key.name}: default or env missing`);
    }
    assert.ok(help.includes('--no-preallocate'));
    assert.ok(help.includes('--sync-policy <policy> when the log calls fdatasync (one of always, interval, none; default: always; env WALD_SYNC_POLICY)'));
  });
});

describe('the flags of config keys', () => {
  const schema = new ConfigSchema(
    new OptionSet({
      retentionMs: integerOption({ default: 1000, unit: 'ms', doc: 'how long', why: 'a test key.' }),
      compaction: optionGroup({ enabled: booleanOption({ default: false, doc: 'compact', why: 'a test group member.' }) }),
    }),
    'TEST_',
  );

  it('are derived for group members too, and read back by key name', () => {
    const command = new Command('test').exitOverride();
    for (const option of keyFlagOptions(schema)) command.addOption(option);
    assert.match(command.helpInformation().replace(/\s+/g, ' '), /--compaction-enabled \[true\|false\] compact \(default: false; env TEST_COMPACTION_ENABLED\)/);
    assert.match(command.helpInformation(), /--no-compaction-enabled +turn compaction\.enabled off/);
    command.parse(['--compaction-enabled', '--retention-ms', '5'], { from: 'user' });
    assert.deepEqual(keyFlagValues(schema, command.opts()), { retention_ms: '5', 'compaction.enabled': true });
    assert.deepEqual(schema.resolve({ flags: keyFlagValues(schema, command.opts()) }), { retentionMs: 5, compaction: { enabled: true } });
  });

  it('take a boolean as --name, --name=false, --name true and --no-name', () => {
    const enabled = (args: readonly string[]): unknown => {
      const command = new Command('test').exitOverride();
      for (const option of keyFlagOptions(schema)) command.addOption(option);
      command.parse([...args], { from: 'user' });
      return schema.resolve({ flags: keyFlagValues(schema, command.opts()) }).compaction.enabled;
    };
    assert.equal(enabled(['--compaction-enabled']), true);
    assert.equal(enabled(['--compaction-enabled=false']), false);
    assert.equal(enabled(['--compaction-enabled', 'true']), true);
    assert.equal(enabled(['--no-compaction-enabled']), false);
    assert.equal(enabled([]), false);
    assert.throws(() => enabled(['--compaction-enabled=maybe']), /invalid compaction\.enabled \(from flag --compaction-enabled\): "maybe" is not a boolean/);
  });
});
