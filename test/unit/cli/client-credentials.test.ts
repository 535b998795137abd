import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { channelCredentialsOf, tokenOf } from '../../../src/cli/client-credentials.js';
import { UsageError } from '../../../src/cli/exit-codes.js';
import { makeTempDir } from '../../support/temp-dir.js';
import { makeTestCa, signTestCertificate } from '../../support/test-certificates.js';

describe('the token of a client command', () => {
  it('comes from --token-file without surrounding whitespace, else from WALD_TOKEN, else there is none', () => {
    const temp = makeTempDir('wald-client-token-');
    try {
      const file = join(temp.dir, 'token');
      writeFileSync(file, '  s3cret-token\n\n');
      assert.equal(tokenOf({ tokenFile: file }, { WALD_TOKEN: 'from-env' }), 's3cret-token', 'the file wins');
      assert.equal(tokenOf({}, { WALD_TOKEN: 'from-env\n' }), 'from-env');
      assert.equal(tokenOf({}, {}), undefined);
      assert.equal(tokenOf({}, { WALD_TOKEN: '' }), undefined, 'an empty variable is unset');
      writeFileSync(file, 'two words\n');
      assert.throws(() => tokenOf({ tokenFile: file }, {}), (error: unknown) => error instanceof UsageError && /does not hold a token/.test(error.message));
      writeFileSync(file, 'x'.repeat(70_000));
      assert.throws(() => tokenOf({ tokenFile: file }, {}), (error: unknown) => error instanceof UsageError && /more than 65536 bytes/.test(error.message));
      assert.throws(() => tokenOf({ tokenFile: join(temp.dir, 'missing') }, {}), (error: unknown) => error instanceof UsageError && /cannot read the token file/.test(error.message));
    } finally {
      temp.remove();
    }
  });
});

describe('the channel credentials of a client command', () => {
  it('are TLS with --tls, WALD_TLS=true or 1, or any TLS file; plaintext otherwise', () => {
    const temp = makeTempDir('wald-client-tls-');
    try {
      const ca = makeTestCa(temp.dir, 'ca');
      const client = signTestCertificate(ca, 'client', 'client');
      assert.equal(channelCredentialsOf({}, {})._isSecure(), false);
      assert.equal(channelCredentialsOf({}, { WALD_TLS: '0' })._isSecure(), false);
      assert.equal(channelCredentialsOf({}, { WALD_TLS: 'false' })._isSecure(), false);
      assert.equal(channelCredentialsOf({ tls: true }, {})._isSecure(), true);
      assert.equal(channelCredentialsOf({}, { WALD_TLS: '1' })._isSecure(), true);
      assert.equal(channelCredentialsOf({ tlsCa: ca.cert }, {})._isSecure(), true);
      assert.equal(channelCredentialsOf({ tlsCert: client.cert, tlsKey: client.key }, {})._isSecure(), true);
      assert.throws(() => channelCredentialsOf({ tlsCert: client.cert }, {}), (error: unknown) => error instanceof UsageError && /together/.test(error.message));
      assert.throws(() => channelCredentialsOf({}, { WALD_TLS: 'yes' }), (error: unknown) => error instanceof UsageError && /WALD_TLS must be/.test(error.message));
      assert.throws(() => channelCredentialsOf({ tlsCa: join(temp.dir, 'none.crt') }, {}), (error: unknown) => error instanceof UsageError && /cannot read the CA file/.test(error.message));
    } finally {
      temp.remove();
    }
  });
});
