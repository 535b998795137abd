/**
 * Append's fencing token over gRPC: `expected_epoch` equal to the log's epoch writes, any other is
 * FAILED_PRECONDITION / WAL_EPOCH_MISMATCH with the expected and actual epochs, and nothing is
 * written; a value no epoch can have is INVALID_ARGUMENT naming the field.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { failureOf, startServer, values } from './support/harness.js';

describe('Append expected_epoch', { timeout: 60_000 }, () => {
  test('writes only under the named epoch; an old epoch is refused with WAL_EPOCH_MISMATCH and nothing is written', async () => {
    const h = await startServer();
    try {
      assert.equal((await h.client.append({ records: values(1), expectedEpoch: 0n })).firstOffset, 0n, 'epoch 0: a log never promoted');
      await h.server.wal.beginEpoch(5);
      const stale = await failureOf(h.client.append({ records: values(2), expectedEpoch: 0n }));
      assert.equal(stale.code, status.FAILED_PRECONDITION);
      assert.equal(stale.reason, 'WAL_EPOCH_MISMATCH');
      assert.deepEqual(stale.metadata, { expectedEpoch: '0', epoch: '5' });
      const ahead = await failureOf(h.client.append({ records: values(1), expectedEpoch: 6n }));
      assert.equal(ahead.reason, 'WAL_EPOCH_MISMATCH');
      const huge = await failureOf(h.client.append({ records: values(1), expectedEpoch: 2n ** 60n }));
      assert.equal(huge.code, status.INVALID_ARGUMENT);
      assert.equal(huge.metadata['field'], 'expected_epoch');
      assert.equal((await h.client.append({ records: values(1), expectedEpoch: 5n })).firstOffset, 1n, 'nothing of the refused appends took an offset');
      assert.equal((await h.client.append({ records: values(1) })).firstOffset, 2n, 'unset: no condition');
    } finally {
      await h.close();
    }
  });
});
