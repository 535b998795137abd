/**
 * The state part of `npm run bench`: the key-value view's rebuild when the server opens a data
 * directory, and its snapshot write, on real files, against reading or writing the same bytes with
 * plain `node:fs` in the same run. The targets are issue 8's: rebuild >= 1M records/s, snapshot
 * write >= 200 MB/s of state. docs/benchmarks.md holds the figures; scripts/state-bench.ts has the
 * finer rows of the state's own parts (apply, encode, load, views).
 */
import * as fs from 'node:fs';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NodeStorage, Wal, type AppendRecord } from '../src/index.js';
import { StateKeeper } from '../src/state/state-keeper.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow } from './bench/bench-part.js';
import { segmentFiles } from './bench/fs-baselines.js';
import { measurePair, type Runner } from './bench/runner.js';

/** Records of the log replayed, and keys they write to (issue 8: 1M records over 100k keys). */
const LOG_RECORDS = 1_000_000;
const LOG_KEYS = 100_000;
/** Keys of the snapshot the second log starts from. */
const SNAPSHOT_KEYS = 1_000_000;
const VALUE_BYTES = 100;
const FILL_BATCH_RECORDS = 1000;
const FILL_WINDOW = 16;
const TARGET_REBUILD_RECORDS_S = 1_000_000;
const TARGET_SNAPSHOT_MB_S = 200;
/** Bytes read at a time by the `node:fs` baselines. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Appends records `from..from + count` whose keys cycle over `keys` keys (`key-<n>`, 100-byte values), under `none`. */
async function fill(wal: Wal, from: number, count: number, keys: number): Promise<void> {
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  for (let done = 0; done < count; ) {
    const pending: Promise<unknown>[] = [];
    for (let w = 0; w < FILL_WINDOW && done < count; w++) {
      const batch: AppendRecord[] = [];
      for (let i = 0; i < FILL_BATCH_RECORDS && done < count; i++, done++) {
        batch.push({ key: Buffer.from(`key-${(from + done) % keys}`), value });
      }
      pending.push(wal.append(batch));
    }
    await Promise.all(pending);
  }
}

/** Bytes of the keys `key-0` .. `key-<count - 1>`. */
function keyBytes(count: number): number {
  let bytes = 0;
  for (let n = 0; n < count; n++) bytes += 4 + String(n).length;
  return bytes;
}

/** Reads every file of `paths` with `node:fs` and returns the ms it took (the disk's floor for a rebuild). */
function readFilesMs(paths: readonly string[]): number {
  const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const start = performance.now();
  for (const path of paths) {
    const fd = fs.openSync(path, 'r');
    try {
      while (fs.readSync(fd, buffer, 0, buffer.length, null) > 0);
    } finally {
      fs.closeSync(fd);
    }
  }
  return performance.now() - start;
}

/** `Wal.open` + `StateKeeper.open` of `dir`, the keeper's rebuild timed, as records (snapshot entries + log records) per second. */
function rebuildRunner(dir: string, expectKeys: number): Runner {
  const storage = new NodeStorage();
  return {
    run: async () => {
      const { wal } = await Wal.open({ dir, syncPolicy: 'none' });
      try {
        const start = performance.now();
        const { keeper, report } = await StateKeeper.open({ wal, storage });
        const seconds = (performance.now() - start) / 1000;
        await keeper.close();
        if (report.keyCount !== expectKeys) throw new Error(`rebuilt ${report.keyCount} keys, expected ${expectKeys}`);
        const records = (report.snapshot?.keyCount ?? 0) + report.recordsReplayed;
        return { value: records / seconds, records };
      } finally {
        await wal.close();
      }
    },
    close: async () => {},
  };
}

/** The segment files of `dir` that hold offsets at or above `offset` (names are base offsets, sorted). */
function segmentsFrom(dir: string, offset: number): string[] {
  const files = segmentFiles(dir);
  let first = 0;
  while (first + 1 < files.length && Number.parseInt(basename(files[first + 1]!), 10) <= offset) first++;
  return files.slice(first);
}

/**
 * The `node:fs` read of the files a rebuild of `dir` reads (its snapshot files, and the segments
 * from `fromOffset` on), in the same records per second.
 */
function readBaseline(dir: string, snapshotDir: string, fromOffset: number, records: number): Runner {
  return {
    run: async () => {
      const snapshots = fs.existsSync(snapshotDir) ? fs.readdirSync(snapshotDir).map((name) => join(snapshotDir, name)) : [];
      const ms = readFilesMs([...snapshots, ...segmentsFrom(dir, fromOffset)]);
      return { value: records / (ms / 1000), records };
    },
    close: async () => {},
  };
}

/** Facts of the last snapshot a {@link snapshotRunner} wrote. */
interface SnapshotFacts {
  fileBytes: number;
  stateBytes: number;
}

/**
 * `StateKeeper.createSnapshot` of the view of `dir` (1M keys), in MB/s of state (keys + values);
 * each run removes its snapshot afterwards. The open is not timed.
 */
function snapshotRunner(dir: string, facts: SnapshotFacts): Runner {
  const storage = new NodeStorage();
  let opened: { wal: Wal; keeper: StateKeeper } | undefined;
  return {
    run: async () => {
      if (opened === undefined) {
        const { wal } = await Wal.open({ dir, syncPolicy: 'none' });
        const { keeper } = await StateKeeper.open({ wal, storage });
        opened = { wal, keeper };
      }
      const stateBytes = keyBytes(opened.keeper.keyCount) + opened.keeper.keyCount * VALUE_BYTES;
      const start = performance.now();
      const snapshot = await opened.keeper.createSnapshot();
      const seconds = (performance.now() - start) / 1000;
      fs.rmSync(snapshot.path);
      facts.fileBytes = snapshot.sizeBytes;
      facts.stateBytes = stateBytes;
      return { value: stateBytes / 1e6 / seconds, records: 0 };
    },
    close: async () => {
      await opened?.keeper.close();
      await opened?.wal.close();
    },
  };
}

/** `node:fs` write + fdatasync of `facts.fileBytes` in 1 MiB writes, in MB/s of the same state bytes. */
function writeBaseline(dir: string, facts: SnapshotFacts): Runner {
  const path = join(dir, 'baseline.bin');
  const chunk = Buffer.alloc(READ_CHUNK_BYTES, 0x62);
  return {
    run: async () => {
      const start = performance.now();
      const fd = fs.openSync(path, 'w');
      try {
        for (let written = 0; written < facts.fileBytes; written += chunk.length) fs.writeSync(fd, chunk);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      const seconds = (performance.now() - start) / 1000;
      fs.rmSync(path);
      return { value: facts.stateBytes / 1e6 / seconds, records: 0 };
    },
    close: async () => {},
  };
}

/** The state part: rows s1 (rebuild from the log alone), s2 (rebuild from a snapshot + the log after it), s3 (snapshot write). */
export async function runStateBench(config: BenchConfig): Promise<BenchPartResult> {
  const logDir = join(config.scratchDir, 'state-log');
  const snapDir = join(config.scratchDir, 'state-snap');
  const rows: BenchRow[] = [];

  config.progress(`state: filling a log of ${LOG_RECORDS} records over ${LOG_KEYS} keys`);
  let { wal } = await Wal.open({ dir: logDir, syncPolicy: 'none' });
  await fill(wal, 0, LOG_RECORDS, LOG_KEYS);
  await wal.close();
  config.progress('state: s1 rebuild from the log alone');
  const s1 = await measurePair(config, rebuildRunner(logDir, LOG_KEYS), readBaseline(logDir, join(logDir, 'snapshots'), 0, LOG_RECORDS));
  rows.push(
    makeRow({
      id: 's1',
      name: `rebuild on open from the log alone: ${LOG_RECORDS / 1e6}M records over ${LOG_KEYS / 1e3}k keys`,
      unit: 'records/s',
      wald: s1.wald,
      baseline: { name: 'node:fs read of the segment files', summary: s1.baseline! },
      target: { kind: 'at-least', value: TARGET_REBUILD_RECORDS_S },
    }),
  );

  config.progress(`state: a log of ${SNAPSHOT_KEYS} keys, a snapshot of them, then ${LOG_RECORDS} records over ${LOG_KEYS} keys`);
  ({ wal } = await Wal.open({ dir: snapDir, syncPolicy: 'none' }));
  await fill(wal, 0, SNAPSHOT_KEYS, SNAPSHOT_KEYS);
  const { keeper } = await StateKeeper.open({ wal, storage: new NodeStorage() });
  const first = await keeper.createSnapshot();
  await keeper.close();
  await fill(wal, 0, LOG_RECORDS, LOG_KEYS);
  await wal.close();
  config.progress('state: s2 rebuild from a snapshot and the log after it');
  const s2 = await measurePair(
    config,
    rebuildRunner(snapDir, SNAPSHOT_KEYS),
    readBaseline(snapDir, join(snapDir, 'snapshots'), SNAPSHOT_KEYS, SNAPSHOT_KEYS + LOG_RECORDS),
  );
  rows.push(
    makeRow({
      id: 's2',
      name: `rebuild on open from a snapshot of ${SNAPSHOT_KEYS / 1e6}M keys + the ${LOG_RECORDS / 1e6}M records after it`,
      unit: 'records/s',
      wald: s2.wald,
      baseline: { name: 'node:fs read of the snapshot file and the segments', summary: s2.baseline! },
      target: { kind: 'at-least', value: TARGET_REBUILD_RECORDS_S },
      notes: ['records = snapshot entries + log records replayed; the snapshot is at offset 1M, so the 1M records before it are not read'],
    }),
  );

  config.progress('state: s3 snapshot write');
  // The baseline runs first: it writes as many bytes as the setup's snapshot file holds (the same keys).
  const facts: SnapshotFacts = { fileBytes: first.sizeBytes, stateBytes: keyBytes(SNAPSHOT_KEYS) + SNAPSHOT_KEYS * VALUE_BYTES };
  const s3 = await measurePair(config, snapshotRunner(snapDir, facts), writeBaseline(snapDir, facts));
  rows.push(
    makeRow({
      id: 's3',
      name: `snapshot write (CreateSnapshot, plain) of ${SNAPSHOT_KEYS / 1e6}M keys, state rebuilt on open`,
      unit: 'MB/s',
      wald: s3.wald,
      baseline: { name: 'node:fs write + fdatasync of the file size', summary: s3.baseline! },
      target: { kind: 'at-least', value: TARGET_SNAPSHOT_MB_S },
      notes: [`MB/s of state (keys + values: ${(facts.stateBytes / 1e6).toFixed(1)} MB); the file is ${(facts.fileBytes / 1e6).toFixed(1)} MB`],
    }),
  );

  return {
    part: 'state',
    rows,
    setup: [
      `keys \`key-<n>\`, ${VALUE_BYTES}-byte values, appended under \`none\` in batches of ${FILL_BATCH_RECORDS}`,
      's1, s2: `StateKeeper.open` timed after `Wal.open`; s3: the view of s2 once opened',
    ],
  };
}
