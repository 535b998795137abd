/**
 * The worst append latency while a snapshot of a large state is written (issue 8: "measure the
 * worst append latency during a snapshot of 1M keys"), through the real path: a `Wal` on disk
 * (sync policy `always`, so each append waits for its fdatasync) and the `StateKeeper` over it,
 * appending one record at a time through `StateKeeper.append` as the server does.
 *
 * For each kind of snapshot (plain, gzip): appends one after another with no snapshot being
 * written (the baseline, for as long as the snapshot took the time before), then the same appends
 * while `StateKeeper.createSnapshot` runs, until it is done. Prints count, p50, p99 and max of each,
 * and the ratio of the maxima. Not wired into `npm run bench` (it takes a minute and 2 GB).
 *
 * Usage: `npm run build && node --max-old-space-size=4000 dist/scripts/snapshot-append-bench.js [--keys N]`.
 * Writes under a temp directory on the default temp file system, then removes it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wal } from '../src/engine/wal.js';
import { StateKeeper } from '../src/state/state-keeper.js';
import { NodeStorage } from '../src/storage/node-storage.js';

const BATCH = 10_000;
const VALUE = Buffer.alloc(64, 0x61);
/** Most appends per phase: a bound on a phase that never ends. */
const MAX_APPENDS = 1_000_000;

function keysArg(): number {
  const at = process.argv.indexOf('--keys');
  return at === -1 ? 1_000_000 : Number(process.argv[at + 1]);
}

/** Latencies (ms) of appends one after another until `isDone()` (or `maxMs` pass). */
async function appendLoop(state: StateKeeper, isDone: () => boolean, maxMs: number, tag: string): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + maxMs;
  for (let i = 0; i < MAX_APPENDS && !isDone() && performance.now() < end; i++) {
    const started = performance.now();
    await state.append([{ key: Buffer.from(`${tag}-${i % 1000}`), value: VALUE }]);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

function summary(latencies: readonly number[]): { count: number; p50: number; p99: number; max: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

const ms = (value: number): string => value.toFixed(2);

async function main(): Promise<void> {
  const keys = keysArg();
  const dir = mkdtempSync(join(tmpdir(), 'wald-snapshot-append-bench-'));
  const storage = new NodeStorage();
  const { wal } = await Wal.open({ dir, storage, preallocate: false });
  const { keeper: state } = await StateKeeper.open({ wal, storage, options: { maxStateBytes: 2 ** 40 } });
  try {
    for (let first = 0; first < keys; first += BATCH) {
      const count = Math.min(BATCH, keys - first);
      await wal.append(Array.from({ length: count }, (_, i) => ({ key: Buffer.from(`key-${String(first + i).padStart(8, '0')}`), value: VALUE })));
    }
    // Caught up: the snapshot below then measures the write, not the view applying the load.
    await state.get(Buffer.from('key-00000000'));
    console.log(`state: ${state.keyCount} keys, about ${(state.memoryBytes / 1e6).toFixed(0)} MB; sync policy always; one append at a time`);
    for (const compress of [false, true]) {
      let isSnapshotDone = false;
      const snapshotStarted = performance.now();
      const snapshot = state.createSnapshot({ compress }).then((created) => {
        isSnapshotDone = true;
        return created;
      });
      const during = summary(await appendLoop(state, () => isSnapshotDone, 600_000, 'during'));
      const created = await snapshot;
      const snapshotMs = performance.now() - snapshotStarted;
      const baseline = summary(await appendLoop(state, () => false, snapshotMs, 'alone'));
      const kind = compress ? 'gzip' : 'plain';
      console.log(
        `worst append latency during a ${kind} snapshot of ${created.entryCount} keys (${(created.sizeBytes / 1e6).toFixed(1)} MB file, ${ms(snapshotMs)} ms): ` +
          `${during.count} appends, p50 ${ms(during.p50)} ms, p99 ${ms(during.p99)} ms, max ${ms(during.max)} ms; ` +
          `baseline without a snapshot (same run, ${ms(snapshotMs)} ms): ${baseline.count} appends, p50 ${ms(baseline.p50)} ms, p99 ${ms(baseline.p99)} ms, max ${ms(baseline.max)} ms; ` +
          `ratio of max ${(during.max / baseline.max).toFixed(2)}, of p99 ${(during.p99 / baseline.p99).toFixed(2)}`,
      );
    }
  } finally {
    await state.close();
    await wal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
