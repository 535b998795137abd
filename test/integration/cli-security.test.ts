/**
 * The `wald` command against a `wald serve` child with TLS, mutual TLS and an auth file: client
 * commands with `--tls-*` and `--token-file` (and their `WALD_*` variables), refusals printed with
 * their reason, `wald auth hash-token`, and SIGHUP: new certificates and tokens for new
 * connections while a `wald tail` opened before goes on.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hashAccessToken } from '../../src/server/auth/access-token.js';
import { ChildOutput, cleanEnv, parseLog, runWald, spawnWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { makeTestCa, signTestCertificate } from '../support/test-certificates.js';

const isListening = (line: string): boolean => parseLog(line)?.msg === 'wald listening';

function authFileText(entries: readonly (readonly [token: string, role: string])[]): string {
  return `tokens:\n${entries.map(([token, role]) => `  - token_sha256: ${hashAccessToken(token)}\n    role: ${role}\n`).join('')}`;
}

describe('wald auth hash-token', () => {
  it('prints the SHA-256 of the token on stdin, without its surrounding whitespace; refuses no token with exit 2', async () => {
    const run = await runWald(['auth', 'hash-token'], { input: 'secret\n' });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n');
    const json = await runWald(['auth', 'hash-token', '--json'], { input: '  secret  ' });
    assert.deepEqual(JSON.parse(json.stdout), { token_sha256: hashAccessToken('secret') });
    const empty = await runWald(['auth', 'hash-token'], { input: '\n' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /stdin does not hold a token/);
  });
});

describe('wald client commands with TLS and tokens', { timeout: 180_000 }, () => {
  it('talk to a TLS + mutual TLS + auth server with --tls-* and --token-file or WALD_*; SIGHUP rotates certificates and tokens while a tail goes on', async () => {
    const temp = makeTempDir('wald-cli-security-');
    const oldCa = makeTestCa(temp.dir, 'old-ca');
    const newCa = makeTestCa(temp.dir, 'new-ca');
    const oldServer = signTestCertificate(oldCa, 'old-server', 'server');
    const newServer = signTestCertificate(newCa, 'new-server', 'server');
    const oldClient = signTestCertificate(oldCa, 'old-client', 'client');
    const newClient = signTestCertificate(newCa, 'new-client', 'client');
    const live = { cert: join(temp.dir, 'tls.crt'), key: join(temp.dir, 'tls.key'), clientCa: join(temp.dir, 'client-ca.crt'), auth: join(temp.dir, 'auth.yaml') };
    copyFileSync(oldServer.cert, live.cert);
    copyFileSync(oldServer.key, live.key);
    copyFileSync(oldCa.cert, live.clientCa);
    writeFileSync(live.auth, authFileText([['writer-1', 'write'], ['reader-1', 'read']]));
    const tokenFile = (name: string, token: string): string => {
      const path = join(temp.dir, name);
      writeFileSync(path, `${token}\n`);
      return path;
    };
    const writerFile = tokenFile('writer.token', 'writer-1');
    const readerFile = tokenFile('reader.token', 'reader-1');

    const server = spawnWald([
      'serve', '--listen', '127.0.0.1:0', '--data-dir', join(temp.dir, 'data'), '--segment-size-bytes', '1048576',
      '--tls-cert', live.cert, '--tls-key', live.key, '--tls-client-ca', live.clientCa, '--auth-file', live.auth,
    ]);
    const serverOutput = new ChildOutput(server);
    server.stdin.end();
    let tail: ReturnType<typeof spawnWald> | undefined;
    try {
      const listening = parseLog(await serverOutput.waitForLine(isListening));
      assert.equal(listening?.['tls'], 'mutual');
      assert.equal(listening?.['auth'], true);
      const address = listening?.['address'] as string;
      const oldTls = ['--server', address, '--tls-ca', oldCa.cert, '--tls-cert', oldClient.cert, '--tls-key', oldClient.key];

      const appended = await runWald(['append', ...oldTls, '--token-file', writerFile, 'one']);
      assert.equal(appended.code, 0, appended.stderr);
      const noToken = await runWald(['append', ...oldTls, 'two']);
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /UNAUTHENTICATED \(WAL_UNAUTHENTICATED\)/);
      const reader = await runWald(['append', ...oldTls, '--token-file', readerFile, '--json', 'two']);
      assert.equal(reader.code, 1);
      assert.equal((JSON.parse(reader.stderr) as { error: { reason: string; metadata: Record<string, string> } }).error.reason, 'WAL_PERMISSION_DENIED');
      const plaintext = await runWald(['stats', '--server', address, '--token-file', readerFile, '--timeout-ms', '20000']);
      assert.equal(plaintext.code, 1, 'plaintext is refused');
      assert.match(plaintext.stderr, /UNAVAILABLE/);
      const fromEnv = await runWald(['read', '--server', address, '--json'], {
        env: cleanEnv({ WALD_TLS_CA: oldCa.cert, WALD_TLS_CERT: oldClient.cert, WALD_TLS_KEY: oldClient.key, WALD_TOKEN: 'reader-1' }),
      });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      assert.match(fromEnv.stdout, /"value":"one"/);

      tail = spawnWald(['tail', '--json', ...oldTls, '--token-file', readerFile]);
      const tailOutput = new ChildOutput(tail);
      tail.stdin.end();
      await tailOutput.waitForLine((line) => line.includes('"value":"one"'));

      copyFileSync(newServer.cert, live.cert);
      copyFileSync(newServer.key, live.key);
      copyFileSync(newCa.cert, live.clientCa);
      writeFileSync(live.auth, authFileText([['writer-2', 'write'], ['reader-1', 'read']]));
      const reloaded = serverOutput.waitForLine((line) => parseLog(line)?.msg === 'auth file reloaded');
      const certificateReloaded = serverOutput.waitForLine((line) => parseLog(line)?.msg === 'TLS certificate reloaded');
      server.kill('SIGHUP');
      await Promise.all([reloaded, certificateReloaded]);

      const newTls = ['--server', address, '--tls-ca', newCa.cert, '--tls-cert', newClient.cert, '--tls-key', newClient.key];
      const oldWriter = await runWald(['append', ...newTls, '--token-file', writerFile, 'refused']);
      assert.equal(oldWriter.code, 1, 'the removed token is refused');
      assert.match(oldWriter.stderr, /WAL_UNAUTHENTICATED/);
      const newWriter = await runWald(['append', ...newTls, '--token-file', tokenFile('writer2.token', 'writer-2'), 'after-rotation']);
      assert.equal(newWriter.code, 0, newWriter.stderr);
      await tailOutput.waitForLine((line) => line.includes('"value":"after-rotation"'));
      const oldCaClient = await runWald(['stats', ...oldTls, '--token-file', readerFile, '--timeout-ms', '20000']);
      assert.equal(oldCaClient.code, 1, 'a new connection trusting only the old CA is refused');

      tail.kill('SIGTERM');
      assert.equal((await tailOutput.exited).code, 0, 'the tail went on until stopped');
      tail = undefined;
      server.kill('SIGTERM');
      const run = await serverOutput.exited;
      assert.equal(run.code, 0, run.stderr);
      const logged = run.stdout;
      for (const token of ['writer-1', 'writer-2', 'reader-1']) assert.ok(!logged.includes(token), 'no token in the server log');
      assert.ok(serverOutput.lines.some((line) => parseLog(line)?.msg === 'authentication failed'));
    } finally {
      tail?.kill('SIGKILL');
      if (server.exitCode === null) server.kill('SIGKILL');
      await serverOutput.exited.catch(() => undefined);
      temp.remove();
    }
  });

  it('refuses a server start whose TLS files do not load, with exit 1 naming the file', async () => {
    const temp = makeTempDir('wald-cli-security-');
    try {
      const missing = join(temp.dir, 'missing.crt');
      const run = await runWald(['serve', '--listen', '127.0.0.1:0', '--data-dir', join(temp.dir, 'data'), '--tls-cert', missing, '--tls-key', missing]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /cannot start: cannot read the TLS certificate \(tls_cert\) .*missing\.crt/);
      const half = await runWald(['serve', '--print-config', '--tls-cert', missing]);
      assert.equal(half.code, 2);
      assert.match(half.stderr, /invalid tls_key/);
    } finally {
      temp.remove();
    }
  });
});
