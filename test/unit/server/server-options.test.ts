import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WAL_DEFAULTS } from '../../../src/engine/wal-options.js';
import { resolveServerOptions, SERVER_DEFAULTS } from '../../../src/server/server-options.js';

describe('resolveServerOptions', () => {
  it('fills in the declared defaults and the engine limits', () => {
    const resolved = resolveServerOptions();
    assert.deepEqual({ ...resolved, appendLimits: undefined }, { ...SERVER_DEFAULTS, appendLimits: undefined });
    assert.deepEqual(resolved.appendLimits, {
      maxRecordBytes: WAL_DEFAULTS.maxRecordBytes,
      maxBatchBytes: WAL_DEFAULTS.maxBatchBytes,
      maxBatchRecords: WAL_DEFAULTS.maxBatchRecords,
    });
    assert.equal(SERVER_DEFAULTS.listen, '127.0.0.1:7070');
    assert.equal(SERVER_DEFAULTS.maxTotalTailQueueBytes, 256 * 1024 * 1024);
  });

  it('names the option of a bad value, the log limits too', () => {
    assert.throws(() => resolveServerOptions({ maxTailStreams: 0 }), {
      name: 'RangeError',
      message: 'server option maxTailStreams must be a positive integer, got 0',
    });
    assert.throws(() => resolveServerOptions({ listen: 'nowhere' }), { name: 'RangeError', message: /^server option listen must be host:port/ });
    assert.throws(() => resolveServerOptions({ receiveWindowBytes: 1024 }), { message: /^server option receiveWindowBytes must be an integer from 65535 to 2147483647/ });
    assert.throws(() => resolveServerOptions({ appendLimits: { maxRecordBytes: -1 } }), { message: /^server option appendLimits\.maxRecordBytes must be a positive integer/ });
    assert.throws(() => resolveServerOptions({ keepaliveTimeMs: '1' as unknown as number }), { name: 'TypeError' });
  });

  it('takes metricsListen as host:port or off (the default), and names it otherwise', () => {
    assert.equal(SERVER_DEFAULTS.metricsListen, 'off');
    assert.equal(resolveServerOptions({ metricsListen: '[::1]:9464' }).metricsListen, '[::1]:9464');
    assert.equal(resolveServerOptions({ metricsListen: '0.0.0.0:0' }).metricsListen, '0.0.0.0:0');
    for (const bad of ['on', '9464', 'localhost:99999', '']) {
      assert.throws(() => resolveServerOptions({ metricsListen: bad }), { name: 'RangeError', message: /^server option metricsListen must be host:port with a port from 0 to 65535, or off/ });
    }
  });

  it('reports message sizes too small for the log limits on the message size, naming the limits', () => {
    assert.throws(() => resolveServerOptions({ maxSendMessageBytes: 1024 }), {
      name: 'RangeError',
      message:
        'server option maxSendMessageBytes must be at least max(maxResponseBytes, maxRecordBytes) + 256 KiB of framing ' +
        '(3407872 here), got 1024',
    });
    assert.throws(() => resolveServerOptions({ appendLimits: { maxBatchBytes: 8 << 20 } }), {
      name: 'RangeError',
      message: 'server option maxReceiveMessageBytes must be at least maxBatchBytes + 256 KiB of framing (8650752 here), got 5242880',
    });
  });
});
