import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveWalOptions, WAL_DEFAULTS, type WalOptions } from '../../../src/engine/wal-options.js';
import { MemDisk } from '../../support/mem-disk.js';

const resolve = (options: WalOptions) => resolveWalOptions(options, () => new MemDisk().mount());

describe('resolveWalOptions', () => {
  it('fills in the declared defaults', () => {
    const resolved = resolve({ dir: '/wal' });
    for (const [name, value] of Object.entries(WAL_DEFAULTS)) assert.equal(resolved[name as keyof typeof WAL_DEFAULTS], value, name);
    assert.equal(WAL_DEFAULTS.syncPolicy, 'always');
    assert.equal(WAL_DEFAULTS.segmentSizeBytes, 64 * 1024 * 1024);
    assert.equal(resolved.dir, '/wal');
  });

  it('throws TypeError naming the option for a value of the wrong type', () => {
    assert.throws(() => resolve({ dir: '/wal', preallocate: 'no' as unknown as boolean }), {
      name: 'TypeError',
      message: 'options.preallocate must be a boolean (true or false), got no',
    });
    assert.throws(() => resolve({ dir: '/wal', maxProducers: '10' as unknown as number }), { name: 'TypeError', message: /^options\.maxProducers / });
    assert.throws(() => resolve({ dir: '' }), { name: 'TypeError', message: 'options.dir must be a non-empty string' });
  });

  it('throws RangeError naming the option for a value out of range', () => {
    assert.throws(() => resolve({ dir: '/wal', syncPolicy: 'sometimes' as 'always' }), {
      name: 'RangeError',
      message: 'options.syncPolicy must be one of always, interval, none, got sometimes',
    });
    assert.throws(() => resolve({ dir: '/wal', segmentSizeBytes: 10 }), {
      name: 'RangeError',
      message: 'options.segmentSizeBytes must be an integer from 4096 to 2147483648, got 10',
    });
    assert.throws(() => resolve({ dir: '/wal', maxBatchBytes: 2 ** 31 + 1 }), { name: 'RangeError', message: /^options\.maxBatchBytes must be an integer from 1 to 2147483648/ });
    assert.throws(() => resolve({ dir: '/wal', syncIntervalMs: 0 }), { name: 'RangeError', message: 'options.syncIntervalMs must be a positive integer, got 0' });
  });
});
