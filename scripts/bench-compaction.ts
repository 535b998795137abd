/**
 * The compaction part of `npm run bench` (issue 8's "Benchmark"): a log of 1M records over 100k
 * keys (100-byte values, `always`) is compacted (a full snapshot of the view at the high
 * watermark, a checkpoint record, the sealed segments below it deleted), and append throughput
 * and p99 latency are measured while that compaction runs, beside the same appends with no compaction
 * measured just before in the same run. docs/benchmarks.md holds the figures.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Wal, type AppendRecord } from '../src/index.js';
import { Compactor, type CompactionResult } from '../src/state/compactor.js';
import { StateKeeper } from '../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../src/state/state-options.js';
import { NodeStorage } from '../src/storage/node-storage.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult } from './bench/bench-part.js';
import { percentile, summarize } from './bench/summary.js';

const RECORDS = 1_000_000;
const KEYS = 100_000;
const VALUE_BYTES = 100;
const FILL_BATCH_RECORDS = 1000;
const SEGMENT_SIZE_BYTES = 16 * 1024 * 1024;
/** Concurrent single-record appenders of the load: they share group commits, as clients of a server do. */
const APPENDERS = 16;

interface LoadFigures {
  readonly recordsPerSecond: number;
  readonly p99Ms: number;
  readonly appends: number;
}

/** Runs APPENDERS single-record appenders until `until` resolves; their throughput and p99 latency over that time. */
async function appendLoad(wal: Wal, until: Promise<unknown>): Promise<LoadFigures> {
  const value = Buffer.alloc(VALUE_BYTES, 'l');
  const latenciesMs: number[] = [];
  let isDone = false;
  void until.finally(() => {
    isDone = true;
  });
  const started = process.hrtime.bigint();
  let n = 0;
  const appender = async (): Promise<void> => {
    while (!isDone) {
      const record: AppendRecord = { key: Buffer.from(`key-${n++ % KEYS}`), value };
      const t0 = process.hrtime.bigint();
      await wal.append([record]);
      latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: APPENDERS }, appender));
  await until;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { recordsPerSecond: latenciesMs.length / seconds, p99Ms: percentile(latenciesMs, 99), appends: latenciesMs.length };
}

async function fill(wal: Wal): Promise<void> {
  const value = Buffer.alloc(VALUE_BYTES, 'v');
  for (let i = 0; i < RECORDS; i += FILL_BATCH_RECORDS) {
    await wal.append(Array.from({ length: FILL_BATCH_RECORDS }, (_, j) => ({ key: Buffer.from(`key-${(i + j) % KEYS}`), value })));
  }
}

interface RunFigures {
  readonly compaction: CompactionResult;
  readonly redundancyRatio: number;
  readonly snapshotBytes: number;
  readonly without: LoadFigures;
  readonly during: LoadFigures;
}

async function oneRun(config: BenchConfig, run: number): Promise<RunFigures> {
  const dir = join(config.scratchDir, `compaction-${run}`);
  fs.mkdirSync(dir, { recursive: true });
  const storage = new NodeStorage();
  const { wal } = await Wal.open({ dir, storage, syncPolicy: 'always', segmentSizeBytes: SEGMENT_SIZE_BYTES, preallocate: false });
  try {
    const { keeper } = await StateKeeper.open({ wal, storage });
    try {
      const compactor = new Compactor({ wal, state: keeper, storage, options: { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0 } });
      config.progress(`compaction run ${run + 1}/${config.runs}: filling ${RECORDS} records over ${KEYS} keys`);
      await fill(wal);
      await keeper.caughtUp();
      const dry = await compactor.compact({ dryRun: true });
      config.progress(`compaction run ${run + 1}: appends with no compaction for ${config.runMs} ms`);
      const without = await appendLoad(wal, new Promise((resolve) => setTimeout(resolve, config.runMs)));
      config.progress(`compaction run ${run + 1}: appends while the log is compacted`);
      const compacting = compactor.compact();
      const during = await appendLoad(wal, compacting);
      const compaction = await compacting;
      const snapshotBytes = keeper.snapshotSummary().newest?.sizeBytes ?? 0;
      return { compaction, redundancyRatio: dry.redundancyRatio ?? 0, snapshotBytes, without, during };
    } finally {
      await keeper.close();
    }
  } finally {
    await wal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the compaction part in `config.scratchDir` and returns its rows. */
export async function runCompactionBench(config: BenchConfig): Promise<BenchPartResult> {
  const runs: RunFigures[] = [];
  for (let run = 0; run < config.runs; run++) runs.push(await oneRun(config, run));
  const last = runs[runs.length - 1]!;
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return {
    part: 'compaction',
    setup: [
      `${RECORDS} records over ${KEYS} keys, ${VALUE_BYTES}-byte values, batches of ${FILL_BATCH_RECORDS}; segments of ${mib(SEGMENT_SIZE_BYTES)}; sync always; no retention`,
      `load: ${APPENDERS} concurrent single-record appenders of ${VALUE_BYTES}-byte keyed values`,
      `"during": from the start to the end of the compaction of the 1M-record log (c1, under the load); "without": ${config.runMs} ms of the same load just before`,
    ],
    rows: [
      makeRow({
        id: 'c1',
        name: 'compaction of 1M records over 100k keys (snapshot, checkpoint, deletes)',
        unit: 'ms',
        wald: summarize(runs.map((r) => r.compaction.durationMs)),
        notes: [
          `${mib(last.compaction.bytesReclaimed)} reclaimed in ${last.compaction.segmentsDeleted} segments`,
          `snapshot ${mib(last.snapshotBytes)}`,
          `redundancy before: ${(last.redundancyRatio * 100).toFixed(1)}%`,
        ],
      }),
      makeRow({
        id: 'c2',
        name: 'append throughput during compaction',
        unit: 'records/s',
        wald: summarize(runs.map((r) => r.during.recordsPerSecond)),
        baseline: { name: 'without compaction', summary: summarize(runs.map((r) => r.without.recordsPerSecond)) },
        target: { kind: 'ratio-at-least', value: 0.8 },
        notes: [`${last.during.appends} appends during the compaction, ${last.without.appends} without`],
      }),
      makeRow({
        id: 'c3',
        name: 'append p99 latency during compaction',
        unit: 'ms',
        wald: summarize(runs.map((r) => r.during.p99Ms)),
        baseline: { name: 'without compaction', summary: summarize(runs.map((r) => r.without.p99Ms)) },
        target: { kind: 'ratio-at-most', value: 2 },
      }),
    ],
  };
}
