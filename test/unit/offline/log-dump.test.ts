/**
 * `dumpLog` on real directories: the records and frames it decodes are those written, from an
 * offset, up to a limit; a segment compacted away under a dump that holds no lock is a note, not
 * a failure.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { dumpLog, type DumpedFrame } from '../../../src/offline/log-dump.js';
import type { LogFault } from '../../../src/offline/log-fault.js';
import type { WalRecord } from '../../../src/index.js';
import { NodeStorage } from '../../../src/storage/node-storage.js';
import { assertRecordsEqual } from '../../support/expect-records.js';
import { indexName, segmentName, writeTestLog } from '../../support/offline-log.js';
import { makeTempDir } from '../../support/temp-dir.js';

/** The real file system, except that a listing still names `ghost`: a segment deleted after the dump listed the directory. */
class ListsGhost extends NodeStorage {
  constructor(private readonly ghost: string) {
    super();
  }

  override list(dir: string): string[] {
    return [...super.list(dir), this.ghost];
  }
}

describe('dumpLog', () => {
  test('decodes the records written, from an offset, at most a limit, across segments', async () => {
    const { dir, remove } = makeTempDir('wald-dump-');
    try {
      const log = await writeTestLog(dir, 80);
      const records: WalRecord[] = [];
      const faults: LogFault[] = [];
      const from = log.bases[1]! - 3;
      const summary = await dumpLog(new NodeStorage(), dir, { fromOffset: from, limit: 70, onRecord: (record) => records.push(record), onFault: (f) => faults.push(f) });
      assert.deepEqual(faults, []);
      assert.deepEqual(summary, { records: 70, frames: 0, faults: 0 });
      assertRecordsEqual(records, log.records.slice(from, from + 70), from);
    } finally {
      remove();
    }
  });

  test('notes a segment compacted away under it and dumps the rest', async () => {
    const { dir, remove } = makeTempDir('wald-dump-');
    try {
      const log = await writeTestLog(dir, 80);
      rmSync(join(dir, segmentName(log.bases[0]!)));
      rmSync(join(dir, indexName(log.bases[0]!)));
      const notes: string[] = [];
      const frames: DumpedFrame[] = [];
      const summary = await dumpLog(new ListsGhost(segmentName(log.bases[0]!)), dir, {
        fromOffset: 0,
        limit: Number.POSITIVE_INFINITY,
        onFrame: (frame) => frames.push(frame),
        onFault: (fault) => assert.fail(`no fault expected: ${JSON.stringify(fault)}`),
        onNote: (note) => notes.push(note),
      });
      assert.equal(notes.length, 1);
      assert.match(notes[0]!, /removed while the dump ran/);
      assert.equal(frames[0]?.baseOffset, log.bases[1]);
      assert.equal(summary.frames, log.bases.slice(1).reduce((n, base) => n + log.framesOf(base).length, 0));
    } finally {
      remove();
    }
  });
});
