/**
 * The baselines: what plain `node:fs` calls do on the same disk, measured in the same run as wald.
 * Each appends 100-byte buffers to a file that grows (no preallocation), as a naive log would.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { crc32c } from '@node-rs/crc32';
import { runSyncFor, type Runner } from './runner.js';

/** Most records one baseline measurement writes, whatever its time bound. */
const MAX_RECORDS_PER_RUN = 50_000_000;

/** Bytes of one record in every workload. */
export const RECORD_BYTES = 100;

function openGrowingFile(path: string): { fd: number; close(): Promise<void> } {
  const fd = fs.openSync(path, 'w');
  return {
    fd,
    close: async () => {
      fs.closeSync(fd);
      fs.rmSync(path, { force: true });
    },
  };
}

/** (a) `writeSync` of one 100-byte buffer + `fdatasyncSync`, in a loop. */
export function writeSyncLoop(path: string): Runner {
  const file = openGrowingFile(path);
  const buf = Buffer.alloc(RECORD_BYTES, 0x61);
  let position = 0;
  return {
    run: async (runMs) =>
      runSyncFor(
        () => {
          position += fs.writeSync(file.fd, buf, 0, buf.length, position);
          fs.fdatasyncSync(file.fd);
          return 1;
        },
        runMs,
        MAX_RECORDS_PER_RUN,
      ),
    close: file.close,
  };
}

/** (b), (c), (d): `writevSync` of `count` separate 100-byte buffers, then `fdatasyncSync` when `sync`. */
export function writevSyncLoop(path: string, count: number, sync: boolean): Runner {
  const file = openGrowingFile(path);
  const backing = Buffer.alloc(count * RECORD_BYTES, 0x62);
  const buffers: Buffer[] = [];
  for (let i = 0; i < count; i++) buffers.push(backing.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES));
  let position = 0;
  return {
    run: async (runMs) =>
      runSyncFor(
        () => {
          const n = fs.writevSync(file.fd, buffers, position);
          if (n !== backing.length) throw new Error(`short writev: ${n} of ${backing.length} bytes`);
          position += n;
          if (sync) fs.fdatasyncSync(file.fd);
          return count;
        },
        runMs,
        MAX_RECORDS_PER_RUN,
      ),
    close: file.close,
  };
}

/** The segment files (`*.seg`) of a data directory, in name order. */
export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.seg'))
    .sort()
    .map((name) => join(dir, name));
}

/** Bytes per `readSync` of the scans. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

/**
 * (f) The full-scan baseline: every byte of every segment file read with `readSync` in 1 MiB chunks
 * into one reused buffer, and a CRC-32C over all of them: the least any recovery that re-reads the
 * log must do (reusing the buffer keeps garbage collection and first-touch page faults out of it).
 * Returns ms.
 */
export function fullScanMs(dir: string): { ms: number; bytes: number } {
  const chunk = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
  const start = performance.now();
  let bytes = 0;
  let crc = 0;
  for (const path of segmentFiles(dir)) {
    const fd = fs.openSync(path, 'r');
    try {
      for (let position = 0; position < Number.MAX_SAFE_INTEGER; ) {
        const n = fs.readSync(fd, chunk, 0, chunk.length, position);
        if (n === 0) break;
        crc = crc32c(n === chunk.length ? chunk : chunk.subarray(0, n), crc);
        position += n;
        bytes += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  const ms = performance.now() - start;
  if (crc === -1) throw new Error('unreachable: keeps the checksum live');
  return { ms, bytes };
}

/**
 * (e) reference: `readSync` in 1 MiB chunks over the first `bytes` of the segment files, reported
 * as `records` per elapsed second: the page-cache read rate with no decoding at all.
 */
export function rawReadLoop(dir: string, bytes: number, records: number): Runner {
  const chunk = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
  return {
    run: async () => {
      const start = performance.now();
      let left = bytes;
      for (const path of segmentFiles(dir)) {
        if (left <= 0) break;
        const fd = fs.openSync(path, 'r');
        try {
          let position = 0;
          while (left > 0) {
            const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, left), position);
            if (n === 0) break;
            position += n;
            left -= n;
          }
        } finally {
          fs.closeSync(fd);
        }
      }
      return { value: records / ((performance.now() - start) / 1000), records };
    },
    close: async () => {},
  };
}
