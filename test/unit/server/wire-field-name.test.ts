import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createFileRegistry, fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { validateAppendOptions, validateBatch } from '../../../src/engine/append-validation.js';
import { WalError } from '../../../src/errors.js';
import { loadDescriptorSet } from '../../../src/server/reflection.js';
import { inWireTerms, wireFieldName } from '../../../src/server/wire-field-name.js';
import { APPEND_FAULTS, FAULT_LIMITS } from '../../support/append-faults.js';

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, loadDescriptorSet()));

/** True when `path` (`records[3].headers`, `producer_id`) names a field of `message` by proto names. */
function isFieldPath(message: DescMessage, path: string): boolean {
  const [head, ...rest] = path.split('.');
  const match = /^([a-z][a-z0-9_]*)(\[\d+\])?$/.exec(head!);
  if (match === null) return false;
  const field = message.fields.find((f) => f.name === match[1]);
  if (field === undefined) return false;
  if (match[2] !== undefined && field.fieldKind !== 'list') return false;
  if (rest.length === 0) return true;
  // Into a repeated field only through one element: `records[3].key`, never `records.key`.
  const next = field.fieldKind === 'message' ? field.message : field.fieldKind === 'list' && field.listKind === 'message' && match[2] !== undefined ? field.message : undefined;
  return next !== undefined && isFieldPath(next, rest.join('.'));
}

describe('field names on the wire', () => {
  const appendRequest = registry.getMessage('wald.v1.AppendRequest')!;

  test('wireFieldName turns each camelCase part into snake_case and leaves the rest', () => {
    assert.equal(wireFieldName('producerId'), 'producer_id');
    assert.equal(wireFieldName('expectedOffset'), 'expected_offset');
    assert.equal(wireFieldName('records[12].headers'), 'records[12].headers');
    assert.equal(wireFieldName('records[0].someLongName'), 'records[0].some_long_name');
    assert.equal(wireFieldName('from_offset'), 'from_offset');
  });

  test('every field the engine names for a broken append rule is, in proto terms, a field of AppendRequest', () => {
    assert.ok(isFieldPath(appendRequest, 'records[0].key') && !isFieldPath(appendRequest, 'records.key') && !isFieldPath(appendRequest, 'producerId'));
    for (const fault of APPEND_FAULTS) {
      let thrown: unknown;
      try {
        validateBatch(fault.records, FAULT_LIMITS);
        validateAppendOptions(fault.options ?? {});
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof WalError, fault.rule);
      const wire = inWireTerms(thrown);
      const field = wire.details['field'];
      assert.equal(typeof field, 'string', fault.rule);
      assert.ok(isFieldPath(appendRequest, field as string), `${fault.rule}: ${String(field)} is not a field of wald.v1.AppendRequest`);
    }
  });

  test('inWireTerms renames the field in the details and the message, and keeps code, other details and cause', () => {
    const engine = new WalError('WAL_INVALID_ARGUMENT', 'producerId: must be at most 256 bytes, got 300', { field: 'producerId', bytes: 300, limit: 256 });
    const wire = inWireTerms(engine);
    assert.equal(wire.code, 'WAL_INVALID_ARGUMENT');
    assert.equal(wire.message, 'producer_id: must be at most 256 bytes, got 300');
    assert.deepEqual(wire.details, { field: 'producer_id', bytes: 300, limit: 256 });
    assert.equal(wire.cause, engine);
    const already = new WalError('WAL_RECORD_TOO_LARGE', 'records[1] takes 2000 bytes', { field: 'records[1]' });
    assert.equal(inWireTerms(already), already);
    const none = new WalError('WAL_SEQUENCE_STALE', 'stale', { producerId: 'p' });
    assert.equal(inWireTerms(none), none, 'only `field` is a field name; other detail keys stay');
  });
});
