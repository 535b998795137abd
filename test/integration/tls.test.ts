/**
 * TLS and mutual TLS on a real server with certificates made for the test (`openssl`): a
 * plaintext client is refused, a client that does not trust the server's CA is refused, under
 * mutual TLS a client without a certificate (or with one another CA signed) is refused, and good
 * clients work. `reloadSecurity()` (SIGHUP in `wald serve`) swaps the certificate for new
 * connections while a tail opened before goes on; files that do not load keep the old ones.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { credentials, Metadata, status, type ChannelCredentials } from '@grpc/grpc-js';
import { isServiceError } from '../../src/client/rpc-error-info.js';
import { WalClient, WalClientError } from '../../src/client/wal-client.js';
import { hashAccessToken } from '../../src/server/auth/access-token.js';
import { AppendRequest } from '../../src/gen/wald/v1/append.js';
import { TailWalRequest, type TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { makeTempDir } from '../support/temp-dir.js';
import { makeTestCa, signTestCertificate, type CertificateFiles, type TestCa } from '../support/test-certificates.js';
import { startServer, StreamReader } from './support/harness.js';

/** What a client presents and trusts; every client has a connection of its own. */
interface ClientTls {
  readonly trust?: TestCa;
  readonly identity?: CertificateFiles;
}

function channelCredentials(tls: ClientTls | 'plaintext'): ChannelCredentials {
  if (tls === 'plaintext') return credentials.createInsecure();
  return credentials.createSsl(
    tls.trust === undefined ? null : readFileSync(tls.trust.cert),
    tls.identity === undefined ? null : readFileSync(tls.identity.key),
    tls.identity === undefined ? null : readFileSync(tls.identity.cert),
  );
}

function clientOf(address: string, tls: ClientTls | 'plaintext'): WalServiceClient {
  return new WalServiceClient(address, channelCredentials(tls), { 'grpc.use_local_subchannel_pool': 1 });
}

/** GetStats through a new client of its own; resolves with the status code (OK or the failure). */
async function statsCode(address: string, tls: ClientTls | 'plaintext'): Promise<status> {
  const client = clientOf(address, tls);
  try {
    await new Promise<GetStatsResponse>((resolve, reject) =>
      client.getStats({}, new Metadata(), { deadline: Date.now() + 20_000 }, (error, response) => (error === null ? resolve(response) : reject(error))),
    );
    return status.OK;
  } catch (error) {
    assert.ok(isServiceError(error), String(error));
    return error.code;
  } finally {
    client.close();
  }
}

function append(client: WalServiceClient, value: string): Promise<void> {
  return new Promise((resolve, reject) => client.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from(value) }] }), (error) => (error === null ? resolve() : reject(error))));
}

/** The next message of a tail that carries records, skipping heartbeats (at most `limit` messages). */
async function nextRecords(reader: StreamReader<TailWalResponse>, limit = 100): Promise<string[]> {
  for (let i = 0; i < limit; i++) {
    const message = await reader.next();
    if (message.records.length > 0) return message.records.map((record) => Buffer.from(record.value).toString());
  }
  throw new Error(`no records within ${limit} messages`);
}

describe('TLS', { timeout: 120_000 }, () => {
  test('TLS only: a TLS client that trusts the CA works; plaintext and clients trusting another CA are refused', async () => {
    const temp = makeTempDir('wald-tls-');
    const ca = makeTestCa(temp.dir, 'ca');
    const otherCa = makeTestCa(temp.dir, 'other-ca');
    const server = signTestCertificate(ca, 'server', 'server');
    const h = await startServer({ server: { tlsCert: server.cert, tlsKey: server.key } });
    try {
      assert.equal(await statsCode(h.address, { trust: ca }), status.OK);
      assert.equal(await statsCode(h.address, 'plaintext'), status.UNAVAILABLE, 'plaintext is refused');
      assert.equal(await statsCode(h.address, { trust: otherCa }), status.UNAVAILABLE, "a client that does not trust the server's CA");
      const listening = h.logLines.find((line) => line['msg'] === 'wald listening');
      assert.equal(listening?.['tls'], 'on');
    } finally {
      await h.close();
      temp.remove();
    }
  });

  test('mutual TLS: a client with a certificate the client CA signed works; without one, or with one of another CA, it is refused', async () => {
    const temp = makeTempDir('wald-tls-');
    const ca = makeTestCa(temp.dir, 'ca');
    const clientCa = makeTestCa(temp.dir, 'client-ca');
    const otherCa = makeTestCa(temp.dir, 'other-ca');
    const server = signTestCertificate(ca, 'server', 'server');
    const goodClient = signTestCertificate(clientCa, 'client', 'client');
    const strangerClient = signTestCertificate(otherCa, 'stranger', 'client');
    const h = await startServer({ server: { tlsCert: server.cert, tlsKey: server.key, tlsClientCa: clientCa.cert } });
    try {
      assert.equal(await statsCode(h.address, { trust: ca, identity: goodClient }), status.OK);
      assert.equal(await statsCode(h.address, { trust: ca }), status.UNAVAILABLE, 'no client certificate');
      assert.equal(await statsCode(h.address, { trust: ca, identity: strangerClient }), status.UNAVAILABLE, 'a certificate of another CA');
      assert.equal(await statsCode(h.address, 'plaintext'), status.UNAVAILABLE, 'plaintext');
      assert.equal(h.logLines.find((line) => line['msg'] === 'wald listening')?.['tls'], 'mutual');
    } finally {
      await h.close();
      temp.remove();
    }
  });

  test('reloadSecurity: new connections get the new certificate and client CA, a tail opened before goes on; files that do not load keep the old ones', async () => {
    const temp = makeTempDir('wald-tls-');
    const oldCa = makeTestCa(temp.dir, 'old-ca');
    const newCa = makeTestCa(temp.dir, 'new-ca');
    const oldServer = signTestCertificate(oldCa, 'old-server', 'server');
    const newServer = signTestCertificate(newCa, 'new-server', 'server');
    const oldClient = signTestCertificate(oldCa, 'old-client', 'client');
    const newClient = signTestCertificate(newCa, 'new-client', 'client');
    // The files the server is configured with; rotation overwrites them in place.
    const live = { cert: join(temp.dir, 'tls.crt'), key: join(temp.dir, 'tls.key'), clientCa: join(temp.dir, 'client-ca.crt') };
    copyFileSync(oldServer.cert, live.cert);
    copyFileSync(oldServer.key, live.key);
    copyFileSync(oldCa.cert, live.clientCa);
    const h = await startServer({ server: { tlsCert: live.cert, tlsKey: live.key, tlsClientCa: live.clientCa } });
    const oldTls: ClientTls = { trust: oldCa, identity: oldClient };
    const newTls: ClientTls = { trust: newCa, identity: newClient };
    const tailClient = clientOf(h.address, oldTls);
    try {
      const tail = new StreamReader<TailWalResponse>(tailClient.tailWal(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n } })));
      await append(tailClient, 'before');
      assert.deepEqual(await nextRecords(tail), ['before']);

      copyFileSync(newServer.cert, live.cert);
      copyFileSync(newServer.key, live.key);
      copyFileSync(newCa.cert, live.clientCa);
      assert.deepEqual(await h.server.reloadSecurity(), { tls: { status: 'reloaded' }, authFile: { status: 'off' } });

      await append(tailClient, 'after');
      assert.deepEqual(await nextRecords(tail), ['after'], 'the tail opened before the reload goes on, on its old connection');
      assert.equal(await statsCode(h.address, newTls), status.OK, 'a new connection gets the new certificate and CA');
      assert.equal(await statsCode(h.address, oldTls), status.UNAVAILABLE, 'a client trusting only the old CA is refused now');

      // Mid-rotation: a key that is not the certificate's. The reload fails and the files in force stay.
      copyFileSync(oldServer.key, live.key);
      const report = await h.server.reloadSecurity();
      assert.equal(report.tls.status, 'kept');
      assert.ok(h.logLines.some((line) => line['msg'] === 'TLS certificate not reloaded: the one loaded before stays in force'));
      writeFileSync(live.cert, 'not a certificate\n');
      assert.equal((await h.server.reloadSecurity()).tls.status, 'kept');
      assert.equal(await statsCode(h.address, newTls), status.OK, 'new connections still get the certificate in force');
      // A client CA file that holds no certificate (garbage, empty, a key) is refused as well:
      // taken, it would make the server refuse every client.
      copyFileSync(newServer.cert, live.cert);
      copyFileSync(newServer.key, live.key);
      for (const bad of ['garbage\n', '', readFileSync(newServer.key, 'latin1')]) {
        writeFileSync(live.clientCa, bad);
        assert.equal((await h.server.reloadSecurity()).tls.status, 'kept', `client CA ${JSON.stringify(bad.slice(0, 20))}`);
        assert.equal(await statsCode(h.address, newTls), status.OK, 'clients of the CA in force still connect');
      }
      await append(tailClient, 'still');
      assert.deepEqual(await nextRecords(tail), ['still']);
    } finally {
      tailClient.close();
      await h.close();
      temp.remove();
    }
  });
  test('WalClient over TLS with a token: appends, reads, get, stats and tails work; a missing or weaker token is refused', async () => {
    const temp = makeTempDir('wald-tls-client-');
    const ca = makeTestCa(temp.dir, 'ca');
    const server = signTestCertificate(ca, 'server', 'server');
    const authFile = join(temp.dir, 'auth.yaml');
    const tokenLine = (name: string, token: string, role: string): string => `  - name: ${name}\n    token_sha256: ${hashAccessToken(token)}\n    role: ${role}\n`;
    writeFileSync(authFile, `tokens:\n${tokenLine('writer', 'writer-token', 'write')}${tokenLine('reader', 'reader-token', 'read')}`);
    const h = await startServer({ server: { tlsCert: server.cert, tlsKey: server.key, authFile } });
    const secure = (): ChannelCredentials => channelCredentials({ trust: ca });
    const writer = new WalClient(h.address, { credentials: secure(), token: () => 'writer-token' });
    const reader = new WalClient(h.address, { credentials: secure(), token: async () => 'reader-token' });
    const anonymous = new WalClient(h.address, { credentials: secure(), retryDeadlineMs: 1000 });
    const abort = new AbortController();
    try {
      const appended = await writer.append([{ key: Buffer.from('k'), value: Buffer.from('v') }]);
      assert.equal(appended.firstOffset, 0);
      assert.equal((await reader.read(0)).records[0]?.value.toString(), 'v');
      assert.equal((await reader.get(Buffer.from('k')))?.value.toString(), 'v');
      assert.equal((await reader.stats()).highWatermark, 0);
      for await (const event of reader.tail(0, { signal: abort.signal })) {
        if (event.records.length > 0) {
          assert.equal(event.records[0]!.value.toString(), 'v');
          abort.abort();
        }
      }
      const refused = await reader.append([{ value: Buffer.from('no') }]).catch((error: unknown) => error);
      assert.ok(refused instanceof WalClientError && refused.code === status.PERMISSION_DENIED, `a read token cannot append: ${String(refused)}`);
      const unauthenticated = await anonymous.read(0).catch((error: unknown) => error);
      assert.ok(unauthenticated instanceof WalClientError && unauthenticated.code === status.UNAUTHENTICATED, `no token: ${String(unauthenticated)}`);
      const plaintext = new WalClient(h.address, { token: () => 'writer-token', retryDeadlineMs: 500 });
      const overPlaintext = await plaintext.stats().catch((error: unknown) => error);
      await plaintext.close();
      assert.ok(overPlaintext instanceof WalClientError, `a plaintext client gets no answer: ${String(overPlaintext)}`);
    } finally {
      abort.abort();
      await writer.close();
      await reader.close();
      await anonymous.close();
      await h.close();
      temp.remove();
    }
  });
});
