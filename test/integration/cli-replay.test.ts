/**
 * `wald replay` as a child process of the built CLI on a real data directory (a compacted log with
 * snapshots): the --json figures against a model of the records appended, --from/--to, the same
 * answer on a second run with nothing written, --verify on a healthy and a damaged directory, the
 * refusal of a point before the first retained record, and the directory lock.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Wal } from '../../src/engine/wal.js';
import { Compactor } from '../../src/state/compactor.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../src/state/state-options.js';
import { NodeStorage } from '../../src/storage/node-storage.js';
import { runWald, type WaldRun } from '../support/cli-process.js';
import { FakeClock } from '../support/fake-clock.js';
import { flipByte } from '../support/offline-log.js';
import { makeTempDir } from '../support/temp-dir.js';

/** One record of the test log: what the figures are computed from. */
interface Logged {
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | undefined;
}

interface ReplayLog {
  readonly dir: string;
  readonly records: Logged[];
  readonly firstOffset: number;
  readonly snapshotOffset: number;
}

/**
 * A log of 300 batches (a PUT or DELETE over 20 keys, and a keyless record), 10 ms apart, compacted
 * after batch 200 (segments below the snapshot deleted), a snapshot after batch 250, 300 batches in
 * all, closed cleanly.
 */
async function writeReplayLog(dir: string): Promise<ReplayLog> {
  const storage = new NodeStorage();
  const clock = new FakeClock();
  const { wal } = await Wal.open({ dir, storage, segmentSizeBytes: 4096, preallocate: false, clock: clock.now });
  const { keeper } = await StateKeeper.open({ wal, storage, clock: clock.now });
  const compactor = new Compactor({ wal, state: keeper, storage, options: { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0 }, clock: clock.now });
  const records: Logged[] = [];
  let snapshotOffset = 0;
  for (let b = 0; b < 300; b++) {
    clock.advance(10);
    const key = `key-${(b * 7) % 20}`;
    const batch = [b % 6 === 5 ? { type: 'delete' as const, key: Buffer.from(key), value: Buffer.alloc(0) } : { key: Buffer.from(key), value: Buffer.from(`value ${b}`.padEnd(40, '.')) }, { value: Buffer.from(`plain ${b}`) }];
    const result = await keeper.append(batch);
    records.push({ offset: result.firstOffset, timestamp: result.timestamp, key }, { offset: result.lastOffset, timestamp: result.timestamp, key: undefined });
    if (b === 200) {
      const compacted = await compactor.compact();
      snapshotOffset = compacted.snapshotOffset;
      const [checkpoint] = await wal.read(compacted.checkpointOffset!, { limit: 1 });
      records.push({ offset: checkpoint!.offset, timestamp: checkpoint!.timestamp, key: undefined });
    }
    // A newer snapshot: the default replay still starts from the earliest state (the compaction's snapshot).
    if (b === 250) await keeper.createSnapshot();
  }
  const firstOffset = wal.firstOffset;
  await compactor.idle();
  await keeper.close();
  await wal.close();
  return { dir, records, firstOffset, snapshotOffset };
}

/** The figures the model gives for the records from `from` below `to`. */
function expected(log: ReplayLog, from: number, to: number): { records: number; keys: number } {
  const window = log.records.filter((r) => r.offset >= from && r.offset < to);
  return { records: window.length, keys: new Set(window.flatMap((r) => (r.key === undefined ? [] : [r.key]))).size };
}

function assertExit(run: WaldRun, code: number): void {
  assert.equal(run.code, code, `exit code ${code} expected; stdout: ${run.stdout} stderr: ${run.stderr}`);
}

/** The files of `dir` (recursively) with their sizes and modification times: what a run must leave as it was. */
function fileStates(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name !== 'LOCK')
    .map((entry) => {
      const path = join(entry.parentPath, entry.name);
      const stat = statSync(path);
      return `${path} ${stat.size} ${stat.mtimeMs}`;
    })
    .sort();
}

describe('wald replay', { timeout: 120_000 }, () => {
  it('replays a compacted log from its snapshot and reports the figures; --from/--to bound the records counted; a second run gives the same', async () => {
    const temp = makeTempDir('wald-replay-');
    try {
      const log = await writeReplayLog(join(temp.dir, 'data'));
      assert.ok(log.firstOffset > 0, 'the log was compacted');
      const end = log.records.length;
      const before = fileStates(log.dir);

      const run = await runWald(['replay', '--data-dir', log.dir, '--json']);
      assertExit(run, 0);
      const doc = JSON.parse(run.stdout) as Record<string, unknown>;
      const whole = expected(log, log.snapshotOffset, end);
      assert.equal(doc['from_offset'], log.snapshotOffset, 'from the earliest state: the compaction snapshot');
      assert.equal(doc['to_offset'], end);
      assert.equal(doc['records_replayed'], whole.records);
      assert.equal(doc['keys_affected'], whole.keys);
      const segments = readdirSync(log.dir).filter((name) => name.endsWith('.seg')).map((name) => Number(name.slice(0, 20)));
      assert.equal(doc['segments_replayed'], segments.length - Math.max(0, segments.findLastIndex((base) => base <= log.snapshotOffset)));
      assert.equal(typeof doc['duration_ms'], 'number');
      assert.equal((doc['snapshot'] as Record<string, unknown>)['wal_offset'], log.snapshotOffset);
      assert.equal(doc['absent_offsets'], 0);

      const again = await runWald(['replay', '--data-dir', log.dir, '--json']);
      assertExit(again, 0);
      const second = JSON.parse(again.stdout) as Record<string, unknown>;
      assert.deepEqual({ ...second, duration_ms: 0 }, { ...doc, duration_ms: 0 }, 'a second run gives the same figures');
      assert.deepEqual(fileStates(log.dir), before, 'nothing in the directory was written');

      // --from/--to as RFC 3339 and epoch ms: the records stamped after --from and at or before --to.
      const fromTs = log.records[450]!.timestamp;
      const toTs = log.records[560]!.timestamp;
      const fromOffset = log.records.find((r) => r.timestamp > fromTs)!.offset;
      const toOffset = log.records.find((r) => r.timestamp > toTs)!.offset;
      const bounded = await runWald(['replay', '--data-dir', log.dir, '--from', new Date(fromTs).toISOString(), '--to', String(toTs), '--json']);
      assertExit(bounded, 0);
      const boundedDoc = JSON.parse(bounded.stdout) as Record<string, unknown>;
      const window = expected(log, fromOffset, toOffset);
      assert.equal(boundedDoc['from_offset'], fromOffset);
      assert.equal(boundedDoc['to_offset'], toOffset);
      assert.equal(boundedDoc['records_replayed'], window.records);
      assert.equal(boundedDoc['keys_affected'], window.keys);
      assert.equal(boundedDoc['records_before_from'], fromOffset - log.snapshotOffset, 'the state at --from was built from the snapshot');

      const text = await runWald(['replay', '--data-dir', log.dir, '--from-offset', String(fromOffset), '--to-offset', String(toOffset)]);
      assertExit(text, 0);
      assert.match(text.stdout, new RegExp(`^records replayed +${window.records} \\(offsets ${fromOffset} up to ${toOffset}\\)$`, 'm'));
      assert.match(text.stdout, new RegExp(`^keys affected +${window.keys}$`, 'm'));
      assert.match(text.stdout, /^segments replayed +\d+$/m);
    } finally {
      temp.remove();
    }
  });

  it('refuses a point before the first retained record with WAL_POINT_IN_TIME_UNAVAILABLE naming the earliest state, and --from after --to', async () => {
    const temp = makeTempDir('wald-replay-');
    try {
      const log = await writeReplayLog(join(temp.dir, 'data'));
      const early = await runWald(['replay', '--data-dir', log.dir, '--to', String(log.records[3]!.timestamp)]);
      assertExit(early, 1);
      assert.match(early.stderr, /WAL_POINT_IN_TIME_UNAVAILABLE/);
      assert.match(early.stderr, new RegExp(`earliest state available is at offset ${log.snapshotOffset}`));
      const backwards = await runWald(['replay', '--data-dir', log.dir, '--from-offset', '600', '--to-offset', '500']);
      assertExit(backwards, 1);
      assert.match(backwards.stderr, /WAL_INVALID_ARGUMENT/);
      const usage = await runWald(['replay', '--data-dir', log.dir, '--from', 'last tuesday']);
      assertExit(usage, 2);
      // A server holding the directory: refused, as every offline command.
      const { wal } = await Wal.open({ dir: log.dir, preallocate: false });
      try {
        const locked = await runWald(['replay', '--data-dir', log.dir]);
        assertExit(locked, 1);
        assert.match(locked.stderr, /WAL_LOCKED/);
      } finally {
        await wal.close();
      }
    } finally {
      temp.remove();
    }
  });

  it('--verify checks frames and snapshots first: a healthy directory replays, a damaged one exits 1 replaying nothing', async () => {
    const temp = makeTempDir('wald-replay-');
    try {
      const log = await writeReplayLog(join(temp.dir, 'data'));
      const healthy = await runWald(['replay', '--data-dir', log.dir, '--verify', '--json']);
      assertExit(healthy, 0);
      const doc = JSON.parse(healthy.stdout) as Record<string, unknown>;
      const verification = doc['verification'] as Record<string, unknown>;
      assert.equal(verification['ok'], true);
      assert.equal(verification['snapshots_verified'], readdirSync(join(log.dir, 'snapshots')).filter((n) => n.endsWith('.snap')).length);
      assert.ok((doc['records_replayed'] as number) > 0);

      const snapshot = readdirSync(join(log.dir, 'snapshots')).find((n) => n.endsWith('.snap'))!;
      const path = join(log.dir, 'snapshots', snapshot);
      flipByte(path, readFileSync(path).length - 60);
      const damaged = await runWald(['replay', '--data-dir', log.dir, '--verify', '--json']);
      assertExit(damaged, 1);
      const damagedDoc = JSON.parse(damaged.stdout) as Record<string, unknown>;
      assert.equal((damagedDoc['verification'] as Record<string, unknown>)['ok'], false);
      assert.equal(damagedDoc['records_replayed'], 0, 'nothing replayed');
      assert.match(damaged.stderr, /fault/);
    } finally {
      temp.remove();
    }
  });
});
