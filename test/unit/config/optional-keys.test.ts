/**
 * Keys that are off unless given (the TLS files, the auth file): no default, `none` in the docs,
 * `null` in `--print-config`, which the file reads back as unset; and the rules that tie the TLS
 * files together.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/config/config-error.js';
import { SERVE_CONFIG } from '../../../src/config/serve-config.js';
import { resolveServerOptions } from '../../../src/server/server-options.js';

describe('optional keys', () => {
  it('are unset by default, printed as null, and read back from the printed file as unset', () => {
    const config = SERVE_CONFIG.resolve({});
    assert.equal(config.tlsCert, undefined);
    assert.equal(config.authFile, undefined);
    const printed = SERVE_CONFIG.format(config, 'yaml');
    assert.match(printed, /^tls_cert: null$/m);
    assert.match(printed, /^auth_file: null$/m);
    assert.deepEqual(SERVE_CONFIG.resolve({ file: SERVE_CONFIG.parseFile(printed, 'printed.yaml') }), config);
    assert.equal((JSON.parse(SERVE_CONFIG.format(config, 'json')) as Record<string, unknown>)['tls_client_ca'], null);
  });

  it('take a path from any source; an empty flag or null for a key with a default is refused', () => {
    assert.equal(SERVE_CONFIG.resolve({ env: { WALD_AUTH_FILE: '/etc/wald/auth.yaml' } }).authFile, '/etc/wald/auth.yaml');
    assert.equal(SERVE_CONFIG.resolve({ env: { WALD_AUTH_FILE: '' } }).authFile, undefined, 'an empty variable is unset');
    assert.throws(() => SERVE_CONFIG.resolve({ flags: { auth_file: '' } }), (error: unknown) => error instanceof ConfigError && error.key === 'auth_file');
    assert.throws(
      () => SERVE_CONFIG.resolve({ file: SERVE_CONFIG.parseFile('max_batch_bytes: null\n', 'w.yaml') }),
      (error: unknown) => error instanceof ConfigError && error.key === 'max_batch_bytes',
    );
  });

  it('tie the TLS files together: tls_key with tls_cert, tls_client_ca only with them', () => {
    assert.throws(() => SERVE_CONFIG.resolve({ flags: { tls_cert: 'server.crt' } }), (error: unknown) => error instanceof ConfigError && error.key === 'tls_key');
    assert.throws(() => SERVE_CONFIG.resolve({ flags: { tls_key: 'server.key' } }), (error: unknown) => error instanceof ConfigError && error.key === 'tls_key');
    assert.throws(() => SERVE_CONFIG.resolve({ flags: { tls_client_ca: 'ca.crt' } }), (error: unknown) => error instanceof ConfigError && error.key === 'tls_client_ca');
    const both = SERVE_CONFIG.resolve({ flags: { tls_cert: 'server.crt', tls_key: 'server.key', tls_client_ca: 'ca.crt' } });
    assert.equal(both.tlsClientCa, 'ca.crt');
    assert.throws(() => resolveServerOptions({ tlsKey: 'server.key' }), /server option tlsKey must be given when and only when tlsCert is/);
  });
});
