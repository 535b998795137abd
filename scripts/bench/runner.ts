import { performance } from 'node:perf_hooks';
import type { BenchConfig } from './bench-config.js';
import { summarize, type Summary } from './summary.js';

/** One measurement: the figure (a rate or a duration) and what it counted. */
export interface Measurement {
  /** records/s for rates, ms for durations. */
  readonly value: number;
  /** Records written or read during the measurement (0 for durations). */
  readonly records: number;
  /** `fdatasync` calls the engine made during the measurement, when known. */
  readonly fsyncs?: number | undefined;
}

/** Something measured repeatedly: a workload on wald or its `node:fs` baseline. */
export interface Runner {
  /** Runs the workload once, for about `runMs` (each runner also bounds its own count). */
  run(runMs: number): Promise<Measurement>;
  /** Releases files and handles. */
  close(): Promise<void>;
}

/** The summaries of one row: wald's and its baseline's, plus the engine's records per fsync. */
export interface PairResult {
  readonly wald: Summary;
  readonly baseline: Summary | undefined;
  /** Records per `fdatasync` over all of wald's measurements, when it synced at all. */
  readonly recordsPerFsync: number | undefined;
}

/**
 * Warms both runners up, then measures them `config.runs` times, alternating baseline and wald so
 * that drift of the machine (page cache, background writeback) hits both alike. Closes both.
 */
export async function measurePair(config: BenchConfig, wald: Runner, baseline?: Runner): Promise<PairResult> {
  try {
    if (config.caseWarmupMs > 0) {
      await baseline?.run(config.caseWarmupMs);
      await wald.run(config.caseWarmupMs);
    }
    const waldValues: number[] = [];
    const baselineValues: number[] = [];
    let records = 0;
    let fsyncs = 0;
    for (let i = 0; i < config.runs; i++) {
      if (baseline !== undefined) baselineValues.push((await baseline.run(config.runMs)).value);
      const m = await wald.run(config.runMs);
      waldValues.push(m.value);
      records += m.records;
      fsyncs += m.fsyncs ?? 0;
    }
    return {
      wald: summarize(waldValues),
      baseline: baseline === undefined ? undefined : summarize(baselineValues),
      recordsPerFsync: fsyncs > 0 ? records / fsyncs : undefined,
    };
  } finally {
    await baseline?.close();
    await wald.close();
  }
}

/**
 * Calls `step` (which does some records' work and returns how many) until `runMs` pass or
 * `maxRecords` are done, and returns the rate in records/s.
 */
export function runSyncFor(step: () => number, runMs: number, maxRecords: number): Measurement {
  const start = performance.now();
  const deadline = start + runMs;
  let records = 0;
  while (records < maxRecords && performance.now() < deadline) {
    const n = step();
    if (n <= 0) break;
    records += n;
  }
  return { value: records / ((performance.now() - start) / 1000), records };
}

/** The asynchronous form of {@link runSyncFor}. */
export async function runAsyncFor(step: () => Promise<number>, runMs: number, maxRecords: number): Promise<Measurement> {
  const start = performance.now();
  const deadline = start + runMs;
  let records = 0;
  while (records < maxRecords && performance.now() < deadline) {
    const n = await step();
    if (n <= 0) break;
    records += n;
  }
  return { value: records / ((performance.now() - start) / 1000), records };
}
