import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { errorInfoOfStatus } from '../../src/client/rpc-error-info.js';
import { AppendStreamRequest, type AppendStreamResponse, type AppendStreamResult } from '../../src/gen/wald/v1/append.js';
import { startServer, StreamReader, values } from './support/harness.js';

type AppendPartial = NonNullable<Parameters<typeof AppendStreamRequest.fromPartial>[0]['appends']>[number];

function many(requestId: number, appends: AppendPartial[]): AppendStreamRequest {
  return AppendStreamRequest.fromPartial({ requestId: BigInt(requestId), appends });
}

function reasonOf(result: AppendStreamResult | undefined): string | undefined {
  return result?.result?.$case === 'error' ? errorInfoOfStatus(result.result.value)?.reason : undefined;
}

describe('AppendStream messages of several appends', { timeout: 120_000 }, () => {
  test('each append of a message is atomic on its own, answered in order, and a failed one leaves its neighbours written', async () => {
    const h = await startServer();
    try {
      const call = h.client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      call.write(
        many(7, [
          { records: values(3, 'a') },
          { records: [] },
          { records: values(2, 'b'), expectedOffset: 99n },
          { records: values(1, 'c'), producerId: 'p', sequence: 1n },
          { records: values(1, 'c'), producerId: 'p', sequence: 1n },
          { records: values(2, 'd') },
        ]),
      );
      call.end();
      const response = await reader.next();
      assert.equal(await reader.end(), undefined);
      assert.equal(response.requestId, 7n);
      assert.equal(response.result, undefined, 'the results answer the message');
      assert.equal(response.results.length, 6);
      const offsets = response.results.map((r) => (r.result?.$case === 'appended' ? [Number(r.result.value.firstOffset), Number(r.result.value.lastOffset)] : undefined));
      assert.deepEqual(offsets, [[0, 2], undefined, undefined, [3, 3], [3, 3], [4, 5]]);
      assert.equal(reasonOf(response.results[1]), 'WAL_INVALID_ARGUMENT');
      assert.equal(reasonOf(response.results[2]), 'WAL_OFFSET_MISMATCH');
      const duplicate = response.results[4]!.result;
      assert.ok(duplicate?.$case === 'appended' && duplicate.value.duplicate);
      const read = await h.client.read({ fromOffset: 0n, limit: 100 });
      assert.deepEqual(
        read.records.map((r) => r.value.toString()),
        ['a0', 'a1', 'a2', 'c0', 'd0', 'd1'],
      );
    } finally {
      await h.close();
    }
  });

  test('a message with both append and appends, or more than max_appends_per_message, is refused whole', async () => {
    const h = await startServer({ server: { maxAppendsPerMessage: 3 } });
    try {
      const call = h.client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      call.write(AppendStreamRequest.fromPartial({ requestId: 1n, append: { records: values(1) }, appends: [{ records: values(1) }] }));
      call.write(many(2, [{ records: values(1) }, { records: values(1) }, { records: values(1) }, { records: values(1) }]));
      call.write(many(3, [{ records: values(1) }, { records: values(1) }, { records: values(1) }]));
      call.end();
      const [both, tooMany, fine] = [await reader.next(), await reader.next(), await reader.next()];
      assert.equal(await reader.end(), undefined);
      for (const refused of [both, tooMany]) {
        assert.equal(refused.result?.$case, 'error');
        assert.deepEqual(refused.results, []);
        if (refused.result?.$case === 'error') {
          assert.equal(refused.result.value.code, status.INVALID_ARGUMENT);
          const info = errorInfoOfStatus(refused.result.value);
          assert.equal(info?.reason, 'WAL_INVALID_ARGUMENT');
          assert.equal(info.metadata['field'], 'appends');
        }
      }
      assert.equal(fine.results.length, 3);
      assert.equal((await h.client.getStats()).entryCount, 3n, 'only the message within the limit was written');
    } finally {
      await h.close();
    }
  });

  test('a message of one `append` is answered as before, with no results', async () => {
    const h = await startServer();
    try {
      const call = h.client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      call.write(AppendStreamRequest.fromPartial({ requestId: 5n, append: { records: values(2) } }));
      call.end();
      const response = await reader.next();
      assert.equal(response.result?.$case, 'appended');
      assert.deepEqual(response.results, []);
      assert.equal(await reader.end(), undefined);
    } finally {
      await h.close();
    }
  });
});
