import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bearerTokenOf, hashAccessToken, isAccessToken } from '../../../src/server/auth/access-token.js';
import { AuthFileError, parseAuthFile } from '../../../src/server/auth/auth-file.js';
import { roleGrants } from '../../../src/server/auth/role.js';

const HASH = hashAccessToken('secret');

describe('the auth file', () => {
  test('reads each entry: the hash as bytes (hex in either case), the role, the name when given', () => {
    const entries = parseAuthFile(`tokens:\n  - token_sha256: ${HASH.toUpperCase()}\n    role: write\n    name: ingest\n  - token_sha256: ${hashAccessToken('other')}\n    role: read\n`, 'a.yaml');
    assert.equal(entries.length, 2);
    assert.equal(entries[0]!.tokenSha256.toString('hex'), HASH);
    assert.equal(entries[0]!.role, 'write');
    assert.equal(entries[0]!.name, 'ingest');
    assert.equal(entries[1]!.name, undefined);
    assert.deepEqual(parseAuthFile('tokens: []\n', 'a.yaml'), [], 'no token: nobody is admitted');
  });

  const bad: readonly (readonly [string, string, RegExp])[] = [
    ['not YAML', 'tokens: [', /not valid YAML/],
    ['not a mapping', '- a\n', /must be a mapping with a list under tokens/],
    ['no tokens list', 'tokens: 3\n', /must be a mapping with a list under tokens/],
    ['another top-level key', 'tokens: []\nusers: []\n', /unknown key users/],
    ['an entry that is not a mapping', 'tokens: [3]\n', /tokens\[0\] must be a mapping/],
    ['an unknown entry key', `tokens:\n  - token_sha256: ${HASH}\n    role: read\n    token: secret\n`, /tokens\[0\]: unknown key token/],
    ['a hash too short', 'tokens:\n  - token_sha256: abcd\n    role: read\n', /tokens\[0\]\.token_sha256 must be 64 hex digits/],
    ['an unknown role', `tokens:\n  - token_sha256: ${HASH}\n    role: root\n`, /tokens\[0\]\.role must be one of read, write, admin, got "root"/],
    ['an empty name', `tokens:\n  - token_sha256: ${HASH}\n    role: read\n    name: ""\n`, /tokens\[0\]\.name must be a non-empty string/],
    ['a hash twice', `tokens:\n  - token_sha256: ${HASH}\n    role: read\n  - token_sha256: ${HASH}\n    role: admin\n`, /tokens\[1\] has the token_sha256 of tokens\[0\]/],
  ];
  for (const [what, text, expected] of bad) {
    test(`refuses ${what}, naming the file and the entry`, () => {
      assert.throws(
        () => parseAuthFile(text, '/etc/wald/auth.yaml'),
        (error: unknown) => error instanceof AuthFileError && error.path === '/etc/wald/auth.yaml' && expected.test(error.message) && error.message.startsWith('auth file /etc/wald/auth.yaml: '),
      );
    });
  }
});

describe('bearer tokens', () => {
  test('hash to the SHA-256 hex of their UTF-8 bytes', () => {
    assert.equal(hashAccessToken('secret'), '2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b');
  });

  test('are printable ASCII without spaces, sent as "Bearer <token>" (the scheme in any case)', () => {
    assert.ok(isAccessToken('a-Z_0.9~!'));
    assert.ok(!isAccessToken(''));
    assert.ok(!isAccessToken('two words'));
    assert.ok(!isAccessToken('é'));
    assert.ok(!isAccessToken('x'.repeat(4097)));
    assert.equal(bearerTokenOf('Bearer abc'), 'abc');
    assert.equal(bearerTokenOf('bearer abc'), 'abc');
    assert.equal(bearerTokenOf('Bearer '), undefined);
    assert.equal(bearerTokenOf('Basic abc'), undefined);
    assert.equal(bearerTokenOf('Bearer a b'), undefined);
  });

  test('roles grant what the roles below them grant', () => {
    assert.ok(roleGrants('admin', 'read') && roleGrants('admin', 'write') && roleGrants('admin', 'admin'));
    assert.ok(roleGrants('write', 'read') && roleGrants('write', 'write') && !roleGrants('write', 'admin'));
    assert.ok(roleGrants('read', 'read') && !roleGrants('read', 'write') && !roleGrants('read', 'admin'));
  });
});
