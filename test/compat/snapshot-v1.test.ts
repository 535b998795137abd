/**
 * Snapshot files of format version 1 (before transactions), written by commit 85fcb66: a full
 * snapshot and a gzip-compressed incremental on it. Today's reader verifies the chain and loads it
 * to the same state, with an empty transaction table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listSnapshots, loadSnapshot, verifySnapshot } from '../../src/state/snapshot-reader.js';
import { NodeStorage } from '../../src/storage/node-storage.js';

const FIXTURE = fileURLToPath(new URL('../../../test/compat/fixtures/snapshot-v1-85fcb66/', import.meta.url));

interface Expected {
  readonly full: string;
  readonly incremental: string;
  readonly walOffset: number;
  readonly entries: readonly { readonly key: string; readonly value: string; readonly offset: number; readonly timestamp: number }[];
}

describe('snapshot files of format version 1', () => {
  test('verify and load to the state they were written of, with no transactions', async () => {
    const expected = JSON.parse(readFileSync(join(FIXTURE, '..', 'snapshot-v1-85fcb66.expected.json'), 'utf8')) as Expected;
    const storage = new NodeStorage();
    const listing = listSnapshots(storage, FIXTURE);
    assert.deepEqual(listing.snapshots.map((s) => s.id), [expected.full, expected.incremental]);
    const incrementalPath = join(FIXTURE, `${expected.incremental}.snap`);
    const verified = await verifySnapshot(storage, incrementalPath);
    assert.ok(verified.ok, verified.ok ? '' : verified.reason);
    const loaded = await loadSnapshot(storage, incrementalPath);
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.reason);
    assert.equal(loaded.state.nextOffset, expected.walOffset);
    const entries = loaded.state.list({ limit: 100 }).entries.map((e) => ({ key: e.key.toString(), value: e.value.toString(), offset: e.offset, timestamp: e.timestamp }));
    assert.deepEqual(entries, expected.entries);
    assert.equal(loaded.txns.inDoubtCount, 0);
    assert.equal(loaded.txns.endedCount, 0);
  });
});
