/**
 * The engine part of `npm run bench`: wald's log engine against plain `node:fs` on the same disk,
 * for 100-byte records. Rows (a)–(f) are those of issue 2's "Benchmark" section, (m1) and (m2)
 * the memory storage of issue 9 beside `none` on disk; docs/benchmarks.md holds the figures and
 * what limits each row.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Wal, type AppendRecord, type SyncPolicy } from '../src/index.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow, type BenchTarget } from './bench/bench-part.js';
import { concurrentAppends, pagedRead, pipelinedAppends, pipelinedAppendsInMemory, rangeRead } from './bench/engine-workloads.js';
import { RECORD_BYTES, rawReadLoop, segmentFiles, writeSyncLoop, writevSyncLoop } from './bench/fs-baselines.js';
import { fillLog, fullScan, openTime, type OpenFacts } from './bench/open-workloads.js';
import { measurePair, type PairResult, type Runner } from './bench/runner.js';

/** Concurrent appenders of batches of 64 in (c): 16 x 64 = 1024 records per group commit, as the baseline's writev. */
const BATCH_APPENDERS = 16;
const BATCH_RECORDS = 64;
/** Single-record appends in flight per window in (d1): 4 x IOV_MAX. */
const PIPELINE_WINDOW = 4096;
/** Batches of 64 in flight per window in (d2): the same 4096 records. */
const PIPELINE_BATCH_WINDOW = 64;
/** Records per batch when filling the 1 GiB log of (f). */
const FILL_BATCH_RECORDS = 1000;
const READ_PAGE_RECORDS = 1000;

interface RowSpec {
  readonly id: string;
  readonly name: string;
  readonly unit: BenchRow['unit'];
  readonly baselineName?: string;
  readonly target?: BenchTarget;
  readonly notes?: (pair: PairResult) => string[];
}

function row(spec: RowSpec, pair: PairResult): BenchRow {
  const notes = spec.notes?.(pair) ?? [];
  if (pair.recordsPerFsync !== undefined) notes.unshift(`${pair.recordsPerFsync.toFixed(1)} records per fdatasync`);
  return makeRow({
    id: spec.id,
    name: spec.name,
    unit: spec.unit,
    wald: pair.wald,
    baseline: pair.baseline === undefined || spec.baselineName === undefined ? undefined : { name: spec.baselineName, summary: pair.baseline },
    target: spec.target,
    notes,
  });
}

/** Runs the engine part in `config.scratchDir` and returns its rows. */
export async function runEngineBench(config: BenchConfig): Promise<BenchPartResult> {
  const value = randomBytes(RECORD_BYTES);
  const one: AppendRecord[] = [{ value }];
  const batch: AppendRecord[] = Array.from({ length: BATCH_RECORDS }, () => ({ value }));
  let dirs = 0;
  const freshDir = (name: string): string => {
    const dir = join(config.scratchDir, `${String(++dirs).padStart(2, '0')}-${name}`);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  };
  const open = async (dir: string, syncPolicy: SyncPolicy): Promise<Wal> => (await Wal.open({ dir, syncPolicy })).wal;
  const rows: BenchRow[] = [];
  const pairIn = async (label: string, make: (dir: string) => Promise<{ wald: Runner; baseline?: Runner }>): Promise<PairResult> => {
    config.progress(`engine: ${label}`);
    const dir = freshDir(label);
    const { wald, baseline } = await make(dir);
    try {
      return await measurePair(config, wald, baseline);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  await warmUp(config, freshDir('warm-up'), one, batch);

  const a = await pairIn('a', async (dir) => ({
    wald: concurrentAppends(await open(join(dir, 'wal'), 'always'), one, 1),
    baseline: writeSyncLoop(join(dir, 'baseline.log')),
  }));
  rows.push(row({ id: 'a', name: '`always`, 1 sequential appender', unit: 'records/s', baselineName: '`writeSync` 100 B + `fdatasyncSync`', target: { kind: 'ratio-at-least', value: 1.0 } }, a));

  const b = await pairIn('b', async (dir) => ({
    wald: concurrentAppends(await open(join(dir, 'wal'), 'always'), one, 64),
    baseline: writevSyncLoop(join(dir, 'baseline.log'), 64, true),
  }));
  rows.push(row({ id: 'b', name: '`always`, 64 concurrent 1-record appenders', unit: 'records/s', baselineName: '`writevSync` 64 x 100 B + `fdatasyncSync`', target: { kind: 'ratio-at-least', value: 0.8 } }, b));

  const c = await pairIn('c', async (dir) => ({
    wald: concurrentAppends(await open(join(dir, 'wal'), 'always'), batch, BATCH_APPENDERS),
    baseline: writevSyncLoop(join(dir, 'baseline.log'), 1024, true),
  }));
  rows.push(row({ id: 'c', name: `\`always\`, ${BATCH_APPENDERS} concurrent appenders of 64-record batches`, unit: 'records/s', baselineName: '`writevSync` 1024 x 100 B + `fdatasyncSync`', target: { kind: 'ratio-at-least', value: 0.4 } }, c));

  const pipelineTarget: BenchTarget = { kind: 'at-least', value: 1_200_000 };
  const noSyncBaseline = '`writevSync` 1024 x 100 B, no sync (reference)';
  const d1 = await pairIn('d1', async (dir) => ({
    wald: pipelinedAppends(await open(join(dir, 'wal'), 'none'), one, PIPELINE_WINDOW),
    baseline: writevSyncLoop(join(dir, 'baseline.log'), 1024, false),
  }));
  rows.push(row({ id: 'd1', name: `\`none\`, pipelined 1-record appends (${PIPELINE_WINDOW} in flight)`, unit: 'records/s', baselineName: noSyncBaseline, target: pipelineTarget }, d1));
  const d2 = await pairIn('d2', async (dir) => ({
    wald: pipelinedAppends(await open(join(dir, 'wal'), 'none'), batch, PIPELINE_BATCH_WINDOW),
    baseline: writevSyncLoop(join(dir, 'baseline.log'), 1024, false),
  }));
  rows.push(row({ id: 'd2', name: `\`none\`, pipelined 64-record batches (${PIPELINE_BATCH_WINDOW} in flight)`, unit: 'records/s', baselineName: noSyncBaseline, target: pipelineTarget }, d2));

  // Memory storage beside `none` on disk: d1's and d2's workloads, the disk as the baseline.
  const inMemory = async (syncPolicy: SyncPolicy = 'none'): Promise<Wal> => (await Wal.open({ dir: 'bench-memory', storage: 'memory', syncPolicy })).wal;
  const m1 = await pairIn('m1', async (dir) => ({
    wald: pipelinedAppendsInMemory(await inMemory(), one, PIPELINE_WINDOW),
    baseline: pipelinedAppends(await open(join(dir, 'wal'), 'none'), one, PIPELINE_WINDOW),
  }));
  rows.push(row({ id: 'm1', name: `memory storage, \`none\`, pipelined 1-record appends (${PIPELINE_WINDOW} in flight)`, unit: 'records/s', baselineName: 'the same on disk (d1)' }, m1));
  const m2 = await pairIn('m2', async (dir) => ({
    wald: pipelinedAppendsInMemory(await inMemory(), batch, PIPELINE_BATCH_WINDOW),
    baseline: pipelinedAppends(await open(join(dir, 'wal'), 'none'), batch, PIPELINE_BATCH_WINDOW),
  }));
  rows.push(row({ id: 'm2', name: `memory storage, \`none\`, pipelined 64-record batches (${PIPELINE_BATCH_WINDOW} in flight)`, unit: 'records/s', baselineName: 'the same on disk (d2)' }, m2));
  // And where the disk is the limit: (b)'s workload, whose syncs cost nothing in memory.
  const m3 = await pairIn('m3', async (dir) => ({
    wald: concurrentAppends(await inMemory('always'), one, 64),
    baseline: concurrentAppends(await open(join(dir, 'wal'), 'always'), one, 64),
  }));
  rows.push(row({ id: 'm3', name: 'memory storage, `always`, 64 concurrent 1-record appenders', unit: 'records/s', baselineName: 'the same on disk (b)' }, m3));

  rows.push(...(await readRows(config, freshDir('e'), batch)));
  rows.push(...(await openRows(config, freshDir('f'), value)));

  return {
    part: 'engine',
    rows,
    setup: [
      `records: ${RECORD_BYTES}-byte value, no key, no headers; wald defaults otherwise (64 MiB preallocated segments)`,
      `every figure: median (min–max) of ${config.runs} runs of ${config.runMs} ms (reads: ${config.runs} passes), baseline and wald alternating, after ${config.warmupMs} ms of warm-up and ${config.caseWarmupMs} ms per row`,
      'baselines write to a growing file (no preallocation) in the same directory as wald',
    ],
  };
}

async function warmUp(config: BenchConfig, dir: string, one: AppendRecord[], batch: AppendRecord[]): Promise<void> {
  if (config.warmupMs <= 0) return;
  config.progress(`engine: warm-up (${config.warmupMs} ms)`);
  const share = Math.max(1, Math.floor(config.warmupMs / 4));
  try {
    const always = (await Wal.open({ dir: join(dir, 'always'), syncPolicy: 'always' })).wal;
    await concurrentAppends(always, one, 64).run(share);
    const batched = concurrentAppends(always, batch, BATCH_APPENDERS);
    await batched.run(share);
    await batched.close();
    const none = (await Wal.open({ dir: join(dir, 'none'), syncPolicy: 'none' })).wal;
    const pipelined = pipelinedAppends(none, one, PIPELINE_WINDOW);
    const written = await pipelined.run(share);
    const reader = pagedRead(none, written.records, READ_PAGE_RECORDS);
    const deadline = Date.now() + share;
    for (let i = 0; i < 100 && Date.now() < deadline; i++) await reader.run(share);
    await pipelined.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function readRows(config: BenchConfig, dir: string, batch: AppendRecord[]): Promise<BenchRow[]> {
  const records = config.readRecords;
  config.progress(`engine: e (writing ${records} records)`);
  const walDir = join(dir, 'wal');
  const filled = await fillLog(walDir, batch, { records });
  try {
    const bytes = segmentFiles(walDir).reduce((sum, path) => sum + fs.statSync(path).size, 0);
    const wal = (await Wal.open({ dir: walDir })).wal;
    try {
      const target: BenchTarget = { kind: 'at-least', value: 2_000_000 };
      const rawName = '`readSync` 1 MiB chunks of the same files (reference)';
      config.progress('engine: e1');
      const paged = await measurePair(config, pagedRead(wal, records, READ_PAGE_RECORDS), rawReadLoop(walDir, bytes, records));
      config.progress('engine: e2');
      const ranged = await measurePair(config, rangeRead(wal, records), rawReadLoop(walDir, bytes, records));
      const layout = `${filled.records} records written as ${BATCH_RECORDS}-record batches, ${filled.segments} segment(s), read from the page cache`;
      return [
        row({ id: 'e1', name: `sequential read, \`read\` in pages of ${READ_PAGE_RECORDS}`, unit: 'records/s', baselineName: rawName, target, notes: () => [layout] }, paged),
        row({ id: 'e2', name: 'sequential read, `range` iterator', unit: 'records/s', baselineName: rawName, target }, ranged),
      ];
    } finally {
      await wal.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function openRows(config: BenchConfig, dir: string, value: Buffer): Promise<BenchRow[]> {
  const walDir = join(dir, 'wal');
  config.progress(`engine: f (writing a log of ${config.logBytes} bytes)`);
  const fillBatch: AppendRecord[] = Array.from({ length: FILL_BATCH_RECORDS }, () => ({ value }));
  const filled = await fillLog(walDir, fillBatch, { bytes: config.logBytes });
  config.progress(`engine: f (${filled.records} records, ${filled.fileBytes} bytes in ${filled.segments} segments, written in ${filled.seconds.toFixed(1)} s)`);
  try {
    const scanFacts: OpenFacts = { bytesScanned: 0, records: 0 };
    const openFacts: OpenFacts = { bytesScanned: 0, records: 0 };
    const rebuildFacts: OpenFacts = { bytesScanned: 0, records: 0 };
    const scanName = '`readSync` (1 MiB chunks) + CRC-32C of every segment file';
    const opened = await measurePair(config, openTime(walDir, false, openFacts), fullScan(walDir, scanFacts));
    config.progress('engine: f2 (open after deleting the indexes)');
    const rebuilt = await measurePair(config, openTime(walDir, true, rebuildFacts), fullScan(walDir, scanFacts));
    const size = `${(filled.fileBytes / 2 ** 20).toFixed(0)} MiB in ${filled.segments} segments, ${filled.records} records; page cache warm for both`;
    return [
      row(
        { id: 'f', name: 'open after a clean close', unit: 'ms', baselineName: scanName, target: { kind: 'ratio-at-most', value: 0.05 }, notes: () => [size, `the open re-read ${openFacts.bytesScanned} bytes; the scan read ${scanFacts.bytesScanned}`] },
        opened,
      ),
      row(
        { id: 'f2', name: 'open after deleting `*.idx` and `CLEAN` (forced rebuild)', unit: 'ms', baselineName: scanName, notes: () => [`the open re-read ${rebuildFacts.bytesScanned} bytes`] },
        rebuilt,
      ),
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
