import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ERROR_CODES, WalError, type ErrorCode } from '../../src/errors.js';
import { failureOf, startServer } from './support/harness.js';

/** The contract of docs/api.md, written out independently of the server's table. */
const EXPECTED_STATUS: Record<ErrorCode, status> = {
  WAL_LOCKED: status.FAILED_PRECONDITION,
  WAL_CORRUPTION: status.DATA_LOSS,
  WAL_CLOSED: status.UNAVAILABLE,
  WAL_READ_ONLY: status.FAILED_PRECONDITION,
  WAL_NO_SPACE: status.RESOURCE_EXHAUSTED,
  WAL_IO_ERROR: status.UNAVAILABLE,
  WAL_OFFSET_OUT_OF_RANGE: status.OUT_OF_RANGE,
  WAL_OFFSET_COMPACTED: status.OUT_OF_RANGE,
  WAL_RECORD_TOO_LARGE: status.INVALID_ARGUMENT,
  WAL_BATCH_TOO_LARGE: status.INVALID_ARGUMENT,
  WAL_INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  WAL_OFFSET_MISMATCH: status.ABORTED,
  WAL_SEQUENCE_STALE: status.FAILED_PRECONDITION,
  WAL_TOO_MANY_STREAMS: status.RESOURCE_EXHAUSTED,
  WAL_SHUTTING_DOWN: status.UNAVAILABLE,
  WAL_KEY_NOT_FOUND: status.NOT_FOUND,
  WAL_STATE_FULL: status.RESOURCE_EXHAUSTED,
  WAL_STATE_LOST: status.DATA_LOSS,
  WAL_FLUSH_ALL_DISABLED: status.FAILED_PRECONDITION,
  WAL_SNAPSHOT_NO_BASE: status.FAILED_PRECONDITION,
  WAL_SNAPSHOT_NOT_FOUND: status.NOT_FOUND,
  WAL_UNAUTHENTICATED: status.UNAUTHENTICATED,
  WAL_PERMISSION_DENIED: status.PERMISSION_DENIED,
  WAL_NOT_COVERED: status.FAILED_PRECONDITION,
  WAL_POINT_IN_TIME_UNAVAILABLE: status.OUT_OF_RANGE,
  WAL_TOO_MANY_BUILDS: status.RESOURCE_EXHAUSTED,
  WAL_NOT_LEADER: status.FAILED_PRECONDITION,
  WAL_EPOCH_MISMATCH: status.FAILED_PRECONDITION,
  WAL_FRAME_REJECTED: status.FAILED_PRECONDITION,
  WAL_TXN_STATE: status.FAILED_PRECONDITION,
  WAL_REPLICAS_TIMEOUT: status.DEADLINE_EXCEEDED,
  WAL_MESSAGE_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  WAL_INTERNAL: status.INTERNAL,
};

describe('error statuses', { timeout: 120_000 }, () => {
  test('every error code reaches the client as its status with an ErrorInfo carrying code and details', async () => {
    const h = await startServer();
    try {
      let failing: WalError = new WalError('WAL_IO_ERROR', 'placeholder');
      // The log's failure modes (a full disk, a failed fsync, corruption...) cannot be produced on
      // demand through the API, so the log instance's sync is made to fail with each code in turn.
      Object.assign(h.server.wal, {
        sync: (): Promise<number> => Promise.reject(failing),
      });
      for (const code of ERROR_CODES) {
        failing = new WalError(code, `failure ${code}`, { segment: '00000000000000000000.seg', position: 4096, flag: true, missing: undefined });
        const failure = await failureOf(h.client.sync());
        assert.equal(failure.code, EXPECTED_STATUS[code], code);
        assert.equal(failure.statusCode, failure.code, `${code}: the google.rpc.Status code matches`);
        assert.equal(failure.reason, code);
        assert.equal(failure.domain, 'wald.dev');
        if (code === 'WAL_INTERNAL') {
          assert.match(failure.message, /^internal error/);
          assert.deepEqual(Object.keys(failure.metadata), ['incidentId'], 'internal details stay in the log');
        } else {
          assert.equal(failure.message, `failure ${code}`);
          assert.deepEqual(failure.metadata, { segment: '00000000000000000000.seg', position: '4096', flag: 'true' });
        }
      }
    } finally {
      await h.close();
    }
  });

  test('an unexpected error is logged in full and sent as a generic INTERNAL with an incident id', async () => {
    const h = await startServer();
    try {
      Object.assign(h.server.wal, {
        stats: (): never => {
          throw new Error('secret internal detail');
        },
      });
      const failure = await failureOf(h.client.getStats());
      assert.equal(failure.code, status.INTERNAL);
      assert.equal(failure.reason, 'WAL_INTERNAL');
      assert.doesNotMatch(failure.message, /secret/);
      const incidentId = failure.metadata['incidentId'];
      assert.ok(incidentId !== undefined);
      const line = h.logLines.find((l) => l['incidentId'] === incidentId);
      assert.ok(line !== undefined, 'the incident is logged');
      assert.equal(line['level'], 50);
      assert.equal(line['rpc'], 'GetStats');
      const err = line['err'] as { message?: string; stack?: string };
      assert.equal(err.message, 'secret internal detail');
      assert.match(err.stack ?? '', /secret internal detail/);
    } finally {
      await h.close();
    }
  });

  test('calls after stop() has begun get UNAVAILABLE WAL_SHUTTING_DOWN or a closed channel', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: [{ value: Buffer.from('x') }] });
      const stopping = h.server.stop();
      const late = await h.client.getStats().then(
        () => undefined,
        (error: unknown) => error as { code?: number },
      );
      await stopping;
      assert.ok(late !== undefined, 'a call during shutdown fails');
      assert.equal(late.code, status.UNAVAILABLE);
      assert.equal(h.server.status, 'stopped');
      assert.equal(h.server.wal.status, 'closed');
    } finally {
      await h.close();
    }
  });
});
