import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWalError } from '../../../src/errors.js';
import type { AppendRequest } from '../../../src/gen/wald/v1/append.js';
import { RecordType } from '../../../src/gen/wald/v1/record.js';
import { parseAppendRequest } from '../../../src/server/append-request.js';

const request = (extra: Partial<AppendRequest>): AppendRequest => ({ records: [], producerId: '', sequence: 0n, sync: false, minReplicas: 0, ...extra });
const record = (type: RecordType, key?: Buffer) => ({ value: Buffer.from('v'), headers: {}, type, key });

test('record types: UNSPECIFIED is a put, each client type maps to the log type, server-only and unknown values are refused', () => {
  const { records } = parseAppendRequest(
    request({ records: [record(RecordType.RECORD_TYPE_UNSPECIFIED), record(RecordType.RECORD_TYPE_PUT), record(RecordType.RECORD_TYPE_DELETE, Buffer.from('k'))] }),
  );
  assert.deepEqual(records.map((r) => r.type), ['put', 'put', 'delete']);
  assert.throws(
    () => parseAppendRequest(request({ records: [record(RecordType.RECORD_TYPE_PUT), record(RecordType.RECORD_TYPE_CHECKPOINT)] })),
    (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'records[1].type' && /RECORD_TYPE_CHECKPOINT/.test(e.message),
  );
  assert.throws(
    () => parseAppendRequest(request({ records: [record(99 as RecordType)] })),
    (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'records[0].type' && e.details['value'] === '99',
  );
});

test('uint64 fields above 2^53 - 1 are refused naming the proto field; proto3 defaults become unset options', () => {
  const big = 2n ** 53n;
  assert.throws(() => parseAppendRequest(request({ records: [record(0)], expectedOffset: big })), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'expected_offset');
  assert.throws(() => parseAppendRequest(request({ records: [record(0)], producerId: 'p', sequence: big })), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'sequence');
  assert.throws(() => parseAppendRequest(request({ records: [record(0)], expectedEpoch: big })), (e) => isWalError(e, 'WAL_INVALID_ARGUMENT') && e.details['field'] === 'expected_epoch');
  assert.deepEqual(parseAppendRequest(request({ records: [record(0)] })).options, { sync: false, expectedOffset: undefined, expectedEpoch: undefined, producerId: undefined, sequence: undefined });
  assert.deepEqual(parseAppendRequest(request({ records: [record(0)], expectedOffset: 0n, expectedEpoch: 0n, producerId: 'p', sync: true })).options, {
    sync: true,
    expectedOffset: 0,
    expectedEpoch: 0,
    producerId: 'p',
    sequence: 0,
  });
});

test('data rules are left to the engine: the request is translated as it is', () => {
  // No records, a DELETE without a key, an empty header name, a long producer id, a sequence
  // without a producer: each is the engine's to refuse (test/unit/engine/append-validation.test.ts).
  assert.deepEqual(parseAppendRequest(undefined).records, []);
  assert.deepEqual(parseAppendRequest(request({ records: [{ value: Buffer.alloc(0), headers: { '': Buffer.from('x') }, type: RecordType.RECORD_TYPE_DELETE }] })).records, [
    { key: undefined, value: Buffer.alloc(0), headers: { '': Buffer.from('x') }, type: 'delete' },
  ]);
  const options = parseAppendRequest(request({ records: [record(0)], producerId: 'p'.repeat(300), sequence: 0n })).options;
  assert.equal(options.producerId, 'p'.repeat(300));
  assert.equal(parseAppendRequest(request({ records: [record(0)], sequence: 5n })).options.sequence, 5);
});

test('a header named __proto__, which the generated decoder turned into the prototype, is an ordinary header again', () => {
  const headers: { [name: string]: Buffer } = { plain: Buffer.from('p') };
  Object.setPrototypeOf(headers, Buffer.from('proto-value'));
  const [parsed] = parseAppendRequest(request({ records: [{ value: Buffer.from('v'), headers, type: 0 }] })).records;
  assert.equal(Object.getPrototypeOf(parsed!.headers), Object.prototype);
  assert.deepEqual(Object.keys(parsed!.headers!), ['plain', '__proto__']);
  assert.deepEqual(parsed!.headers!['__proto__'], Buffer.from('proto-value'));
});
