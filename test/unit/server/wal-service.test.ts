/**
 * The RPC table against the generated service definition: a method added to the proto (and so to
 * `src/gen`) without a table entry fails here as well as in the compiler, and so does an entry of
 * the wrong name or kind, or without a role (test/integration/auth.test.ts checks each role).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WalServiceService } from '../../../src/gen/wald/v1/wal_service.js';
import { isRole } from '../../../src/server/auth/role.js';
import type { RpcKind } from '../../../src/server/rpc/rpc-descriptor.js';
import { WAL_SERVICE_RPCS } from '../../../src/server/wal-service.js';
import { WAL_SERVICE_NAME } from '../../../src/server/wald-server.js';

/** The kind a method's definition declares; `client-stream` has no place in the table. */
function declaredKind(method: { readonly requestStream: boolean; readonly responseStream: boolean }): RpcKind | 'client-stream' {
  if (method.requestStream) {
    return method.responseStream ? 'bidi' : 'client-stream';
  }
  return method.responseStream ? 'server-stream' : 'unary';
}

describe('the WalService RPC table', () => {
  const methods = Object.entries(WalServiceService);
  const entries = Object.entries(WAL_SERVICE_RPCS);

  test('the generated definition has methods (the test is not vacuous)', () => {
    assert.ok(methods.length >= 6, `found ${methods.length}`);
  });

  test('every method of the generated WalService has exactly one entry: under its key, with its name, kind and role', () => {
    for (const [key, method] of methods) {
      const name = method.path.slice(method.path.lastIndexOf('/') + 1);
      assert.equal(method.path, `/${WAL_SERVICE_NAME}/${name}`);
      const matching = entries.filter(([entryKey, rpc]) => entryKey === key || rpc.name === name);
      assert.equal(matching.length, 1, `${method.path}: exactly one entry, found ${matching.map(([k]) => k).join(', ') || 'none'}`);
      const [entryKey, rpc] = matching[0]!;
      assert.equal(entryKey, key, `${method.path}: the entry is under the method's key`);
      assert.equal(rpc.name, name, `${method.path}: the entry carries the method's name`);
      assert.equal(rpc.kind, declaredKind(method), `${method.path}: the entry's kind is the method's`);
      assert.ok(isRole(rpc.role), `${method.path}: the entry names the role it needs, got ${String(rpc.role)}`);
    }
  });

  test('the table has no entry for a method the definition lacks', () => {
    const keys = new Set(methods.map(([key]) => key));
    assert.deepEqual(
      entries.map(([key]) => key).filter((key) => !keys.has(key)),
      [],
    );
  });
});
