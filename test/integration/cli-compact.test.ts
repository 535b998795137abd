/**
 * `wald compact` and `wald delete-segments-before` against a real server on 127.0.0.1:0 (in this
 * process), each run as a child process of the built CLI: text and --json output (proto field
 * names, snake_case), and exit codes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WaldServer } from '../../src/server/wald-server.js';
import { runWald, type WaldRun } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

/** Runs `body` with `wald ARGS... --server ADDRESS` against a fresh server holding several segments of records. */
async function withServer(
  body: (wald: (args: readonly string[]) => Promise<WaldRun>, server: WaldServer) => Promise<void>,
  retentionMs = 0,
): Promise<void> {
  const temp = makeTempDir('wald-cli-compact-');
  const { server } = await WaldServer.open(
    { dir: join(temp.dir, 'data'), preallocate: false, segmentSizeBytes: 8192 },
    { listen: '127.0.0.1:0', state: { compaction: { retentionMs } } },
    pino({ level: 'silent' }),
  );
  try {
    const port = await server.start();
    for (let i = 0; i < 300; i += 10) {
      await server.wal.append(Array.from({ length: 10 }, (_, j) => ({ key: Buffer.from(`k${(i + j) % 5}`), value: Buffer.alloc(200, 'v') })));
    }
    await body((args) => runWald([...args, '--server', `127.0.0.1:${port}`]), server);
  } finally {
    await server.stop();
    temp.remove();
  }
}

function assertOk(run: WaldRun): void {
  assert.equal(run.code, 0, `exit code 0 expected; stderr: ${run.stderr}`);
}

describe('wald compact', () => {
  it('--dry-run reports as text and JSON and changes nothing; compact deletes segments and prints what it did', async () => {
    await withServer(async (wald, server) => {
      const segments = server.wal.listSegments().length;
      const dryText = await wald(['compact', '--dry-run']);
      assertOk(dryText);
      assert.match(dryText.stdout, /^dry run +yes: nothing was changed\n/);
      assert.match(dryText.stdout, /\nsegments deleted \(would be\) +\d+\n/);
      assert.match(dryText.stdout, /\nredundancy +\d+\.\d% of the retained records\n/);
      const dry = JSON.parse((await wald(['compact', '--dry-run', '--json'])).stdout) as Record<string, unknown>;
      assert.deepEqual(Object.keys(dry), [
        'dry_run',
        'snapshots_created',
        'segments_deleted',
        'bytes_reclaimed',
        'snapshots_deleted',
        'total_snapshots',
        'wal_segments',
        'snapshot_id',
        'snapshot_offset',
        'checkpoint_offset',
        'first_offset',
        'redundancy_ratio',
        'record_counts',
        'duration_ms',
        'lease_held_segments',
        'lease_held_bytes',
        'lease_holders',
      ]);
      assert.equal(dry['dry_run'], true);
      assert.equal(dry['segments_deleted'], segments - 1);
      assert.equal(dry['checkpoint_offset'], null);
      assert.equal(typeof dry['redundancy_ratio'], 'number');
      const counts = dry['record_counts'] as Record<string, number>;
      assert.deepEqual(Object.keys(counts), ['put', 'delete', 'prepare', 'commit', 'abort', 'checkpoint', 'flush_all']);
      assert.ok(counts['put']! > 0);
      assert.match(dryText.stdout, /\nrecords by type +put \d+, delete \d+, prepare 0, commit 0, abort 0, checkpoint \d+, flush_all 0\n/);
      assert.equal(server.wal.listSegments().length, segments, 'the dry runs changed nothing');
      assert.equal(server.wal.firstOffset, 0);

      const json = await wald(['compact', '--json']);
      assertOk(json);
      const done = JSON.parse(json.stdout) as Record<string, unknown>;
      assert.equal(done['dry_run'], false);
      assert.equal(done['snapshots_created'], 1);
      assert.equal(done['first_offset'], server.wal.firstOffset);
      assert.ok((done['segments_deleted'] as number) > 0);
      assert.equal(done['redundancy_ratio'], null);
      assert.equal(done['record_counts'], null);

      const text = await wald(['compact', '--force-snapshot']);
      assertOk(text);
      assert.match(text.stdout, /^dry run +no\nsnapshots created +1\nsnapshot +\d{20}-\d{15}-[0-9a-f]{8} \(offset \d+\)\n/);
      const stats = JSON.parse((await wald(['wal-stats', '--json'])).stdout) as Record<string, unknown>;
      assert.equal(stats['reclaimable_bytes'], 0);
      assert.equal(stats['first_offset'], server.wal.firstOffset);
    });
  });

  it('--aggressive rewrites the segments retention keeps and reports it as text and JSON; --threshold outside 0..100 exits 2', async () => {
    await withServer(async (wald) => {
      const text = await wald(['compact', '--aggressive', '--dry-run']);
      assertOk(text);
      assert.match(text.stdout, /\nkey compaction: segments rewritten \(would be\) +\d+ of \d+ sealed\n/);
      assert.match(text.stdout, /\nkey compaction: bytes \(would be\) +\d+ -> \d+, \d+ freed \(\d+\.\d%\)\n/);
      const json = await wald(['compact', '--aggressive', '--threshold', '10', '--json']);
      assertOk(json);
      const done = JSON.parse(json.stdout) as { segments_deleted: number; key_compaction: Record<string, number> };
      assert.equal(done.segments_deleted, 0, 'retention kept the segments');
      assert.deepEqual(Object.keys(done.key_compaction), [
        'segments_considered',
        'segments_rewritten',
        'records_considered',
        'records_dropped',
        'redundancy_percent',
        'before_size_bytes',
        'after_size_bytes',
        'freed_bytes',
        'reduction_percent',
        'duration_ms',
      ]);
      assert.ok(done.key_compaction['segments_rewritten']! > 0);
      assert.equal(done.key_compaction['freed_bytes'], done.key_compaction['before_size_bytes']! - done.key_compaction['after_size_bytes']!);
      assert.ok(done.key_compaction['freed_bytes']! > 0);
      const plain = JSON.parse((await wald(['compact', '--json'])).stdout) as Record<string, unknown>;
      assert.equal(plain['key_compaction'], undefined, 'no key compaction without --aggressive');
      const bad = await wald(['compact', '--aggressive', '--threshold', '101']);
      assert.equal(bad.code, 2);
    }, 24 * 60 * 60 * 1000);
  });

  it('delete-segments-before exits 1 with FAILED_PRECONDITION without a covering snapshot, deletes with --force, and exits 2 on a bad offset', async () => {
    await withServer(async (wald, server) => {
      const refused = await wald(['delete-segments-before', '200']);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, '');
      assert.match(refused.stderr, /^wald: FAILED_PRECONDITION \(WAL_NOT_COVERED\): .*\[.*offset=200.*\]\n$/);
      const refusedJson = await wald(['delete-segments-before', '200', '--json']);
      assert.equal(refusedJson.code, 1);
      assert.equal((JSON.parse(refusedJson.stderr) as { error: { reason: string } }).error.reason, 'WAL_NOT_COVERED');

      const forced = await wald(['delete-segments-before', '200', '--force', '--json']);
      assertOk(forced);
      const result = JSON.parse(forced.stdout) as Record<string, number>;
      assert.deepEqual(Object.keys(result), ['segments_deleted', 'bytes_reclaimed', 'first_offset']);
      assert.ok(result['segments_deleted']! > 0);
      assert.equal(result['first_offset'], server.wal.firstOffset);
      const again = await wald(['delete-segments-before', '200', '--force']);
      assertOk(again);
      assert.match(again.stdout, /^deleted 0 segments \(0 bytes\); the log starts at offset \d+\n$/);

      const bad = await wald(['delete-segments-before', 'ten']);
      assert.equal(bad.code, 2);
    });
  });
});
