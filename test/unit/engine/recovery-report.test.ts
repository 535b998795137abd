import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Wal, type AppendRecord, type WalOptions } from '../../../src/index.js';
import { copyLogDir } from '../../support/copy-log-dir.js';
import { assertRecordsEqual, readAllRecords } from '../../support/expect-records.js';
import { FakeClock } from '../../support/fake-clock.js';
import { makeTempDir } from '../../support/temp-dir.js';

const SEGMENT_SIZE_BYTES = 4096;
const SEGMENT_HEADER_BYTES = 64;

function segmentName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.seg`;
}

function indexName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.idx`;
}

function batch(b: number): AppendRecord[] {
  return [
    { key: Buffer.from(`key-${b}`), value: Buffer.from(`batch ${b} `.padEnd(60 + (b % 5), '*')) },
    { value: Buffer.from(`batch ${b} second`), headers: { b: Buffer.from(String(b)) } },
  ];
}

function segmentBases(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => /^\d{20}\.seg$/.test(name))
    .sort()
    .map((name) => Number(name.slice(0, 20)));
}

function options(dir: string, preallocate: boolean): WalOptions {
  return { dir, syncPolicy: 'none', segmentSizeBytes: SEGMENT_SIZE_BYTES, preallocate, clock: new FakeClock().now };
}

/** Appends `batches` batches (numbered from `from`) and returns the records appended. */
async function appendBatches(wal: Wal, from: number, batches: number): Promise<AppendRecord[]> {
  const records: AppendRecord[] = [];
  for (let b = from; b < from + batches; b++) {
    await wal.append(batch(b));
    records.push(...batch(b));
  }
  return records;
}

/** A cleanly closed log of three or more segments. */
async function writeClosedLog(dir: string, preallocate: boolean): Promise<{ records: AppendRecord[]; bases: number[] }> {
  const { wal } = await Wal.open(options(dir, preallocate));
  const records = await appendBatches(wal, 0, 80);
  await wal.close();
  const bases = segmentBases(dir);
  assert.ok(bases.length >= 3, `${bases.length} segments`);
  return { records, bases };
}

describe('recovery report', () => {
  test('reports an empty log for a new directory', async () => {
    const { dir, remove } = makeTempDir('wald-recovery-');
    try {
      const { wal, report } = await Wal.open(options(join(dir, 'data'), false));
      await wal.close();
      assert.deepEqual({ ...report, durationMs: 0 }, {
        segments: 0,
        records: 0,
        firstOffset: 0,
        nextOffset: 0,
        bytesScanned: 0,
        bytesCut: 0,
        faults: [],
        durationMs: 0,
      });
      assert.ok(report.durationMs >= 0);
    } finally {
      remove();
    }
  });

  for (const preallocate of [false, true]) {
    const kind = preallocate ? 'preallocated' : 'grown';

    test(`scans no bytes when reopening after a clean close (${kind})`, async () => {
      const { dir, remove } = makeTempDir('wald-recovery-');
      try {
        const { records, bases } = await writeClosedLog(dir, preallocate);
        const { wal, report } = await Wal.open(options(dir, preallocate));
        try {
          assert.equal(report.bytesScanned, 0);
          assert.equal(report.bytesCut, 0);
          assert.deepEqual(report.faults, []);
          assert.equal(report.segments, bases.length);
          assert.equal(report.records, records.length);
          assert.equal(report.firstOffset, 0);
          assert.equal(report.nextOffset, records.length);
          assertRecordsEqual(await readAllRecords(wal), records);
        } finally {
          await wal.close();
        }
      } finally {
        remove();
      }
    });

    test(`scans the whole active segment after a crash of a re-opened log, whose active index was removed at open (${kind})`, async () => {
      const { dir: root, remove } = makeTempDir('wald-recovery-');
      try {
        const live = join(root, 'live');
        const crashed = join(root, 'crashed');
        const first = await Wal.open(options(live, preallocate));
        const records = await appendBatches(first.wal, 0, 4);
        await first.wal.close();
        const second = await Wal.open(options(live, preallocate));
        assert.ok(!existsSync(join(live, indexName(0))), 'the active segment index goes stale at the first append, so open removes it');
        records.push(...(await appendBatches(second.wal, 4, 5)));
        await second.wal.sync();
        // The state a crash would leave: CLEAN and the active index were removed at open.
        copyLogDir(live, crashed);
        await second.wal.close();
        assert.deepEqual(segmentBases(crashed), [0]);

        const fileSize = statSync(join(crashed, segmentName(0))).size;
        const { wal, report } = await Wal.open(options(crashed, preallocate));
        try {
          assert.equal(report.bytesScanned, fileSize - SEGMENT_HEADER_BYTES);
          assert.deepEqual(report.faults, []);
          assert.equal(report.nextOffset, records.length);
          assertRecordsEqual(await readAllRecords(wal), records);
        } finally {
          await wal.close();
        }
      } finally {
        remove();
      }
    });

    test(`scans the whole active segment when neither CLEAN nor its index exists (${kind})`, async () => {
      const { dir, remove } = makeTempDir('wald-recovery-');
      try {
        const { records, bases } = await writeClosedLog(dir, preallocate);
        const active = bases.at(-1)!;
        rmSync(join(dir, 'CLEAN'));
        rmSync(join(dir, indexName(active)));
        const fileSize = statSync(join(dir, segmentName(active))).size;
        const { wal, report } = await Wal.open(options(dir, preallocate));
        try {
          assert.equal(report.bytesScanned, fileSize - SEGMENT_HEADER_BYTES);
          assert.deepEqual(report.faults, []);
          assert.equal(report.nextOffset, records.length);
          assertRecordsEqual(await readAllRecords(wal), records);
        } finally {
          await wal.close();
        }
      } finally {
        remove();
      }
    });
  }

  test('rebuilds a missing index of a sealed segment by scanning only that segment, and the log reads back', async () => {
    const { dir, remove } = makeTempDir('wald-recovery-');
    try {
      const { records, bases } = await writeClosedLog(dir, false);
      const sealed = bases[1]!;
      rmSync(join(dir, indexName(sealed)));
      const { wal, report } = await Wal.open(options(dir, false));
      try {
        assert.equal(report.faults.length, 1);
        const fault = report.faults[0]!;
        assert.equal(fault.kind, 'index-rebuilt');
        assert.equal(fault.kind === 'index-rebuilt' ? fault.segment : undefined, segmentName(sealed));
        assert.equal(report.bytesScanned, statSync(join(dir, segmentName(sealed))).size - SEGMENT_HEADER_BYTES);
        assert.equal(report.nextOffset, records.length);
        assertRecordsEqual(await readAllRecords(wal), records);
        // Lookups into the middle of the rebuilt segment find their records.
        const middle = sealed + 7;
        assertRecordsEqual(await wal.read(middle, { limit: 3 }), records.slice(middle, middle + 3), middle);
      } finally {
        await wal.close();
      }
      assert.ok(existsSync(join(dir, indexName(sealed))), 'the rebuilt index is written back');
      const again = await Wal.open(options(dir, false));
      assert.deepEqual(again.report.faults, [], 'the next open trusts the rewritten index');
      assert.equal(again.report.bytesScanned, 0);
      await again.wal.close();
    } finally {
      remove();
    }
  });

  test('refuses to open when a segment is shorter than its index says (durable records lost)', async () => {
    const { dir, remove } = makeTempDir('wald-recovery-');
    try {
      const { bases } = await writeClosedLog(dir, false);
      const active = join(dir, segmentName(bases[bases.length - 1]!));
      writeFileSync(active, readFileSync(active).subarray(0, statSync(active).size - 8));
      await assert.rejects(Wal.open(options(dir, false)), (error: unknown) => {
        const e = error as { code?: string; details?: Record<string, unknown> };
        return e.code === 'WAL_CORRUPTION' && e.details?.['reason'] === 'segment shorter than its index';
      });
    } finally {
      remove();
    }
  });

  test('a power cut that kept the last frame but not all of its padding: the padding is written again, and the log reopens after a clean close', async () => {
    const { dir, remove } = makeTempDir('wald-recovery-');
    try {
      const { wal } = await Wal.open(options(dir, false));
      // 40 + 12 + 3 + 5 = 60 bytes: 4 bytes of padding to 64.
      const record = { key: Buffer.from('abc'), value: Buffer.from('vwxyz') };
      await wal.append([record]);
      await wal.close();
      const active = join(dir, segmentName(0));
      const dataEnd = statSync(active).size;
      assert.equal(dataEnd, SEGMENT_HEADER_BYTES + 64);
      // What a crash leaves: no clean marker, no index of the active segment, the file cut inside the padding.
      for (const name of readdirSync(dir)) if (name === 'CLEAN' || name === indexName(0)) rmSync(join(dir, name));
      writeFileSync(active, readFileSync(active).subarray(0, dataEnd - 3));
      const reopened = await Wal.open(options(dir, false));
      assert.deepEqual(reopened.report.faults, [{ kind: 'padding-restored', segment: segmentName(0), position: dataEnd - 3, bytesAdded: 3 }]);
      assert.equal(statSync(active).size, dataEnd, 'the file reaches the end of its data again');
      await reopened.wal.close();
      const again = await Wal.open(options(dir, false));
      assertRecordsEqual(await readAllRecords(again.wal), [record]);
      assert.deepEqual(again.report.faults, []);
      await again.wal.close();
    } finally {
      remove();
    }
  });

  test('rebuilds an index that is damaged or belongs to another segment file, and the log reads back', async () => {
    const { dir, remove } = makeTempDir('wald-recovery-');
    try {
      const { records, bases } = await writeClosedLog(dir, false);
      const [first, second, third] = [bases[0]!, bases[1]!, bases[2]!];
      const damaged = readFileSync(join(dir, indexName(first)));
      damaged[80]! ^= 0x01;
      writeFileSync(join(dir, indexName(first)), damaged);
      copyFileSync(join(dir, indexName(third)), join(dir, indexName(second)));
      const { wal, report } = await Wal.open(options(dir, false));
      try {
        assert.deepEqual(
          report.faults.map((fault) => [fault.kind, 'segment' in fault ? fault.segment : undefined]),
          [
            ['index-rebuilt', segmentName(first)],
            ['index-rebuilt', segmentName(second)],
          ],
        );
        const reasons = report.faults.map((fault) => (fault.kind === 'index-rebuilt' ? fault.reason : ''));
        assert.match(reasons[0]!, /checksum/);
        assert.match(reasons[1]!, /another segment/);
        assertRecordsEqual(await readAllRecords(wal), records);
      } finally {
        await wal.close();
      }
    } finally {
      remove();
    }
  });

  test('removes leftover temp files and reports each one, leaving other files alone', async () => {
    const { dir, remove } = makeTempDir('wald-recovery-');
    try {
      const { records } = await writeClosedLog(dir, false);
      const debris = ['next-segment.tmp', '00000000000000000000.idx.tmp', 'CLEAN.tmp', 'space-probe.tmp'];
      for (const name of debris) writeFileSync(join(dir, name), Buffer.alloc(100, 1));
      writeFileSync(join(dir, 'operator-notes.txt'), 'keep me');
      const { wal, report } = await Wal.open(options(dir, false));
      try {
        assert.deepEqual(
          report.faults.map((fault) => (fault.kind === 'temp-file-removed' ? fault.file : fault.kind)).sort(),
          [...debris].sort(),
        );
        for (const name of debris) assert.ok(!existsSync(join(dir, name)), `${name} removed`);
        assert.ok(existsSync(join(dir, 'operator-notes.txt')));
        assert.equal(report.bytesScanned, 0, 'temp files do not make the open re-scan');
        assertRecordsEqual(await readAllRecords(wal), records);
      } finally {
        await wal.close();
      }
    } finally {
      remove();
    }
  });
});
