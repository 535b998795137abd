/**
 * The offline commands `wald verify`, `wald dump` and `wald repair`, each run as a child process of
 * the built CLI on real data directories: healthy, torn, bit-flipped, damaged index and snapshot;
 * text and --json output and exit codes; and a directory a live server holds (refused, or read
 * with --read-only).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { encodeRecoveryPoint } from '../../src/codec/recovery-point-file.js';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Wal } from '../../src/index.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { copyLogDir } from '../support/copy-log-dir.js';
import { runWald, type WaldRun } from '../support/cli-process.js';
import { assertRecordsEqual, readAllRecords } from '../support/expect-records.js';
import { flipByte, indexName, segmentName, testBatch, testLogOptions, writeTestLog, writeTestSnapshot, type TestLog } from '../support/offline-log.js';
import { makeTempDir } from '../support/temp-dir.js';

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function assertExit(run: WaldRun, code: number): void {
  assert.equal(run.code, code, `exit code ${code} expected; stdout: ${run.stdout} stderr: ${run.stderr}`);
}

/** Runs `body` with a fresh cleanly closed log of 40 batches (80 records) and a snapshot, removed afterwards. */
async function withLog(body: (log: TestLog, root: string) => Promise<void>): Promise<void> {
  const temp = makeTempDir('wald-cli-offline-');
  try {
    const log = await writeTestLog(join(temp.dir, 'data'), 40);
    await writeTestSnapshot(join(log.dir, 'snapshots'), 30);
    await body(log, temp.dir);
  } finally {
    temp.remove();
  }
}

describe('wald verify', () => {
  it('exits 0 on a healthy directory and reports its segments, records, offsets and snapshots, as text and JSON', async () => {
    await withLog(async (log) => {
      const text = await runWald(['verify', '--data-dir', log.dir]);
      assertExit(text, 0);
      assert.match(text.stdout, /^records +80 \(offsets 0 to 79\)$/m);
      assert.match(text.stdout, new RegExp(`^segments +${log.bases.length} \\(${log.bases.length} index files checked\\)$`, 'm'));
      assert.match(text.stdout, /^snapshots +1 of 1 verified/m);
      assert.match(text.stdout, /^ok: no faults$/m);
      assert.equal(text.stderr, '');

      const json = await runWald(['verify', '--data-dir', log.dir, '--json']);
      assertExit(json, 0);
      const doc = JSON.parse(json.stdout) as Record<string, unknown>;
      assert.equal(doc['ok'], true);
      assert.equal(doc['segment_count'], log.bases.length);
      assert.equal(doc['record_count'], 80);
      assert.equal(doc['first_offset'], 0);
      assert.equal(doc['last_offset'], 79);
      assert.equal(doc['index_files_checked'], log.bases.length);
      assert.equal(doc['snapshots_verified'], 1);
      assert.deepEqual(doc['faults'], []);
      assert.deepEqual((doc['segments'] as { base_offset: number }[]).map((s) => s.base_offset), log.bases);
    });
  });

  it('exits 1 naming the segment, the byte position and the offsets around a flipped byte, a torn tail, a damaged index and a damaged snapshot', async () => {
    await withLog(async (log, root) => {
      const sealed = log.bases[1]!;
      const frames = log.framesOf(sealed);
      const frame = frames[2]!;
      flipByte(join(log.dir, segmentName(sealed)), frame.position + 17);
      flipByte(join(log.dir, indexName(log.bases[0]!)), 90);
      const snapshot = join(log.dir, 'snapshots', readdirSync(join(log.dir, 'snapshots'))[0]!);
      flipByte(snapshot, 100);

      const text = await runWald(['verify', '--data-dir', log.dir]);
      assertExit(text, 1);
      assert.match(text.stdout, new RegExp(`^fault: corruption in ${segmentName(sealed)} at byte ${frame.position}: checksum mismatch \\(last good offset ${frame.baseOffset - 1}; next valid frame: offset ${frames[3]!.baseOffset} at byte ${frames[3]!.position}\\)$`, 'm'));
      assert.match(text.stdout, new RegExp(`^fault: index in ${indexName(log.bases[0]!)}`, 'm'));
      assert.match(text.stdout, /^fault: snapshot in /m);
      assert.match(text.stdout, /^3 faults found$/m);
      assert.match(text.stderr, /3 faults/);

      const json = await runWald(['verify', '--data-dir', log.dir, '--json']);
      assertExit(json, 1);
      const doc = JSON.parse(json.stdout) as { ok: boolean; faults: Record<string, unknown>[] };
      assert.equal(doc.ok, false);
      assert.deepEqual(doc.faults.map((f) => [f['kind'], f['file']]), [['index', indexName(log.bases[0]!)], ['corruption', segmentName(sealed)], ['snapshot', snapshot]]);
      assert.deepEqual(doc.faults[1], {
        kind: 'corruption',
        file: segmentName(sealed),
        position: frame.position,
        reason: 'checksum mismatch',
        last_good_offset: frame.baseOffset - 1,
        next_good_offset: frames[3]!.baseOffset,
        next_good_position: frames[3]!.position,
        bytes: null,
      });

      // A crash copy whose last frame was cut short: a torn tail, which the next open cuts.
      const live = join(root, 'live');
      const open = await writeTestLog(live, 12, true);
      const crashed = join(root, 'crashed');
      copyLogDir(live, crashed);
      await open.wal!.close();
      const last = open.framesOf(open.bases.at(-1)!).at(-1)!;
      truncateSync(join(crashed, segmentName(open.bases.at(-1)!)), last.position + 12);
      const torn = await runWald(['verify', '--data-dir', crashed, '--json']);
      assertExit(torn, 1);
      const tornFaults = (JSON.parse(torn.stdout) as { faults: Record<string, unknown>[] }).faults;
      assert.deepEqual(tornFaults.map((f) => [f['kind'], f['file'], f['position'], f['last_good_offset']]), [['torn-tail', segmentName(open.bases.at(-1)!), last.position, last.baseOffset - 1]]);
    });
  });
});

describe('wald dump', () => {
  it('prints the records written, as text and as JSON lines, from --from-offset, at most --limit', async () => {
    await withLog(async (log) => {
      const json = await runWald(['dump', '--data-dir', log.dir, '--json']);
      assertExit(json, 0);
      const records = jsonLines(json.stdout);
      assert.equal(records.length, 80);
      records.forEach((record, i) => {
        const want = log.records[i]!;
        assert.equal(record['offset'], i);
        assert.equal(record['type'], 'put');
        assert.equal(record['value_size_bytes'], want.value.length);
        const value = typeof record['value'] === 'string' ? Buffer.from(record['value']) : Buffer.from(String(record['value_base64']), 'base64');
        assert.deepEqual(value, Buffer.from(want.value), `record ${i}`);
        assert.equal(record['key'] ?? null, want.key === undefined ? null : Buffer.from(want.key).toString());
        assert.deepEqual(record['headers'], Object.fromEntries(Object.entries(want.headers ?? {}).map(([n, v]) => [n, Buffer.from(v).toString()])));
      });

      const page = await runWald(['dump', '--data-dir', log.dir, '--json', '--from-offset', '33', '--limit', '5']);
      assertExit(page, 0);
      assert.deepEqual(jsonLines(page.stdout).map((r) => r['offset']), [33, 34, 35, 36, 37]);

      const text = await runWald(['dump', '--data-dir', log.dir, '--from-offset', '4', '--limit', '2']);
      assertExit(text, 0);
      const lines = text.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^OFFSET +TIMESTAMP +TYPE +KEY +VALUE_BYTES +HEADERS +VALUE$/);
      assert.match(lines[1]!, /^4 +\S+ +put +key-2 +32 +- +batch 2 record 0 \.+$/);
      assert.match(lines[2]!, /^5 +\S+ +put +- +4 +n=2 +hex:fffe0200$/);
      assert.equal(lines[3], '(2 records)');
    });
  });

  it('prints the frame headers with --frames, where they lie in each segment', async () => {
    await withLog(async (log) => {
      const run = await runWald(['dump', '--data-dir', log.dir, '--frames', '--json']);
      assertExit(run, 0);
      const frames = jsonLines(run.stdout);
      const expected = log.bases.flatMap((base) => log.framesOf(base).map((frame) => ({ segment: segmentName(base), ...frame })));
      assert.deepEqual(
        frames.map((f) => [f['segment'], f['position'], f['length'], f['base_offset'], f['record_count']]),
        expected.map((f) => [f.segment, f.position, f.length, f.baseOffset, f.recordCount]),
      );
      assert.deepEqual(frames.slice(0, 2).map((f) => [f['producer_id'], f['sequence'], f['flags']]), [['producer-1', 0, 1], [null, null, 0]]);
      const from = await runWald(['dump', '--data-dir', log.dir, '--frames', '--json', '--from-offset', '41', '--limit', '2']);
      assertExit(from, 0);
      assert.deepEqual(jsonLines(from.stdout).map((f) => f['base_offset']), [40, 42]);
    });
  });

  it('reports damage on stderr, goes on at the next valid frame, and exits 1', async () => {
    await withLog(async (log) => {
      const frame = log.framesOf(0)[3]!;
      flipByte(join(log.dir, segmentName(0)), frame.position + 50);
      const run = await runWald(['dump', '--data-dir', log.dir, '--json']);
      assertExit(run, 1);
      const offsets = jsonLines(run.stdout).map((r) => r['offset']);
      assert.deepEqual(offsets, Array.from({ length: 80 }, (_, i) => i).filter((o) => o < frame.baseOffset || o >= frame.baseOffset + frame.recordCount));
      const fault = jsonLines(run.stderr)[0]!['fault'] as Record<string, unknown>;
      assert.deepEqual([fault['kind'], fault['file'], fault['position']], ['corruption', segmentName(0), frame.position]);
    });
  });
});

describe('wald dump and wald replay over missing segments', () => {
  it('report a missing middle segment, and a missing last one below the recovery point, as damage (exit 1), as verify and the server do', async () => {
    const temp = makeTempDir('wald-cli-offline-gap-');
    try {
      const log = await writeTestLog(join(temp.dir, 'data'), 130);
      assert.ok(log.bases.length >= 3, `${log.bases.length} segments`);
      const removeSegment = (base: number): void => {
        rmSync(join(log.dir, segmentName(base)));
        rmSync(join(log.dir, indexName(base)), { force: true });
      };
      removeSegment(log.bases[1]!);
      const dump = await runWald(['dump', '--data-dir', log.dir, '--json']);
      assertExit(dump, 1);
      const fault = jsonLines(dump.stderr)[0]!['fault'] as Record<string, unknown>;
      assert.deepEqual([fault['kind'], fault['file']], ['corruption', segmentName(log.bases[2]!)]);
      assert.match(String(fault['reason']), /^segment gap: /);
      const replay = await runWald(['replay', '--data-dir', log.dir, '--json']);
      assertExit(replay, 1);
      assert.match(replay.stderr, /WAL_CORRUPTION: .*segment gap: /);
      // Every segment after the first gone: the log ends below its recovery point (RECOVERY says
      // how far the log was durable), with no gap left to see.
      // As a server that ran a while leaves it: RECOVERY at the log's end (the test log's engine wrote it once, early).
      writeFileSync(join(log.dir, 'RECOVERY'), encodeRecoveryPoint({ sequence: 2, durableNext: log.records.length }));
      for (const base of log.bases.slice(2)) removeSegment(base);
      const truncatedDump = await runWald(['dump', '--data-dir', log.dir, '--json']);
      assertExit(truncatedDump, 1);
      assert.match(truncatedDump.stderr, /below its recovery point/);
      const truncatedReplay = await runWald(['replay', '--data-dir', log.dir, '--json']);
      assertExit(truncatedReplay, 1);
      assert.match(truncatedReplay.stderr, /WAL_CORRUPTION: .*below its recovery point/);
    } finally {
      temp.remove();
    }
  });
});

describe('wald repair', () => {
  it('refuses without --yes when stdin is not a terminal, and changes nothing', async () => {
    await withLog(async (log) => {
      const before = readFileSync(join(log.dir, segmentName(log.bases[1]!)));
      const run = await runWald(['repair', '--data-dir', log.dir, '--truncate-at', String(log.bases[1]!)]);
      assertExit(run, 2);
      assert.match(run.stderr, /--yes/);
      assert.deepEqual(readFileSync(join(log.dir, segmentName(log.bases[1]!))), before);
      assert.ok(!readdirSync(log.dir).some((name) => name.startsWith('repair-')));
    });
  });

  it('cuts the log at the offset with --yes, keeps the cut in repair-<time>/, and the log reopens and appends there', async () => {
    await withLog(async (log) => {
      const frame = log.framesOf(log.bases[1]!)[2]!;
      const offset = frame.baseOffset;
      const cutSegment = readFileSync(join(log.dir, segmentName(log.bases[1]!))).subarray(frame.position);
      const run = await runWald(['repair', '--data-dir', log.dir, '--truncate-at', String(offset), '--yes', '--json']);
      assertExit(run, 0);
      const doc = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(doc['truncate_at'], offset);
      assert.equal(doc['previous_next_offset'], 80);
      assert.equal(doc['cut_position'], frame.position);
      assert.deepEqual(doc['removed_segments'], log.bases.slice(2).map(segmentName));
      const side = join(log.dir, String(doc['saved_to']));
      assert.match(String(doc['saved_to']), /^repair-\d{8}T\d{9}Z$/);
      assert.deepEqual(readFileSync(join(side, `${segmentName(log.bases[1]!)}.${frame.position}.cut`)), cutSegment);
      // The snapshot at offset 30 holds cut records when the offset is below it.
      assert.equal((doc['moved_snapshots'] as string[]).length, offset < 30 ? 1 : 0);

      const { wal } = await Wal.open(testLogOptions(log.dir));
      try {
        assertRecordsEqual(await readAllRecords(wal), log.records.slice(0, offset));
        assert.equal((await wal.append(testBatch(99))).firstOffset, offset);
      } finally {
        await wal.close();
      }
      assertExit(await runWald(['verify', '--data-dir', log.dir]), 0);
    });
  });
});

describe('the offline commands and a live server', () => {
  it('are refused with WAL_LOCKED while a server holds the directory; verify and dump --read-only read it as it is', async () => {
    await withLog(async (log, root) => {
      const dir = join(root, 'served');
      cpSync(log.dir, dir, { recursive: true });
      const { server } = await WaldServer.open({ dir, segmentSizeBytes: 4096 }, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
      try {
        await server.start();
        const before = readdirSync(dir).sort();
        for (const args of [['verify'], ['dump'], ['repair', '--truncate-at', '2', '--yes']]) {
          const run = await runWald([...args, '--data-dir', dir]);
          assertExit(run, 1);
          assert.match(run.stderr, /WAL_LOCKED: the data directory .* is in use by \d+@/, args[0]);
        }
        assert.deepEqual(readdirSync(dir).sort(), before, 'nothing was written');

        const verify = await runWald(['verify', '--data-dir', dir, '--read-only', '--json']);
        assertExit(verify, 0);
        const report = JSON.parse(verify.stdout) as { record_count: number; ok: boolean };
        assert.equal(report.record_count, 80);
        assert.equal(report.ok, true);
        const dump = await runWald(['dump', '--data-dir', dir, '--read-only', '--json', '--from-offset', '78']);
        assertExit(dump, 0);
        assert.deepEqual(jsonLines(dump.stdout).map((r) => r['offset']), [78, 79]);
      } finally {
        await server.stop();
      }
      assert.ok(existsSync(join(dir, 'CLEAN')));
    });
  });
});
