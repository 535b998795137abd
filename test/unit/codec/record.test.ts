import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeRecords, checkFrame, encodeFrame, encodedRecordBytes, stampFrame } from '../../../src/codec/frame.js';
import { isRecordType, RECORD_TYPE_NAMES, RECORD_TYPES, setHeader, type WalRecord } from '../../../src/codec/record.js';

describe('record vocabulary', () => {
  test('every record type has its own type byte in 1..255, and the frame codec reads each back as its name', () => {
    const bytes = RECORD_TYPE_NAMES.map((name) => RECORD_TYPES[name].typeByte);
    assert.equal(new Set(bytes).size, bytes.length, 'type bytes are distinct');
    for (const byte of bytes) assert.ok(Number.isInteger(byte) && byte >= 1 && byte <= 255, `type byte ${byte}`);
    const records = RECORD_TYPE_NAMES.map((type) => ({ key: Buffer.from('k'), value: Buffer.from(type), type }));
    const frame = encodeFrame(records, records.reduce((sum, record) => sum + encodedRecordBytes(record), 0));
    stampFrame(frame, 0, 1, 0, 0, 0);
    const check = checkFrame(frame, 0, frame.length);
    assert.equal(check.kind, 'ok');
    const out: WalRecord[] = [];
    assert.equal(decodeRecords(frame, 0, check.header, 0, Infinity, out), records.length);
    assert.deepEqual(out.map((record) => record.type), RECORD_TYPE_NAMES);
    // The type byte sits at the start of each record, after the 40-byte frame header.
    let p = 40;
    for (const record of records) {
      assert.equal(frame[p], RECORD_TYPES[record.type].typeByte, record.type);
      p += encodedRecordBytes(record);
    }
  });

  test('a byte no type has is reported, not decoded as some type', () => {
    const unused = Array.from({ length: 256 }, (_, byte) => byte).find((byte) => byte > 0 && !RECORD_TYPE_NAMES.some((name) => RECORD_TYPES[name].typeByte === byte))!;
    const records = [{ value: Buffer.from('v') }];
    const frame = encodeFrame(records, encodedRecordBytes(records[0]!));
    frame[40] = unused;
    stampFrame(frame, 0, 1, 0, 0, 0);
    const check = checkFrame(frame, 0, frame.length);
    assert.equal(check.kind, 'ok');
    assert.equal(decodeRecords(frame, 0, check.header, 0, Infinity, []), `unknown record type ${unused}`);
  });

  test('isRecordType accepts the names of RECORD_TYPES only, not inherited or other-case names', () => {
    for (const name of RECORD_TYPE_NAMES) assert.ok(isRecordType(name), name);
    for (const other of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'PUT', '', undefined, null, 1]) {
      assert.equal(isRecordType(other), false, String(other));
    }
  });

  test('setHeader adds __proto__ as an ordinary own header and leaves the prototype alone', () => {
    const headers: Record<string, Buffer> = {};
    setHeader(headers, 'a', Buffer.from('1'));
    setHeader(headers, '__proto__', Buffer.from('2'));
    setHeader(headers, 'constructor', Buffer.from('3'));
    assert.equal(Object.getPrototypeOf(headers), Object.prototype);
    assert.deepEqual(Object.keys(headers), ['a', '__proto__', 'constructor']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(headers, '__proto__'), { value: Buffer.from('2'), enumerable: true, writable: true, configurable: true });
    const copy: Record<string, Buffer> = {};
    for (const name in headers) setHeader(copy, name, headers[name]!);
    assert.deepStrictEqual(copy, headers);
  });
});
