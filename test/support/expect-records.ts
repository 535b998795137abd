import assert from 'node:assert/strict';
import type { AppendRecord, Wal, WalRecord } from '../../src/index.js';

/** Every record from the first retained offset up to the high watermark. */
export async function readAllRecords(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(record);
  return out;
}

/**
 * Asserts that `actual` holds exactly the appended `expected` records, byte for byte, at the dense
 * offsets from `firstOffset`.
 */
export function assertRecordsEqual(actual: readonly WalRecord[], expected: readonly AppendRecord[], firstOffset = 0): void {
  assert.equal(actual.length, expected.length, 'record count');
  for (let i = 0; i < expected.length; i++) {
    const got = actual[i]!;
    const want = expected[i]!;
    const at = `record ${firstOffset + i}`;
    assert.equal(got.offset, firstOffset + i, `${at}: offset`);
    assert.equal(got.type, want.type ?? 'put', `${at}: type`);
    assert.deepEqual(got.key === undefined ? undefined : Buffer.from(got.key), want.key === undefined ? undefined : Buffer.from(want.key), `${at}: key`);
    assert.deepEqual(Buffer.from(got.value), Buffer.from(want.value), `${at}: value`);
    const wantHeaders = Object.fromEntries(Object.entries(want.headers ?? {}).map(([name, value]) => [name, Buffer.from(value)]));
    const gotHeaders = Object.fromEntries(Object.entries(got.headers).map(([name, value]) => [name, Buffer.from(value)]));
    assert.deepEqual(gotHeaders, wantHeaders, `${at}: headers`);
  }
}
