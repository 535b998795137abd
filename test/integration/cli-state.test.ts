/**
 * `wald get`, `wald keys` and `wald flush-all` against a real server on 127.0.0.1:0 (in this
 * process), each run as a child process of the built CLI: text and --json output (proto field
 * names, snake_case), and exit codes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ServerOptions } from '../../src/server/server-options.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { runWald, type WaldRun } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

/** Runs `body` with `wald ARGS... --server ADDRESS` against a fresh server, and the server. */
async function withServer(options: ServerOptions, body: (wald: (args: readonly string[]) => Promise<WaldRun>, server: WaldServer) => Promise<void>): Promise<void> {
  const temp = makeTempDir('wald-cli-state-');
  const { server } = await WaldServer.open({ dir: join(temp.dir, 'data'), preallocate: false }, { ...options, listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
  try {
    const port = await server.start();
    await body((args) => runWald([...args, '--server', `127.0.0.1:${port}`]), server);
  } finally {
    await server.stop();
    temp.remove();
  }
}

function assertOk(run: WaldRun): void {
  assert.equal(run.code, 0, `exit code 0 expected; stderr: ${run.stderr}`);
}

describe('wald get', () => {
  it("prints a key's value, offset and timestamp as text and JSON; a missing key exits 1 with NOT_FOUND", async () => {
    await withServer({}, async (wald, server) => {
      await server.wal.append([{ key: Buffer.from('user-1'), value: Buffer.from('first') }]);
      await server.wal.append([{ key: Buffer.from('user-1'), value: Buffer.from('hello') }]);
      const text = await wald(['get', 'user-1']);
      assertOk(text);
      assert.match(text.stdout, /^value {6}hello\noffset {5}1\ntimestamp {2}\d{4}-\d\d-\d\dT[\d:.]+Z\n$/);

      const json = await wald(['get', 'user-1', '--json']);
      assertOk(json);
      const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
      assert.deepEqual(Object.keys(parsed), ['key', 'value', 'offset', 'timestamp', 'time']);
      assert.equal(parsed['key'], 'user-1');
      assert.equal(parsed['value'], 'hello');
      assert.equal(parsed['offset'], 1);
      assert.equal(new Date(parsed['timestamp'] as number).toISOString(), parsed['time']);

      const missing = await wald(['get', 'nobody']);
      assert.equal(missing.code, 1);
      assert.equal(missing.stdout, '');
      assert.match(missing.stderr, /^wald: NOT_FOUND \(WAL_KEY_NOT_FOUND\): .*\[keyBase64=bm9ib2R5\]\n$/);
    });
  });
});

describe('wald keys', () => {
  it('lists keys in byte order as a table, by prefix, and pages through ListKeys up to --limit with a token to go on', async () => {
    await withServer({}, async (wald, server) => {
      await server.wal.append(Array.from({ length: 1005 }, (_, i) => ({ key: Buffer.from(`k${String(i).padStart(4, '0')}`), value: Buffer.from('v') })));
      await server.wal.append([
        { key: Buffer.from('a2'), value: Buffer.from('two') },
        { key: Buffer.from('a1'), value: Buffer.from('one!') },
      ]);
      const text = await wald(['keys', '--prefix', 'a']);
      assertOk(text);
      const lines = text.stdout.split('\n');
      assert.match(lines[0]!, /^KEY +OFFSET +TIMESTAMP +VALUE_BYTES$/);
      assert.match(lines[1]!, /^a1 +1006 +\d{4}-\S+ +4$/);
      assert.match(lines[2]!, /^a2 +1005 +\d{4}-\S+ +3$/);
      assert.equal(lines[3], '(2 keys)');

      // Two calls (1000 + 3) and a token that goes on after k1002.
      const json = await wald(['keys', '--prefix', 'k', '--limit', '1003', '--json']);
      assertOk(json);
      const page = JSON.parse(json.stdout) as { keys: Record<string, unknown>[]; next_page_token: string };
      assert.equal(page.keys.length, 1003);
      assert.deepEqual(Object.keys(page.keys[0]!), ['key', 'offset', 'timestamp', 'time', 'value_size_bytes']);
      assert.equal(page.keys[1002]!['key'], 'k1002');
      assert.equal(page.keys[1002]!['value_size_bytes'], 1);
      assert.notEqual(page.next_page_token, '');
      const rest = await wald(['keys', '--prefix', 'k', '--page-token', page.next_page_token, '--json']);
      assertOk(rest);
      const restPage = JSON.parse(rest.stdout) as { keys: Record<string, unknown>[]; next_page_token: string };
      assert.deepEqual(restPage.keys.map((entry) => entry['key']), ['k1003', 'k1004']);
      assert.equal(restPage.next_page_token, '');

      const limited = await wald(['keys', '--limit', '1']);
      assertOk(limited);
      assert.match(limited.stdout, /\(1 key; more with --page-token \S+\)\n$/);
      const badToken = await wald(['keys', '--page-token', 'nonsense!']);
      assert.equal(badToken.code, 1);
      assert.match(badToken.stderr, /INVALID_ARGUMENT \(WAL_INVALID_ARGUMENT\).*field=page_token/);
    });
  });
});

describe('wald flush-all', () => {
  it('exits 1 with FAILED_PRECONDITION on a server without allow_flush_all', async () => {
    await withServer({}, async (wald) => {
      const run = await wald(['flush-all']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /^wald: FAILED_PRECONDITION \(WAL_FLUSH_ALL_DISABLED\): .*\[configKey=allow_flush_all\]\n$/);
    });
  });

  it('removes every key and says how many, as text and JSON', async () => {
    await withServer({ allowFlushAll: true }, async (wald, server) => {
      await server.wal.append([
        { key: Buffer.from('a'), value: Buffer.from('1') },
        { key: Buffer.from('b'), value: Buffer.from('2') },
      ]);
      const text = await wald(['flush-all']);
      assertOk(text);
      assert.equal(text.stdout, 'removed 2 keys (flush_all record at offset 2)\n');
      assert.equal(await server.state.get(Buffer.from('a')), undefined);
      const json = await wald(['flush-all', '--json']);
      assertOk(json);
      assert.deepEqual(JSON.parse(json.stdout), { keys_removed: 0, offset: 3 });
      assert.deepEqual((await server.wal.read(2)).map((record) => record.type), ['flush_all', 'flush_all']);
    });
  });
});
