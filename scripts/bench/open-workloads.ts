/**
 * (f) Building a large log and timing how long `Wal.open` takes on it, against re-reading it all.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Wal, type AppendRecord } from '../../src/index.js';
import { fullScanMs, segmentFiles } from './fs-baselines.js';
import type { Runner } from './runner.js';

/** Batches in flight while a log is filled. */
const FILL_WINDOW = 16;
/** Most batches one fill appends, whatever its byte or record target. */
const MAX_FILL_BATCHES = 100_000_000;

/** What a fill left on disk. */
export interface FilledLog {
  readonly records: number;
  readonly segments: number;
  /** Bytes of the segment files (the active one preallocated). */
  readonly fileBytes: number;
  readonly seconds: number;
}

/**
 * Appends `batch` (under `none`, pipelined) until `records` records or `bytes` bytes of frames are
 * written, then closes the log cleanly.
 */
export async function fillLog(dir: string, batch: readonly AppendRecord[], limit: { records?: number; bytes?: number }): Promise<FilledLog> {
  const start = performance.now();
  const { wal } = await Wal.open({ dir, syncPolicy: 'none' });
  const maxRecords = limit.records ?? Number.MAX_SAFE_INTEGER;
  const maxBytes = limit.bytes ?? Number.MAX_SAFE_INTEGER;
  try {
    let records = 0;
    for (let i = 0; i < MAX_FILL_BATCHES && records < maxRecords && wal.stats().io.bytesWritten < maxBytes; i += FILL_WINDOW) {
      const pending: Promise<unknown>[] = [];
      for (let k = 0; k < FILL_WINDOW && records < maxRecords; k++) {
        const n = Math.min(batch.length, maxRecords - records);
        pending.push(wal.append(n === batch.length ? batch : batch.slice(0, n)));
        records += n;
      }
      await Promise.all(pending);
    }
  } finally {
    await wal.close();
  }
  const files = segmentFiles(dir);
  const { wal: check, report } = await Wal.open({ dir, syncPolicy: 'none' });
  await check.close();
  let fileBytes = 0;
  for (const path of files) fileBytes += fs.statSync(path).size;
  return { records: report.records, segments: files.length, fileBytes, seconds: (performance.now() - start) / 1000 };
}

/** What the last open of an {@link openTime} runner reported. */
export interface OpenFacts {
  bytesScanned: number;
  records: number;
}

/**
 * `Wal.open` of `dir`, timed (ms) until the promise resolves; the close after it is not timed.
 * With `rebuild`, the index files and the clean-shutdown marker are deleted first, which forces the
 * engine to re-read and check every segment.
 */
export function openTime(dir: string, rebuild: boolean, facts: OpenFacts): Runner {
  return {
    run: async () => {
      if (rebuild) {
        for (const name of fs.readdirSync(dir)) {
          if (name.endsWith('.idx') || name === 'CLEAN') fs.rmSync(join(dir, name));
        }
      }
      const start = performance.now();
      const { wal, report } = await Wal.open({ dir });
      const ms = performance.now() - start;
      await wal.close();
      facts.bytesScanned = report.bytesScanned;
      facts.records = report.records;
      return { value: ms, records: 0 };
    },
    close: async () => {},
  };
}

/** The full-scan baseline as a runner (ms). `facts.bytesScanned` gets the bytes it read. */
export function fullScan(dir: string, facts: OpenFacts): Runner {
  return {
    run: async () => {
      const { ms, bytes } = fullScanMs(dir);
      facts.bytesScanned = bytes;
      return { value: ms, records: 0 };
    },
    close: async () => {},
  };
}
