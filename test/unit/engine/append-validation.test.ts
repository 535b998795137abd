import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { validateAppendOptions, validateBatch } from '../../../src/engine/append-validation.js';
import type { AppendRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError, WalError } from '../../../src/errors.js';
import { APPEND_FAULTS, FAULT_LIMITS } from '../../support/append-faults.js';
import { makeTempDir } from '../../support/temp-dir.js';

function errorOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('append validation', () => {
  for (const fault of APPEND_FAULTS) {
    test(`${fault.rule}: ${fault.code} naming ${fault.field}`, () => {
      const error = errorOf(() => {
        validateBatch(fault.records, FAULT_LIMITS);
        validateAppendOptions(fault.options ?? {});
      });
      assert.ok(error instanceof WalError, `a WalError, got ${String(error)}`);
      assert.equal(error.code, fault.code);
      assert.equal(error.details['field'], fault.field);
      for (const [name, value] of Object.entries(fault.details ?? {})) {
        assert.equal(error.details[name], value, name);
      }
      if (fault.code === 'WAL_INVALID_ARGUMENT') {
        assert.ok(error.message.startsWith(`${fault.field}: `), `the message names the field: ${error.message}`);
      }
    });
  }

  test('what the rules allow passes: the empty key, empty values, a delete with the empty key, every type, producer limits', () => {
    const records: AppendRecord[] = [
      { value: Buffer.alloc(0) },
      { key: Buffer.alloc(0), value: Buffer.alloc(0), type: 'delete' },
      { value: Buffer.from('c'), type: 'checkpoint', headers: Object.defineProperty({}, '__proto__', { value: Buffer.from('p'), enumerable: true }) },
      { key: new Uint8Array(1), value: new Uint8Array(2), type: 'put', headers: { ['n'.repeat(0xffff)]: new Uint8Array(0) } },
    ];
    validateBatch(records, { maxRecordBytes: 0x20000, maxBatchBytes: 0x40000, maxBatchRecords: 4 });
    validateAppendOptions({});
    validateAppendOptions({ expectedOffset: 0, producerId: 'é'.repeat(128), sequence: 0 });
    validateAppendOptions({ expectedOffset: Number.MAX_SAFE_INTEGER, producerId: 'p', sequence: Number.MAX_SAFE_INTEGER });
  });

  test('only calls no data can produce throw TypeError: records not an array, a record, headers or options not an object', () => {
    assert.throws(() => validateBatch('records' as unknown as AppendRecord[], FAULT_LIMITS), TypeError);
    assert.throws(() => validateBatch([null as unknown as AppendRecord], FAULT_LIMITS), TypeError);
    assert.throws(() => validateBatch([{ value: Buffer.alloc(0), headers: 'h' as unknown as Record<string, Buffer> }], FAULT_LIMITS), TypeError);
    assert.throws(() => validateAppendOptions(null as unknown as object), TypeError);
  });
});

describe('Wal.append validation', () => {
  let dir: string;
  let remove: () => void;
  beforeEach(() => {
    ({ dir, remove } = makeTempDir());
  });
  afterEach(() => remove());

  test('every broken rule is refused synchronously with its error, and nothing is written', async () => {
    const { wal } = await Wal.open({ dir, ...FAULT_LIMITS });
    try {
      for (const fault of APPEND_FAULTS) {
        assert.throws(
          () => wal.append(fault.records, fault.options),
          (error) => isWalError(error, fault.code) && error.details['field'] === fault.field,
          fault.rule,
        );
      }
      assert.equal(wal.nextOffset, 0);
      assert.equal(wal.stats().recordCount, 0);
    } finally {
      await wal.close();
    }
  });
});
