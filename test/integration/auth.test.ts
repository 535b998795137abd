/**
 * Bearer tokens and roles on a real server: every method of the generated WalService definition,
 * called with no token, a malformed one, an unknown one, and the token of each role, gets
 * `UNAUTHENTICATED`, `PERMISSION_DENIED` naming the role needed, or past the admission, every
 * time. The calls are made from the definition itself (empty requests), so a method added to the
 * proto is called here without a line of this file changing, and one whose role this file does
 * not know fails the test. Health and reflection ask for no token; the auth file is re-read.
 */
import assert from 'node:assert/strict';
import { watchedServiceCount } from '../../src/server/bounded-health.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { Client, credentials, Metadata, status, type ClientDuplexStream, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { isServiceError, rpcErrorInfoOf } from '../../src/client/rpc-error-info.js';
import { ServerReflectionClient, type ServerReflectionResponse } from '../../src/gen/grpc/reflection/v1/reflection.js';
import { TailWalRequest } from '../../src/gen/wald/v1/tail.js';
import { WalServiceService } from '../../src/gen/wald/v1/wal_service.js';
import { hashAccessToken } from '../../src/server/auth/access-token.js';
import { ROLES, roleGrants, type Role } from '../../src/server/auth/role.js';
import type { ServerOptions } from '../../src/server/server-options.js';
import { WAL_SERVICE_RPCS } from '../../src/server/wal-service.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { parseExposition, sampleValue } from '../support/prometheus-text.js';
import { makeTempDir } from '../support/temp-dir.js';
import { startServer } from './support/harness.js';

/**
 * The role each RPC needs, as the operations issue gives them, written out independently of the
 * server's table (RPCs of other issues included, so that they are checked when they arrive).
 */
const EXPECTED_ROLES: Readonly<Record<string, Role>> = {
  Read: 'read',
  // A frames tail naming a follower id needs write (it holds a retention lease): tested below.
  TailWal: 'read',
  Get: 'read',
  ListKeys: 'read',
  GetStats: 'read',
  ListSnapshots: 'read',
  ListTransactions: 'read',
  GetSnapshot: 'read',
  HashRange: 'read',
  // Lookups need read; a request with create_snapshot needs admin (test/integration/state-at.test.ts).
  StateAt: 'read',
  GetEpochEnd: 'read',
  Append: 'write',
  AppendStream: 'write',
  Sync: 'write',
  ReportFollower: 'write',
  Prepare: 'write',
  Commit: 'write',
  Abort: 'write',
  FlushAll: 'admin',
  SnapshotKey: 'admin',
  CreateSnapshot: 'admin',
  VerifySnapshot: 'admin',
  Compact: 'admin',
  DeleteSegmentsBefore: 'admin',
  Promote: 'admin',
};

/** A token per role, and tokens the server does not know. */
const TOKENS: Readonly<Record<Role, string>> = { read: 'reader-token-1', write: 'writer-token-2', admin: 'admin-token-3' };
const UNKNOWN_TOKEN = 'nobody-knows-this-token';

function authFileText(tokens: Readonly<Record<string, string>>): string {
  const entries = Object.entries(tokens).map(([role, token]) => `  - name: ${role}-client\n    token_sha256: ${hashAccessToken(token)}\n    role: ${role}\n`);
  return `tokens:\n${entries.join('')}`;
}

/** How a call ended: its status code (OK for an admitted stream) and ErrorInfo reason and metadata. */
interface Outcome {
  readonly code: status;
  readonly reason: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
}

function outcomeOf(error: ServiceError | null): Outcome {
  if (error === null) return { code: status.OK, reason: undefined, metadata: {} };
  assert.ok(isServiceError(error));
  const info = rpcErrorInfoOf(error);
  return { code: error.code, reason: info.reason, metadata: info.metadata };
}

/** The `authorization` metadata of each kind of caller. */
type CallerKind = 'no token' | 'not a bearer token' | 'unknown token' | Role;
const CALLERS: readonly CallerKind[] = ['no token', 'not a bearer token', 'unknown token', ...ROLES];

function metadataOf(caller: CallerKind): Metadata {
  const metadata = new Metadata();
  if (caller === 'not a bearer token') metadata.set('authorization', `Basic ${TOKENS.admin}`);
  else if (caller === 'unknown token') metadata.set('authorization', `Bearer ${UNKNOWN_TOKEN}`);
  else if (caller !== 'no token') metadata.set('authorization', `Bearer ${TOKENS[caller]}`);
  return metadata;
}

type Method = (typeof WalServiceService)[keyof typeof WalServiceService];
const asBytes = (value: Buffer): Buffer => value;

/**
 * Calls `method` with an empty request (every field unset) and resolves with how it ended: a
 * unary call's status; a stream's first message (admitted: OK, then cancelled), its error, or its
 * end. A bidi call is half-closed at once.
 */
function callMethod(client: Client, method: Method, metadata: Metadata, request = Buffer.alloc(0)): Promise<Outcome> {
  const empty = request;
  if (!method.requestStream && !method.responseStream) {
    return new Promise((resolve) => client.makeUnaryRequest(method.path, asBytes, asBytes, empty, metadata, {}, (error) => resolve(outcomeOf(error))));
  }
  let call: ClientReadableStream<Buffer> | ClientDuplexStream<Buffer, Buffer>;
  if (method.requestStream) {
    const duplex = client.makeBidiStreamRequest(method.path, asBytes, asBytes, metadata, {});
    duplex.end();
    call = duplex;
  } else {
    call = client.makeServerStreamRequest(method.path, asBytes, asBytes, empty, metadata, {});
  }
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      resolve(outcome);
      call.cancel();
    };
    call.on('data', () => settle(outcomeOf(null)));
    call.on('error', (error: ServiceError) => settle(outcomeOf(error)));
    call.on('status', (end: { code: status }) => {
      if (end.code === status.OK) settle(outcomeOf(null));
    });
  });
}

describe('bearer tokens and roles', { timeout: 120_000 }, () => {
  test('every RPC of the definition: no, malformed or unknown token UNAUTHENTICATED; a small role PERMISSION_DENIED naming the role needed; a large enough role admitted', async () => {
    const temp = makeTempDir('wald-auth-');
    const authFile = join(temp.dir, 'auth.yaml');
    writeFileSync(authFile, authFileText(TOKENS));
    const h = await startServer({ server: { authFile, metricsListen: '127.0.0.1:0', authRefusalLogPerSecond: 1000 } });
    const client = new Client(h.address, credentials.createInsecure());
    try {
      // TailWal from the first offset answers at once once the log holds a record.
      await h.server.wal.append([{ value: Buffer.from('first') }]);
      const methods = Object.values(WalServiceService);
      assert.ok(methods.length >= 9, `found ${methods.length} methods`);
      let unauthenticated = 0;
      let denied = 0;
      for (const method of methods) {
        const name = method.path.slice(method.path.lastIndexOf('/') + 1);
        const needed = EXPECTED_ROLES[name];
        assert.ok(needed !== undefined, `${name}: no expected role here; add it to EXPECTED_ROLES and its entry in WAL_SERVICE_RPCS`);
        const entry = Object.values(WAL_SERVICE_RPCS).find((rpc) => rpc.name === name);
        assert.equal(entry?.role, needed, `${name}: the table's role`);
        for (const caller of CALLERS) {
          const outcome = await callMethod(client, method, metadataOf(caller));
          const label = `${name} called with ${caller}`;
          if (caller === 'no token' || caller === 'not a bearer token' || caller === 'unknown token') {
            assert.equal(outcome.code, status.UNAUTHENTICATED, label);
            assert.equal(outcome.reason, 'WAL_UNAUTHENTICATED', label);
            assert.deepEqual(outcome.metadata, { rpc: name, problem: caller }, label);
            unauthenticated += 1;
          } else if (!roleGrants(caller, needed)) {
            assert.equal(outcome.code, status.PERMISSION_DENIED, label);
            assert.equal(outcome.reason, 'WAL_PERMISSION_DENIED', label);
            assert.deepEqual(outcome.metadata, { rpc: name, requiredRole: needed, role: caller }, label);
            denied += 1;
          } else {
            assert.notEqual(outcome.code, status.UNAUTHENTICATED, label);
            assert.notEqual(outcome.code, status.PERMISSION_DENIED, label);
            assert.notEqual(outcome.code, status.UNIMPLEMENTED, label);
            assert.notEqual(outcome.code, status.INTERNAL, label);
          }
        }
      }
      assert.equal(h.server.authenticationFailures, unauthenticated, 'every failed authentication is counted');
      assert.equal(h.server.permissionDenials, denied, 'every denial is counted');
      const scraped = parseExposition(await (await fetch(`http://127.0.0.1:${h.server.metricsPort}/metrics`)).text());
      assert.equal(sampleValue(scraped, 'wald_authentication_failures_total', { reason: 'WAL_UNAUTHENTICATED' }), unauthenticated, 'the metric of failed authentications');
      assert.equal(sampleValue(scraped, 'wald_authentication_failures_total', { reason: 'WAL_PERMISSION_DENIED' }), denied, 'the metric of denials');
      const failures = h.logLines.filter((line) => line['msg'] === 'authentication failed' || line['msg'] === 'permission denied');
      assert.equal(failures.length, unauthenticated + denied, 'every refusal is logged once');
      const logged = JSON.stringify(h.logLines);
      for (const token of [...Object.values(TOKENS), UNKNOWN_TOKEN]) assert.ok(!logged.includes(token), 'no token in the log');
    } finally {
      client.close();
      await h.close();
      temp.remove();
    }
  });

  test('a frames tail naming a follower id needs write (it would hold a retention lease); without one, read is enough', async () => {
    const temp = makeTempDir('wald-auth-');
    const authFile = join(temp.dir, 'auth.yaml');
    writeFileSync(authFile, authFileText(TOKENS));
    const h = await startServer({ server: { authFile } });
    const client = new Client(h.address, credentials.createInsecure());
    try {
      await h.server.wal.append([{ value: Buffer.from('first') }]);
      const tail = (followerId: string) => Buffer.from(TailWalRequest.encode(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n }, frames: true, followerId })).finish());
      const method = WalServiceService.tailWal;
      const asFollower = await callMethod(client, method, metadataOf('read'), tail('follower-1'));
      assert.equal(asFollower.code, status.PERMISSION_DENIED);
      assert.equal(asFollower.reason, 'WAL_PERMISSION_DENIED');
      assert.deepEqual(asFollower.metadata, { rpc: 'TailWal', requiredRole: 'write', role: 'read' });
      assert.equal(h.server.followers.size, 0, 'no follower tracked, so no lease');
      assert.equal((await callMethod(client, method, metadataOf('write'), tail('follower-1'))).code, status.OK, 'a write token may follow');
      assert.equal((await callMethod(client, method, metadataOf('read'), tail(''))).code, status.OK, 'a frames tail without a follower id is a read');
      // The follower id is bounded as ReportFollower's (256 bytes), since GetStats and logs name it.
      const tooLong = await callMethod(client, method, metadataOf('write'), tail('f'.repeat(300)));
      assert.equal(tooLong.code, status.INVALID_ARGUMENT);
      assert.equal(tooLong.metadata['field'], 'follower_id');
      assert.equal(h.server.followers.size, 1, 'the long id was never tracked');
    } finally {
      client.close();
      await h.close();
      temp.remove();
    }
  });

  test('health and reflection answer without a token; reflection: false turns reflection off', async () => {
    const temp = makeTempDir('wald-auth-');
    const authFile = join(temp.dir, 'auth.yaml');
    writeFileSync(authFile, authFileText(TOKENS));
    for (const reflection of [true, false]) {
      const h = await startServer({ server: { authFile, reflection } });
      const client = new Client(h.address, credentials.createInsecure());
      const reflectionClient = new ServerReflectionClient(h.address, credentials.createInsecure());
      try {
        const health = await new Promise<Buffer>((resolve, reject) =>
          client.makeUnaryRequest('/grpc.health.v1.Health/Check', asBytes, asBytes, Buffer.alloc(0), new Metadata(), {}, (error, response) =>
            error === null && response !== undefined ? resolve(response) : reject(error),
          ),
        );
        assert.deepEqual([...health], [0x08, 0x01], 'HealthCheckResponse { status: SERVING }');
        const call = reflectionClient.serverReflectionInfo();
        const answer = new Promise<ServerReflectionResponse>((resolve, reject) => {
          call.once('data', resolve);
          call.once('error', reject);
        });
        call.write({ host: '', messageRequest: { $case: 'listServices', value: '' } });
        if (reflection) {
          const response = await answer;
          assert.equal(response.messageResponse?.$case, 'listServicesResponse');
          const names = response.messageResponse.$case === 'listServicesResponse' ? response.messageResponse.value.service.map((service) => service.name) : [];
          assert.ok(names.includes('wald.v1.WalService'), names.join(', '));
        } else {
          await assert.rejects(answer, (error: unknown) => isServiceError(error) && error.code === status.UNIMPLEMENTED);
        }
        call.end();
        assert.equal(h.server.authenticationFailures, 0, 'health and reflection are not authentication failures');
      } finally {
        reflectionClient.close();
        client.close();
        await h.close();
      }
    }
    temp.remove();
  });

  test('health Watch calls without a token leave nothing behind once cancelled, whatever service names they ask for', async () => {
    const h = await startServer();
    const client = new Client(h.address, credentials.createInsecure());
    try {
      const before = watchedServiceCount(h.server.health);
      for (let i = 0; i < 20; i++) {
        // HealthCheckRequest { service: a unique 10,000-byte name }: field 1, length-delimited.
        const name = Buffer.alloc(10_000, 0x61 + (i % 26));
        name.write(String(i));
        const request = Buffer.concat([Buffer.from([0x0a, 0x90, 0x4e]), name]);
        const call = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', asBytes, asBytes, request, new Metadata());
        await new Promise<void>((resolve, reject) => {
          call.once('data', () => resolve());
          call.once('error', reject);
        });
        call.on('error', () => undefined);
        call.cancel();
      }
      // Bounded: the server sees each cancel within a few turns.
      for (let i = 0; i < 200 && watchedServiceCount(h.server.health) > before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(watchedServiceCount(h.server.health), before, 'no name of a cancelled Watch is kept');
    } finally {
      client.close();
      await h.close();
    }
  });

  test('reloadSecurity re-reads the auth file: a removed token is refused, a new one admitted; a file that does not load keeps the tokens before it', async () => {
    const temp = makeTempDir('wald-auth-');
    const authFile = join(temp.dir, 'auth.yaml');
    writeFileSync(authFile, authFileText({ read: 'old-reader' }));
    const h = await startServer({ server: { authFile } });
    const client = new Client(h.address, credentials.createInsecure());
    const getStats = (token: string): Promise<Outcome> => {
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${token}`);
      return callMethod(client, WalServiceService.getStats, metadata);
    };
    try {
      assert.equal((await getStats('old-reader')).code, status.OK);
      assert.equal((await getStats('new-writer')).code, status.UNAUTHENTICATED);

      writeFileSync(authFile, authFileText({ write: 'new-writer' }));
      assert.deepEqual(await h.server.reloadSecurity(), { tls: { status: 'off' }, authFile: { status: 'reloaded' } });
      assert.equal((await getStats('old-reader')).code, status.UNAUTHENTICATED, 'the removed token is refused');
      assert.equal((await getStats('new-writer')).code, status.OK, 'the new token is admitted');

      writeFileSync(authFile, 'tokens:\n  - token_sha256: not-a-hash\n    role: admin\n');
      const report = await h.server.reloadSecurity();
      assert.equal(report.authFile.status, 'kept');
      assert.match(report.authFile.status === 'kept' ? report.authFile.error : '', /tokens\[0\]\.token_sha256 must be 64 hex digits/);
      assert.ok(h.logLines.some((line) => line['msg'] === 'auth file not reloaded: the one loaded before stays in force' && line['level'] === 50));
      assert.equal((await getStats('new-writer')).code, status.OK, 'the tokens before the bad file stay in force');
    } finally {
      client.close();
      await h.close();
      temp.remove();
    }
  });

  test('a server whose auth file does not load does not start', async () => {
    const temp = makeTempDir('wald-auth-');
    const authFile = join(temp.dir, 'auth.yaml');
    const startFails = async (options: ServerOptions, expected: RegExp): Promise<void> => {
      const { server } = await WaldServer.open({ dir: join(temp.dir, 'data'), preallocate: false }, { listen: '127.0.0.1:0', ...options }, pino({ level: 'silent' }));
      try {
        await assert.rejects(server.start(), expected);
        assert.equal(server.status, 'created');
      } finally {
        await server.stop();
      }
    };
    try {
      writeFileSync(authFile, 'tokens:\n  - token_sha256: ' + 'ab'.repeat(32) + '\n    role: root\n');
      await startFails({ authFile }, /auth file .*auth\.yaml: tokens\[0\]\.role must be one of read, write, admin, got "root"/);
      await startFails({ authFile: join(temp.dir, 'missing.yaml') }, /auth file .*missing\.yaml: cannot be read/);
      writeFileSync(authFile, authFileText(TOKENS));
      await startFails({ authFile, maxAuthFileBytes: 100 }, /larger than max_auth_file_bytes \(100 bytes\)/);
    } finally {
      temp.remove();
    }
  });
});
