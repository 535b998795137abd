/**
 * The offline tools on logs written by format version 1 (commit 27a8d45): `verify` finds what
 * recovery finds (nothing in the clean log, the torn tail of the crashed one), and `dump` decodes
 * the records recovery reads back.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyDataDir } from '../../src/offline/data-dir-verifier.js';
import { dumpLog } from '../../src/offline/log-dump.js';
import type { LogFault } from '../../src/offline/log-fault.js';
import { NodeStorage } from '../../src/storage/node-storage.js';

const FIXTURES = fileURLToPath(new URL('../../../test/compat/fixtures/v1-27a8d45/', import.meta.url));

interface Expected {
  readonly report: { readonly records: number; readonly nextOffset: number; readonly faults: readonly string[] };
  readonly records: readonly { readonly offset: number; readonly key?: string; readonly value: string }[];
}

for (const name of ['clean', 'crashed']) {
  describe(`the offline tools on a log of format version 1 (27a8d45, ${name})`, () => {
    test('verify reports the faults recovery reports, and dump decodes the records recovery reads', async () => {
      const expected = JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), 'utf8')) as Expected;
      // Read in place: neither tool writes without being asked to (no lock is taken here).
      const dir = join(FIXTURES, name);
      const storage = new NodeStorage();
      const report = await verifyDataDir(storage, dir, { snapshotDir: 'snapshots' });
      assert.deepEqual(report.faults.map((fault) => fault.kind), expected.report.faults);
      assert.equal(report.nextOffset, expected.report.nextOffset);
      assert.ok(report.segments.every((segment) => segment.formatVersion === 1));

      const records: { offset: number; key?: string; value: string }[] = [];
      const faults: LogFault[] = [];
      await dumpLog(storage, dir, {
        fromOffset: 0,
        limit: Number.POSITIVE_INFINITY,
        onRecord: (record) => records.push({ offset: record.offset, ...(record.key === undefined ? {} : { key: record.key.toString('base64') }), value: record.value.toString('base64') }),
        onFault: (fault) => faults.push(fault),
      });
      assert.deepEqual(records, expected.records.map((r) => ({ offset: r.offset, ...(r.key === undefined ? {} : { key: r.key }), value: r.value })));
      assert.deepEqual(faults.map((fault) => fault.kind), expected.report.faults);
    });
  });
}
