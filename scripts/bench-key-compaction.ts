/**
 * The key compaction part of `npm run bench` (`keys`): `compactKeys` over a log of 1M PUTs of
 * 100-byte values over 100k keys (issue 8, `compact --aggressive`), against a plain `node:fs` copy
 * of the same segment bytes (read in 1 MiB chunks, written to a new file, fdatasync, rename) in the
 * same run. Each measurement runs on a fresh copy of the log, made before the clock starts.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NodeStorage, Wal, type AppendRecord } from '../src/index.js';
import { compactKeys, type KeyCompactionResult } from '../src/state/key-compaction.js';
import { StateKeeper } from '../src/state/state-keeper.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult } from './bench/bench-part.js';
import { summarize } from './bench/summary.js';

const RECORDS = 1_000_000;
const KEYS = 100_000;
const VALUE_BYTES = 100;
const BATCH_RECORDS = 1000;
/** Smaller than the default 64 MiB, so that the 1M records make several sealed segments. */
const SEGMENT_SIZE_BYTES = 16 * 1024 * 1024;
const COPY_CHUNK_BYTES = 1024 * 1024;

/** Writes the log: 1M PUTs, keys drawn at random over 100k (about 90% of the records superseded). */
async function writeLog(dir: string): Promise<void> {
  const { wal } = await Wal.open({ dir, syncPolicy: 'none', segmentSizeBytes: SEGMENT_SIZE_BYTES });
  const value = randomBytes(VALUE_BYTES);
  let seed = 12345;
  const next = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  for (let written = 0; written < RECORDS; written += BATCH_RECORDS) {
    const batch: AppendRecord[] = [];
    for (let i = 0; i < BATCH_RECORDS; i++) batch.push({ key: Buffer.from(`key-${String(next() % KEYS).padStart(6, '0')}`), value });
    await wal.append(batch);
  }
  await wal.sync();
  await wal.close();
}

/** One compaction of a fresh copy of `template`: the result, timed by compactKeys itself. */
async function compactCopy(template: string, dir: string): Promise<KeyCompactionResult> {
  fs.cpSync(template, dir, { recursive: true });
  const storage = new NodeStorage();
  const { wal } = await Wal.open({ dir, storage, segmentSizeBytes: SEGMENT_SIZE_BYTES });
  const { keeper } = await StateKeeper.open({ wal, storage });
  try {
    return await compactKeys(keeper, wal, {});
  } finally {
    await keeper.close();
    await wal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The baseline: copies each file of `files` (paths in `template`) into `dir` with plain node:fs calls; ms. */
function copyFiles(files: readonly string[], dir: string): number {
  fs.mkdirSync(dir, { recursive: true });
  const buf = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
  const started = performance.now();
  for (const from of files) {
    const to = join(dir, `${from.split('/').pop()!}`);
    const input = fs.openSync(from, 'r');
    const output = fs.openSync(`${to}.tmp`, 'w');
    for (let position = 0; ; ) {
      const n = fs.readSync(input, buf, 0, buf.length, position);
      if (n === 0) break;
      fs.writeSync(output, buf, 0, n, position);
      position += n;
    }
    fs.fdatasyncSync(output);
    fs.closeSync(output);
    fs.closeSync(input);
    fs.renameSync(`${to}.tmp`, to);
  }
  const dirFd = fs.openSync(dir, 'r');
  fs.fsyncSync(dirFd);
  fs.closeSync(dirFd);
  const ms = performance.now() - started;
  fs.rmSync(dir, { recursive: true, force: true });
  return ms;
}

/** Runs the key compaction part in `config.scratchDir`. */
export async function runKeyCompactionBench(config: BenchConfig): Promise<BenchPartResult> {
  const template = join(config.scratchDir, 'keys-template');
  config.progress(`keys: writing ${RECORDS} records over ${KEYS} keys`);
  await writeLog(template);
  // The sealed segments (every one but the last): what compaction reads and rewrites.
  const segments = fs.readdirSync(template).filter((name) => name.endsWith('.seg')).sort();
  const sealed = segments.slice(0, -1).map((name) => join(template, name));
  const results: KeyCompactionResult[] = [];
  const baselines: number[] = [];
  for (let run = 0; run < config.runs; run++) {
    config.progress(`keys: compaction ${run + 1}/${config.runs}`);
    results.push(await compactCopy(template, join(config.scratchDir, `keys-run-${run}`)));
    baselines.push(copyFiles(sealed, join(config.scratchDir, `keys-copy-${run}`)));
  }
  fs.rmSync(template, { recursive: true, force: true });
  const last = results[results.length - 1]!;
  const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
  const rate = summarize(results.map((r) => r.beforeSizeBytes / 1e6 / (r.durationMs / 1000)));
  return {
    part: 'keys',
    setup: [
      `${RECORDS.toLocaleString('en-US')} PUTs of ${VALUE_BYTES}-byte values over ${KEYS.toLocaleString('en-US')} keys (random), batches of ${BATCH_RECORDS}, ${SEGMENT_SIZE_BYTES >> 20} MiB segments, ${sealed.length} sealed`,
      'wald: compactKeys (threshold 20%, tombstones none) on a fresh copy of the log, view rebuilt before the clock starts; baseline: node:fs copy of the sealed segments (1 MiB reads and writes, fdatasync, rename, directory fsync)',
    ],
    rows: [
      makeRow({
        id: 'k1',
        name: 'key compaction, 1M records over 100k keys',
        unit: 'ms',
        wald: summarize(results.map((r) => r.durationMs)),
        baseline: { name: 'node:fs copy of the same segment bytes', summary: summarize(baselines) },
        notes: [
          `before ${mb(last.beforeSizeBytes)}, after ${mb(last.afterSizeBytes)}, freed ${mb(last.freedBytes)} (${last.reductionPercent.toFixed(1)}%)`,
          `${last.segmentsRewritten} of ${last.segmentsConsidered} segments rewritten, ${last.recordsDropped.toLocaleString('en-US')} of ${last.recordsConsidered.toLocaleString('en-US')} records dropped (redundancy ${last.redundancyPercent.toFixed(1)}%)`,
          `${rate.median.toFixed(0)} MB/s of segment bytes read and judged (${rate.min.toFixed(0)}–${rate.max.toFixed(0)})`,
        ],
      }),
    ],
  };
}
