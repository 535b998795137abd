/**
 * `wald txn prepare|commit|abort|list` against a real server on 127.0.0.1:0 (in this process),
 * each run as a child process of the built CLI: writes in the order given, text and --json output,
 * and the exit code and message of a refused step (FAILED_PRECONDITION, WAL_TXN_STATE).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WaldServer } from '../../src/server/wald-server.js';
import { runWald, type WaldRun } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

function assertOk(run: WaldRun): void {
  assert.equal(run.code, 0, `exit code 0 expected; stderr: ${run.stderr}`);
}

describe('wald txn', () => {
  it('prepares, lists, commits and aborts transactions; a refused step exits 1 naming the state', async () => {
    const temp = makeTempDir('wald-cli-txn-');
    const { server } = await WaldServer.open({ dir: join(temp.dir, 'data'), preallocate: false }, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
    try {
      const port = await server.start();
      const wald = (args: readonly string[]) => runWald([...args, '--server', `127.0.0.1:${port}`]);
      const prepared = await wald(['txn', 'prepare', 'order-7', '--put', 'stock=4', '--delete', 'cart', '--put', 'stock=3', '--json']);
      assertOk(prepared);
      const parsed = JSON.parse(prepared.stdout) as Record<string, unknown>;
      assert.deepEqual(Object.keys(parsed), ['txn_id', 'record', 'offset', 'timestamp', 'time']);
      assert.equal(parsed['txn_id'], 'order-7');
      assert.equal(parsed['offset'], 0);
      assertOk(await wald(['txn', 'prepare', 'order-8']));

      const listed = await wald(['txn', 'list', '--in-doubt']);
      assertOk(listed);
      assert.match(listed.stdout, /^TXN +PREPARE OFFSET +PREPARED +AGE +WRITES\n/);
      assert.match(listed.stdout, /order-7 +0 +\S+ +\d+ ms +3\n/);
      assert.match(listed.stdout, /\(2 in doubt\)\n$/);

      const committed = await wald(['txn', 'commit', 'order-7']);
      assertOk(committed);
      assert.match(committed.stdout, /^transaction +order-7\ncommit +offset 2\n/);
      const stock = await wald(['get', 'stock', '--json']);
      assert.equal((JSON.parse(stock.stdout) as { value: string; offset: number }).value, '3');
      assert.equal((JSON.parse(stock.stdout) as { offset: number }).offset, 2);

      assertOk(await wald(['txn', 'abort', 'order-8', '--reason', 'out of stock']));
      const json = await wald(['txn', 'list', '--json']);
      assert.deepEqual(JSON.parse(json.stdout), { in_doubt_count: 0, transactions: [] });

      const refused = await wald(['txn', 'commit', 'order-8']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^wald: FAILED_PRECONDITION \(WAL_TXN_STATE\): .*'order-8'.*aborted/);
    } finally {
      await server.stop();
      temp.remove();
    }
  });
});
