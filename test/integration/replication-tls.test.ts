/**
 * A follower of a leader that serves mutual TLS (`--tls-cert`, `--tls-key`, `--tls-client-ca`):
 * with `replication.tls_ca`, `tls_cert` and `tls_key` (a client certificate the leader's client CA
 * signed) it follows and holds the leader's records; with the CA but no client certificate, or
 * over plaintext, the leader refuses the connection and the follower keeps retrying without
 * writing anything.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { AppendRequest, type AppendResponse } from '../../src/gen/wald/v1/append.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import { makeTestCa, signTestCertificate } from '../support/test-certificates.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rawClient, startServe, unary, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';

const RECORDS = 10;

describe('a follower of a leader with mutual TLS', { timeout: 120_000 }, () => {
  test('follows with replication.tls_ca/tls_cert/tls_key; without a client certificate or over plaintext it is refused and holds nothing', async () => {
    const temp = makeTempDir('wald-repl-tls-');
    const running = new Set<ServeChild>();
    try {
      const serverCa = makeTestCa(temp.dir, 'server-ca');
      const clientCa = makeTestCa(temp.dir, 'client-ca');
      const leaderCert = signTestCertificate(serverCa, 'leader', 'server');
      const followerCert = signTestCertificate(clientCa, 'follower', 'client');
      const leader = await startServe(join(temp.dir, 'leader'), ['--tls-cert', leaderCert.cert, '--tls-key', leaderCert.key, '--tls-client-ca', clientCa.cert]);
      running.add(leader);

      const writer = new WalServiceClient(
        leader.address,
        credentials.createSsl(readFileSync(serverCa.cert), readFileSync(followerCert.key), readFileSync(followerCert.cert)),
        { 'grpc.use_local_subchannel_pool': 1 },
      );
      try {
        for (let i = 0; i < RECORDS; i++) {
          await unary<AppendResponse>((callback) => writer.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from(`v${i}`) }] }), callback));
        }
      } finally {
        writer.close();
      }

      const mutual = await startServe(join(temp.dir, 'mutual'), [
        '--follow', leader.address,
        '--replication-tls-ca', serverCa.cert, '--replication-tls-cert', followerCert.cert, '--replication-tls-key', followerCert.key,
      ]);
      running.add(mutual);
      await waitForNextOffset(mutual.address, RECORDS);

      const noCertificate = await startServe(join(temp.dir, 'no-cert'), ['--follow', leader.address, '--replication-tls-ca', serverCa.cert]);
      running.add(noCertificate);
      await noCertificate.waitForLog((line) => line['msg'] === 'replication: lost the leader; reconnecting');

      const plaintext = await startServe(join(temp.dir, 'plaintext'), ['--follow', leader.address]);
      running.add(plaintext);
      await plaintext.waitForLog((line) => line['msg'] === 'replication: lost the leader; reconnecting');

      for (const refused of [noCertificate, plaintext]) {
        const raw = rawClient(refused.address);
        try {
          const stats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
          assert.equal(stats.highWatermark, undefined, 'a follower the leader refused holds nothing');
        } finally {
          raw.close();
        }
      }
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });
});
