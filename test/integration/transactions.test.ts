/**
 * Transactions through a real server and client: Prepare, Commit, Abort and ListTransactions, the
 * refusal rules as FAILED_PRECONDITION with an ErrorInfo (reason WAL_TXN_STATE, the transaction
 * and its state), the same rules for transaction records sent through Append, GetStats' in-doubt
 * fields, and in-doubt transactions kept across a restart.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { encodeTxnWrites } from '../../src/codec/txn-writes.js';
import { RecordType } from '../../src/gen/wald/v1/record.js';
import {
  AbortRequest,
  CommitRequest,
  ListTransactionsRequest,
  PrepareRequest,
  TxnWriteOp,
  type AbortResponse,
  type CommitResponse,
  type ListTransactionsResponse,
  type PrepareResponse,
} from '../../src/gen/wald/v1/transaction.js';
import { WaldServer } from '../../src/server/wald-server.js';
import type { StateRecoveryReport } from '../../src/state/state-keeper.js';
import { makeTempDir } from '../support/temp-dir.js';
import { failureOf, WalTestClient } from './support/harness.js';

interface Served {
  readonly client: WalTestClient;
  readonly stateReport: StateRecoveryReport;
  prepare(request: Parameters<typeof PrepareRequest.fromPartial>[0]): Promise<PrepareResponse>;
  commit(request: Parameters<typeof CommitRequest.fromPartial>[0]): Promise<CommitResponse>;
  abort(request: Parameters<typeof AbortRequest.fromPartial>[0]): Promise<AbortResponse>;
  list(request: Parameters<typeof ListTransactionsRequest.fromPartial>[0]): Promise<ListTransactionsResponse>;
  stop(): Promise<void>;
}

async function serve(dataDir: string): Promise<Served> {
  const { server, stateReport } = await WaldServer.open({ dir: dataDir, preallocate: false }, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
  const port = await server.start();
  const client = new WalTestClient(`127.0.0.1:${port}`);
  const unary =
    <Request, Response>(call: (request: Request, done: (error: Error | null, response: Response) => void) => void, make: (partial: never) => Request) =>
    (partial: unknown): Promise<Response> =>
      new Promise((resolve, reject) => call(make(partial as never), (error, response) => (error ? reject(error) : resolve(response))));
  return {
    client,
    stateReport,
    prepare: unary((r, d) => client.raw.prepare(r, d), PrepareRequest.fromPartial),
    commit: unary((r, d) => client.raw.commit(r, d), CommitRequest.fromPartial),
    abort: unary((r, d) => client.raw.abort(r, d), AbortRequest.fromPartial),
    list: unary((r, d) => client.raw.listTransactions(r, d), ListTransactionsRequest.fromPartial),
    async stop() {
      client.close();
      await server.stop();
    },
  };
}

const id = (text: string): Buffer => Buffer.from(text);

async function expectTxnState(call: Promise<unknown>, txn: string, state: string): Promise<void> {
  const failure = await failureOf(call);
  assert.equal(failure.statusCode, status.FAILED_PRECONDITION);
  assert.equal(failure.reason, 'WAL_TXN_STATE');
  assert.equal(failure.metadata['txnIdBase64'], id(txn).toString('base64'));
  assert.equal(failure.metadata['state'], state);
}

describe('transactions over gRPC', () => {
  test('Prepare, Commit, Abort: writes appear at the COMMIT, all at its offset; an abort discards them', async () => {
    const temp = makeTempDir('wald-txn-');
    const served = await serve(join(temp.dir, 'data'));
    try {
      const prepared = await served.prepare({
        txnId: id('t1'),
        writes: [
          { key: id('a'), value: id('1') },
          { op: TxnWriteOp.TXN_WRITE_OP_PUT, key: id('b'), value: id('2') },
        ],
      });
      await assert.rejects(served.client.get({ key: id('a') }), (error: unknown) => (error as { code?: number }).code === status.NOT_FOUND);
      const committed = await served.commit({ txnId: id('t1') });
      assert.ok(committed.offset > prepared.offset);
      for (const key of ['a', 'b']) assert.equal((await served.client.get({ key: id(key) })).offset, committed.offset);
      await served.prepare({ txnId: id('t2'), writes: [{ op: TxnWriteOp.TXN_WRITE_OP_DELETE, key: id('a') }] });
      await served.abort({ txnId: id('t2'), reason: 'changed my mind' });
      assert.equal((await served.client.get({ key: id('a') })).value.toString(), '1');
      const read = await served.client.read({ fromOffset: 0n });
      assert.deepEqual(read.records.map((r) => r.type), [RecordType.RECORD_TYPE_PREPARE, RecordType.RECORD_TYPE_COMMIT, RecordType.RECORD_TYPE_PREPARE, RecordType.RECORD_TYPE_ABORT]);
      assert.equal(read.records[3]!.value.toString(), 'changed my mind');
    } finally {
      await served.stop();
      temp.remove();
    }
  });

  test('refuses what the state forbids with FAILED_PRECONDITION and an ErrorInfo naming the transaction and its state', async () => {
    const temp = makeTempDir('wald-txn-');
    const served = await serve(join(temp.dir, 'data'));
    try {
      await expectTxnState(served.commit({ txnId: id('none') }), 'none', 'unknown');
      await expectTxnState(served.abort({ txnId: id('none') }), 'none', 'unknown');
      await served.prepare({ txnId: id('p'), writes: [] });
      await expectTxnState(served.prepare({ txnId: id('p'), writes: [] }), 'p', 'in_doubt');
      await served.abort({ txnId: id('p') });
      await expectTxnState(served.commit({ txnId: id('p') }), 'p', 'aborted');
      await served.prepare({ txnId: id('c'), writes: [] });
      await served.commit({ txnId: id('c') });
      await expectTxnState(served.abort({ txnId: id('c') }), 'c', 'committed');
      await expectTxnState(served.prepare({ txnId: id('c'), writes: [] }), 'c', 'committed');
      // Through Append: the same rules, whatever the path.
      await expectTxnState(served.client.append({ records: [{ type: RecordType.RECORD_TYPE_COMMIT, key: id('c'), value: Buffer.alloc(0) }] }), 'c', 'committed');
      const batch = await served.client.append({
        records: [
          { type: RecordType.RECORD_TYPE_PREPARE, key: id('b'), value: encodeTxnWrites([{ op: 'put', key: id('k'), value: id('v') }]) },
          { type: RecordType.RECORD_TYPE_COMMIT, key: id('b'), value: Buffer.alloc(0) },
        ],
      });
      assert.equal((await served.client.get({ key: id('k') })).offset, batch.lastOffset);
      const empty = await failureOf(served.commit({ txnId: Buffer.alloc(0) }));
      assert.equal(empty.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(empty.metadata['field'], 'txn_id');
      const badDelete = await failureOf(served.prepare({ txnId: id('d'), writes: [{ op: TxnWriteOp.TXN_WRITE_OP_DELETE, key: id('k'), value: id('x') }] }));
      assert.equal(badDelete.metadata['field'], 'writes[0].value');
      const badPayload = await failureOf(served.client.append({ records: [{ type: RecordType.RECORD_TYPE_PREPARE, key: id('e'), value: id('junk') }] }));
      assert.equal(badPayload.statusCode, status.INVALID_ARGUMENT);
    } finally {
      await served.stop();
      temp.remove();
    }
  });

  test('lists in-doubt transactions in pages, counts them in GetStats, and keeps them across a restart', async () => {
    const temp = makeTempDir('wald-txn-');
    const dataDir = join(temp.dir, 'data');
    const first = await serve(dataDir);
    const offsets: bigint[] = [];
    try {
      for (let i = 0; i < 5; i++) offsets.push((await first.prepare({ txnId: id(`t${i}`), writes: [{ key: id(`k${i}`), value: id('v') }] })).offset);
      await first.commit({ txnId: id('t1') });
      const stats = await first.client.getStats();
      assert.equal(stats.inDoubtTransactionCount, 4n);
      assert.ok(stats.oldestInDoubtAgeMs !== undefined);
    } finally {
      await first.stop();
    }
    const second = await serve(dataDir);
    try {
      assert.equal(second.stateReport.inDoubtCount, 4);
      const seen: bigint[] = [];
      let pageToken = '';
      for (let page = 0; page < 10; page++) {
        const response = await second.list({ pageSize: 3, pageToken });
        assert.equal(response.inDoubtCount, 4n);
        seen.push(...response.transactions.map((t) => t.prepareOffset));
        pageToken = response.nextPageToken;
        if (pageToken === '') break;
      }
      assert.deepEqual(seen, [offsets[0], offsets[2], offsets[3], offsets[4]]);
      const bad = await failureOf(second.list({ pageToken: 'nope' }));
      assert.equal(bad.metadata['field'], 'page_token');
      await second.commit({ txnId: id('t4') });
      assert.equal((await second.client.get({ key: id('k4') })).value.toString(), 'v');
      assert.equal((await second.client.getStats()).inDoubtTransactionCount, 3n);
    } finally {
      await second.stop();
      temp.remove();
    }
  });

  test('a dry run counts records by type and the redundancy with aborted transactions; GetStats reports that scan', async () => {
    const temp = makeTempDir('wald-txn-');
    const served = await serve(join(temp.dir, 'data'));
    try {
      const before = await served.client.getStats();
      assert.equal(before.recordCounts, undefined);
      assert.equal(before.redundancyRatio, undefined);
      await served.client.append({ records: [{ key: id('a'), value: id('1') }] });
      await served.client.append({ records: [{ key: id('a'), value: id('2') }] });
      await served.prepare({ txnId: id('t1'), writes: [{ key: id('b'), value: id('1') }] });
      await served.abort({ txnId: id('t1'), reason: 'no' });
      await served.prepare({ txnId: id('t2'), writes: [{ key: id('c'), value: id('1') }] });
      await served.commit({ txnId: id('t2') });
      await served.prepare({ txnId: id('t3'), writes: [{ key: id('d'), value: id('1') }] });
      await served.client.append({ records: [{ type: RecordType.RECORD_TYPE_DELETE, key: id('a'), value: Buffer.alloc(0) }] });
      const dryRun = await served.client.compact({ dryRun: true });
      const counts = { put: 2n, delete: 1n, prepare: 3n, commit: 1n, abort: 1n, checkpoint: 0n, flushAll: 0n };
      assert.deepEqual(dryRun.recordCounts, counts);
      // Both PUTs of a (deleted since), the DELETE, t1's PREPARE and its ABORT: 5 of 8.
      assert.equal(dryRun.redundancyRatio, 5 / 8);
      const stats = await served.client.getStats();
      assert.deepEqual(stats.recordCounts, counts);
      assert.equal(stats.redundancyRatio, 5 / 8);
      assert.ok(stats.recordCountsScannedMs > 0n);
    } finally {
      await served.stop();
      temp.remove();
    }
  });
});
