/**
 * The floor of the replication lag rows (r2/r3): what the follower's disk alone takes to make one
 * batch durable at the lag load's cadence, measured in the same run as the lag.
 *
 * A follower acknowledges a batch as durable only after its own fdatasync, so no lag can be shorter
 * than that sync: plain `node:fs` writes `batchBytes` (one lag batch's frame as the follower stores
 * it) into a zero-filled file (as a preallocated segment is) and fdatasyncs it, one batch every
 * `intervalMs` by a timer (as the load offers them), for `runMs`. What comes back is each
 * write + fdatasync's duration: its p99 is the lag p99 that the disk alone would allow, with no
 * network, no gRPC and no log.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** Most syncs one measurement makes, whatever its time bound. */
const MAX_SYNCS = 1_000_000;
/** Zeros written per call while the file is filled. */
const FILL_CHUNK_BYTES = 1024 * 1024;

/** Durations (ms) of one write + fdatasync of `batchBytes` every `intervalMs`, for `runMs`, into a zero-filled file in `dir`. */
export async function syncLatencies(dir: string, batchBytes: number, intervalMs: number, runMs: number): Promise<number[]> {
  const path = join(dir, 'sync-floor.bin');
  const batch = Buffer.alloc(batchBytes);
  for (let i = 0; i < batch.length; i++) batch[i] = (i * 31 + 7) & 0xff;
  const fd = fs.openSync(path, 'w');
  try {
    // Room for every batch the run can write, zero-filled and synced before the clock starts.
    const capacity = Math.ceil(runMs / intervalMs + 1) * batchBytes;
    const zeros = Buffer.alloc(FILL_CHUNK_BYTES);
    for (let filled = 0; filled < capacity; filled += zeros.length) fs.writeSync(fd, zeros, 0, zeros.length, filled);
    fs.fsyncSync(fd);
    const durations: number[] = [];
    const end = performance.now() + runMs;
    let position = 0;
    for (let i = 0; i < MAX_SYNCS && performance.now() < end && position + batchBytes <= capacity; i++) {
      const start = performance.now();
      position += fs.writeSync(fd, batch, 0, batch.length, position);
      fs.fdatasyncSync(fd);
      durations.push(performance.now() - start);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    return durations;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
  }
}
