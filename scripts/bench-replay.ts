/**
 * The replay part of `npm run bench` (issue 9's "Benchmark"): the rate at which a 1M-record log
 * (100k keys, 100-byte values) replays into a fresh key-value state through `RecordApplier`, the
 * state at a point in time (point-in-time.ts), beside the plain read rate of the same records in
 * the same run: through the live log (`Wal.read`, what StateAt reads), and offline from the
 * segment files (`OfflineLog`, what `wald replay` reads). docs/benchmarks.md holds the figures.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../src/index.js';
import { OfflineLog } from '../src/offline/offline-log.js';
import { replayDataDir } from '../src/offline/log-replay.js';
import { replayToPoint, walPointInTimeLog, type PointInTimeLog } from '../src/state/point-in-time.js';
import { DEFAULT_MAX_ENDED_TXNS } from '../src/state/txn-table.js';
import { NodeStorage } from '../src/storage/node-storage.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult } from './bench/bench-part.js';
import { summarize } from './bench/summary.js';

const RECORDS = 1_000_000;
const KEYS = 100_000;
const VALUE_BYTES = 100;
const FILL_BATCH_RECORDS = 1000;
const SEGMENT_SIZE_BYTES = 16 * 1024 * 1024;
const MAX_STATE_BYTES = 1024 * 1024 * 1024;

interface RunFigures {
  readonly liveReplay: number;
  readonly liveRead: number;
  readonly offlineReplay: number;
  readonly offlineRead: number;
  readonly keys: number;
  readonly segments: number;
}

function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Reads every record of `log` as a replay does, applying nothing: records per second. */
async function plainRead(log: PointInTimeLog): Promise<number> {
  const started = process.hrtime.bigint();
  let count = 0;
  for await (const batch of log.batches(log.firstOffset, log.endOffset)) count += batch.length;
  if (count !== RECORDS) throw new Error(`read ${count} records, expected ${RECORDS}`);
  return count / secondsSince(started);
}

async function oneRun(config: BenchConfig, run: number): Promise<RunFigures> {
  const dir = join(config.scratchDir, `replay-${run}`);
  fs.mkdirSync(dir, { recursive: true });
  const storage = new NodeStorage();
  try {
    const { wal } = await Wal.open({ dir, storage, syncPolicy: 'none', segmentSizeBytes: SEGMENT_SIZE_BYTES, preallocate: false });
    let liveReplay: number;
    let liveRead: number;
    try {
      config.progress(`replay run ${run + 1}/${config.runs}: filling ${RECORDS} records over ${KEYS} keys`);
      const value = Buffer.alloc(VALUE_BYTES, 'v');
      for (let i = 0; i < RECORDS; i += FILL_BATCH_RECORDS) {
        await wal.append(Array.from({ length: FILL_BATCH_RECORDS }, (_, j) => ({ key: Buffer.from(`key-${(i + j) % KEYS}`), value })));
      }
      await wal.sync();
      const log = walPointInTimeLog(wal);
      config.progress(`replay run ${run + 1}: live read, then live replay`);
      liveRead = await plainRead(log);
      const started = process.hrtime.bigint();
      const built = await replayToPoint({ log, storage, snapshotDir: join(dir, 'snapshots'), maxStateBytes: MAX_STATE_BYTES, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS });
      liveReplay = built.recordsReplayed / secondsSince(started);
      if (built.recordsReplayed !== RECORDS || built.state.size !== KEYS) throw new Error(`replayed ${built.recordsReplayed} records into ${built.state.size} keys`);
    } finally {
      await wal.close();
    }
    config.progress(`replay run ${run + 1}: offline read, then wald replay`);
    const offlineRead = await plainRead(await OfflineLog.open(storage, dir));
    const report = await replayDataDir(storage, dir, { snapshotDir: 'snapshots', maxStateBytes: MAX_STATE_BYTES, txnMaxEnded: DEFAULT_MAX_ENDED_TXNS });
    if (report.recordsReplayed !== RECORDS) throw new Error(`wald replay replayed ${report.recordsReplayed} records`);
    return { liveReplay, liveRead, offlineReplay: report.recordsReplayed / (report.durationMs / 1000), offlineRead, keys: report.keysAffected, segments: report.segmentsReplayed };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the replay part in `config.scratchDir` and returns its rows. */
export async function runReplayBench(config: BenchConfig): Promise<BenchPartResult> {
  const runs: RunFigures[] = [];
  for (let run = 0; run < config.runs; run++) runs.push(await oneRun(config, run));
  const last = runs[runs.length - 1]!;
  return {
    part: 'replay',
    setup: [
      `${RECORDS} records over ${KEYS} keys, ${VALUE_BYTES}-byte values, batches of ${FILL_BATCH_RECORDS}; segments of ${SEGMENT_SIZE_BYTES / 2 ** 20} MiB; no snapshot: the state is built from offset 0`,
      'replay: every record read and applied into a fresh state (RecordApplier); read: the same records read and dropped, in the same run',
    ],
    rows: [
      makeRow({
        id: 'p1',
        name: 'replay of 1M records through the live log (StateAt)',
        unit: 'records/s',
        wald: summarize(runs.map((r) => r.liveReplay)),
        baseline: { name: 'Wal.read of the same records', summary: summarize(runs.map((r) => r.liveRead)) },
      }),
      makeRow({
        id: 'p2',
        name: 'wald replay of 1M records from the segment files (offline)',
        unit: 'records/s',
        wald: summarize(runs.map((r) => r.offlineReplay)),
        baseline: { name: 'OfflineLog read of the same records', summary: summarize(runs.map((r) => r.offlineRead)) },
        notes: [`${last.segments} segments, ${last.keys} keys affected`],
      }),
    ],
  };
}
