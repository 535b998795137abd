/**
 * A follower of a leader that asks for bearer tokens (`auth_file`): with `replication.token_file`
 * holding a `write` token it follows; with a `read` token its frames tail (which names it, so
 * that it would hold a retention lease) is refused (PERMISSION_DENIED); without one the leader
 * refuses it (UNAUTHENTICATED), and it keeps retrying without writing anything.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { hashAccessToken } from '../../src/server/auth/access-token.js';
import { AppendRequest, type AppendResponse } from '../../src/gen/wald/v1/append.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rawClient, startServe, unary, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';

describe('a follower of a leader with an auth file', { timeout: 120_000 }, () => {
  test('follows with a write token from replication.token_file; with a read token or none it is refused and writes nothing', async () => {
    const temp = makeTempDir('wald-repl-auth-');
    const running = new Set<ServeChild>();
    try {
      const auth = join(temp.dir, 'auth.yaml');
      writeFileSync(auth, `tokens:\n  - token_sha256: ${hashAccessToken('writer-1')}\n    role: write\n  - token_sha256: ${hashAccessToken('reader-1')}\n    role: read\n`);
      const tokenFile = join(temp.dir, 'writer.token');
      writeFileSync(tokenFile, 'writer-1\n');
      const readTokenFile = join(temp.dir, 'reader.token');
      writeFileSync(readTokenFile, 'reader-1\n');
      const leader = await startServe(join(temp.dir, 'leader'), ['--auth-file', auth]);
      running.add(leader);
      const writer = rawClient(leader.address);
      const metadata = new Metadata();
      metadata.set('authorization', 'Bearer writer-1');
      for (let i = 0; i < 10; i++) {
        await unary<AppendResponse>((callback) => writer.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from(`v${i}`) }] }), metadata, callback));
      }
      writer.close();

      const withToken = await startServe(join(temp.dir, 'with-token'), ['--follow', leader.address, '--replication-token-file', tokenFile]);
      running.add(withToken);
      await waitForNextOffset(withToken.address, 10);

      const reader = await startServe(join(temp.dir, 'reader'), ['--follow', leader.address, '--replication-token-file', readTokenFile]);
      running.add(reader);
      const denied = await reader.waitForLog((line) => line['msg'] === 'replication: lost the leader; reconnecting');
      assert.match(JSON.stringify(denied['err']), /PERMISSION_DENIED/);

      const without = await startServe(join(temp.dir, 'without'), ['--follow', leader.address]);
      running.add(without);
      const refused = await without.waitForLog((line) => line['msg'] === 'replication: lost the leader; reconnecting');
      assert.match(JSON.stringify(refused['err']), /UNAUTHENTICATED|WAL_UNAUTHENTICATED|16/);
      const raw = rawClient(without.address);
      const stats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback));
      raw.close();
      assert.equal(stats.highWatermark, undefined, 'the follower without a token holds nothing');
    } finally {
      for (const child of running) await child.kill().catch(() => undefined);
      temp.remove();
    }
  });
});
