import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { errorInfoOfStatus } from '../../src/client/rpc-error-info.js';
import { AppendStreamRequest, type AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import type { AppendStreamSession } from '../../src/server/append-stream.js';
import { rpcErrorOf, startServer, StreamReader, values } from './support/harness.js';

function request(requestId: number, append: Parameters<typeof AppendStreamRequest.fromPartial>[0]['append']): AppendStreamRequest {
  return AppendStreamRequest.fromPartial({ requestId: BigInt(requestId), append });
}

describe('AppendStream', { timeout: 120_000 }, () => {
  test('pipelined appends are written in the order sent and acknowledged in that order', async () => {
    const h = await startServer();
    try {
      const call = h.client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      const count = 200;
      for (let i = 0; i < count; i++) {
        call.write(request(i, { records: values(2, `r${i}-`) }));
      }
      call.end();
      for (let i = 0; i < count; i++) {
        const response = await reader.next();
        assert.equal(response.requestId, BigInt(i));
        assert.equal(response.result?.$case, 'appended');
        if (response.result?.$case === 'appended') {
          assert.equal(response.result.value.firstOffset, BigInt(2 * i));
          assert.equal(response.result.value.lastOffset, BigInt(2 * i + 1));
        }
      }
      assert.equal(await reader.end(), undefined, 'the stream ends OK after the client ends its side');
      const read = await h.client.read({ fromOffset: 0n, limit: 1000 });
      assert.equal(read.records.length, 2 * count);
      for (let i = 0; i < count; i++) {
        assert.deepEqual(read.records[2 * i]!.value, Buffer.from(`r${i}-0`));
      }
    } finally {
      await h.close();
    }
  });

  test('a failed append is answered in place with its status and ErrorInfo, and the stream goes on', async () => {
    const h = await startServer();
    try {
      const call = h.client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      call.write(request(1, { records: values(1) }));
      call.write(request(2, { records: [] }));
      call.write(AppendStreamRequest.fromPartial({ requestId: 3n }));
      call.write(request(4, { records: values(1), expectedOffset: 0n }));
      call.write(request(5, { records: values(1), expectedOffset: 1n }));
      call.write(request(6, { records: values(1), producerId: 'p', sequence: 7n }));
      call.write(request(7, { records: values(1), producerId: 'p', sequence: 7n }));
      call.end();
      const responses: AppendStreamResponse[] = [];
      for (let i = 0; i < 7; i++) {
        responses.push(await reader.next());
      }
      assert.equal(await reader.end(), undefined);
      assert.deepEqual(responses.map((r) => r.requestId), [1n, 2n, 3n, 4n, 5n, 6n, 7n]);
      const [ok, empty, unset, mismatch, conditional, produced, retried] = responses;
      assert.equal(ok!.result?.$case, 'appended');
      for (const [response, field] of [[empty, 'records'], [unset, 'records']] as const) {
        assert.equal(response!.result?.$case, 'error');
        if (response!.result?.$case === 'error') {
          assert.equal(response!.result.value.code, status.INVALID_ARGUMENT);
          const info = errorInfoOfStatus(response!.result.value);
          assert.equal(info?.reason, 'WAL_INVALID_ARGUMENT');
          assert.equal(info.domain, 'wald.dev');
          assert.equal(info.metadata['field'], field);
        }
      }
      assert.equal(mismatch!.result?.$case, 'error');
      if (mismatch!.result?.$case === 'error') {
        assert.equal(mismatch!.result.value.code, status.ABORTED);
        assert.equal(errorInfoOfStatus(mismatch!.result.value)?.reason, 'WAL_OFFSET_MISMATCH');
      }
      assert.equal(conditional!.result?.$case, 'appended');
      assert.equal(produced!.result?.$case, 'appended');
      assert.equal(retried!.result?.$case, 'appended');
      if (produced!.result?.$case === 'appended' && retried!.result?.$case === 'appended') {
        assert.equal(retried!.result.value.duplicate, true);
        assert.equal(retried!.result.value.firstOffset, produced!.result.value.firstOffset);
      }
      assert.equal((await h.client.getStats()).entryCount, 3n);
    } finally {
      await h.close();
    }
  });

  test('reads at most max_in_flight_appends ahead, and still answers everything', async () => {
    const h = await startServer({ server: { maxInFlightAppends: 4 } });
    try {
      const opened = once(h.server.appendStreams, 'open') as Promise<[AppendStreamSession]>;
      const call = h.client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      const count = 100;
      for (let i = 0; i < count; i++) {
        call.write(request(i, { records: values(1) }));
      }
      call.end();
      const [session] = await opened;
      for (let i = 0; i < count; i++) {
        assert.equal((await reader.next()).requestId, BigInt(i));
      }
      assert.equal(await reader.end(), undefined);
      assert.equal((await h.client.getStats()).entryCount, BigInt(count));
      const counters = session.counters();
      assert.equal(counters.answered, count);
      assert.ok(counters.maxInFlightSeen <= 4, `${counters.maxInFlightSeen} appends in flight`);
    } finally {
      await h.close();
    }
  });

  test('shutdown answers what was read, then ends the stream with UNAVAILABLE WAL_SHUTTING_DOWN', async () => {
    const h = await startServer();
    try {
      const opened = once(h.server.appendStreams, 'open') as Promise<[AppendStreamSession]>;
      const call = h.client.appendStream();
      const reader = new StreamReader<AppendStreamResponse>(call);
      await opened;
      call.write(request(1, { records: values(1) }));
      assert.equal((await reader.next()).result?.$case, 'appended');
      const stopping = h.server.stop();
      const failure = rpcErrorOf(await reader.end());
      assert.equal(failure.code, status.UNAVAILABLE);
      assert.equal(failure.reason, 'WAL_SHUTTING_DOWN');
      await stopping;
    } finally {
      await h.close();
    }
  });
});
