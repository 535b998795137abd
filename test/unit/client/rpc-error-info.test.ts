import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isServiceError, rpcErrorInfoOf } from '../../../src/client/rpc-error-info.js';
import { toServiceError } from '../../../src/server/rpc-failure.js';
import { STATUS_DETAILS_TRAILER } from '../../../src/wire/status-details.js';

/** A ServiceError as grpc-js hands it to a client, from what the server sent. */
function received(code: status, details: string, metadata: Metadata): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

describe('rpcErrorInfoOf', () => {
  test('decodes the status, message and ErrorInfo that the server sends', () => {
    const sent = toServiceError({
      code: status.OUT_OF_RANGE,
      message: 'offset 9 is beyond the end',
      reason: 'WAL_OFFSET_OUT_OF_RANGE',
      metadata: { offset: '9', nextOffset: '4' },
    });
    const info = rpcErrorInfoOf(received(status.OUT_OF_RANGE, sent.details!, sent.metadata!));
    assert.deepEqual(info, {
      code: status.OUT_OF_RANGE,
      message: 'offset 9 is beyond the end',
      reason: 'WAL_OFFSET_OUT_OF_RANGE',
      domain: 'wald.dev',
      metadata: { offset: '9', nextOffset: '4' },
      statusCode: status.OUT_OF_RANGE,
    });
  });

  test('reports a call without the trailer by its status and message alone', () => {
    const info = rpcErrorInfoOf(received(status.UNAVAILABLE, 'No connection established', new Metadata()));
    assert.deepEqual(info, {
      code: status.UNAVAILABLE,
      message: 'No connection established',
      reason: undefined,
      domain: undefined,
      metadata: {},
      statusCode: undefined,
    });
  });

  test('treats an undecodable trailer as absent', () => {
    const metadata = new Metadata();
    metadata.set(STATUS_DETAILS_TRAILER, Buffer.from([0xff, 0xff, 0xff]));
    const info = rpcErrorInfoOf(received(status.INTERNAL, 'boom', metadata));
    assert.equal(info.code, status.INTERNAL);
    assert.equal(info.message, 'boom');
    assert.equal(info.reason, undefined);
    assert.deepEqual(info.metadata, {});
  });

  test('falls back to the error message when the status message is empty', () => {
    const info = rpcErrorInfoOf(received(status.CANCELLED, '', new Metadata()));
    assert.equal(info.message, '1 CANCELLED:');
  });
});

describe('isServiceError', () => {
  test('accepts what grpc-js reports and rejects other errors', () => {
    assert.equal(isServiceError(received(status.ABORTED, 'x', new Metadata())), true);
    assert.equal(isServiceError(new Error('plain')), false);
    assert.equal(isServiceError({ code: 1, details: '', metadata: new Metadata() }), false);
  });
});
