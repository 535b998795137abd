import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openTailWal } from '../../src/client/open-tail-wal.js';
import { TailWalRequest } from '../../src/gen/wald/v1/tail.js';
import type { TailBatch } from '../../src/wire/tail-response-decoder.js';
import { startServer, StreamReader } from './support/harness.js';

describe('openTailWal (the fast client codec)', { timeout: 60_000 }, () => {
  test('receives what was appended, with number offsets, keys, headers and types, then follows live', async () => {
    const h = await startServer();
    try {
      await h.client.append({
        records: [
          { key: Buffer.from('k1'), value: Buffer.from('one'), headers: { trace: Buffer.from('t-1') } },
          { value: Buffer.alloc(0) },
        ],
      });
      const call = openTailWal(h.client.raw, TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n } }));
      const reader = new StreamReader<TailBatch>(call);
      const first = await reader.next();
      assert.deepEqual(
        first.records.map((r) => ({ ...r, key: r.key?.toString(), value: r.value.toString(), headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.toString()])) })),
        [
          { offset: 0, timestamp: first.records[0]!.timestamp, type: 'put', key: 'k1', value: 'one', headers: { trace: 't-1' } },
          { offset: 1, timestamp: first.records[0]!.timestamp, type: 'put', key: undefined, value: '', headers: {} },
        ],
      );
      assert.ok(first.records[0]!.timestamp > 0);
      assert.deepEqual([first.highWatermark, first.firstOffset, first.nextOffset], [1, 0, 2]);

      const caughtUp = await reader.next();
      assert.deepEqual(caughtUp.records, [], 'a heartbeat says the tail has caught up');
      await h.client.append({ records: [{ key: Buffer.from('gone'), value: Buffer.alloc(0), type: 2 }] });
      const live = await reader.next();
      assert.equal(live.records[0]!.offset, 2);
      assert.equal(live.records[0]!.type, 'delete');
      assert.equal(live.nextOffset, 3);
      call.cancel();
    } finally {
      await h.close();
    }
  });
});
