import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RECORD_TYPE_NAMES } from '../../../src/codec/record.js';
import { RecordType as WireRecordType, recordTypeToJSON } from '../../../src/gen/wald/v1/record.js';
import { recordTypeFromWire, WIRE_RECORD_TYPES } from '../../../src/wire/wire-record-type.js';

/** The values of the generated enum, as protoc-gen-ts_proto wrote them from proto/wald/v1/record.proto. */
const PROTO_VALUES = Object.values(WireRecordType).filter((value): value is WireRecordType => typeof value === 'number');

test('every record type of the log maps to its own value of the proto enum, named after it, and back', () => {
  const mapped = RECORD_TYPE_NAMES.map((name) => WIRE_RECORD_TYPES[name]);
  assert.equal(new Set(mapped).size, mapped.length, 'distinct wire values');
  for (const name of RECORD_TYPE_NAMES) {
    const value = WIRE_RECORD_TYPES[name];
    assert.ok(PROTO_VALUES.includes(value), `${name}: ${value} is a value of wald.v1.RecordType`);
    assert.equal(recordTypeToJSON(value), `RECORD_TYPE_${name.toUpperCase()}`, name);
    assert.equal(recordTypeFromWire(value), name);
    // The TailWal encoder writes the type as a single varint byte.
    assert.ok(value > 0 && value < 0x80, `${name}: ${value} fits one varint byte`);
  }
});

test('every value of the proto enum but UNSPECIFIED (and ts-proto UNRECOGNIZED) is a record type of the log', () => {
  for (const value of PROTO_VALUES) {
    const name = recordTypeFromWire(value);
    if (value === WireRecordType.RECORD_TYPE_UNSPECIFIED || value === WireRecordType.UNRECOGNIZED) {
      assert.equal(name, undefined, recordTypeToJSON(value));
    } else {
      assert.ok(name !== undefined, `${recordTypeToJSON(value)} has no record type`);
      assert.equal(WIRE_RECORD_TYPES[name], value);
    }
  }
  for (const unknown of [99, 2 ** 40, -2, 0.5]) assert.equal(recordTypeFromWire(unknown), undefined, String(unknown));
});
