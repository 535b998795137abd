/**
 * The child process of kill9.test.ts and power-cut.test.ts: opens the log in `WALD_KILL9_DIR` and
 * appends batches of varying sizes from a few concurrent writers, printing one JSON line per
 * acknowledged append (after it resolved) until the parent kills it. Bounded: each writer stops
 * after `BATCHES_PER_WRITER` batches, and then the log is closed cleanly.
 *
 * A rejected append prints a `RejectLine` and stops its writer; once every writer has stopped that
 * way the child prints a `StoppedLine` (with the log's write state) and closes the log.
 *
 * Environment: `WALD_KILL9_DIR`, `WALD_KILL9_ROUND`, `WALD_KILL9_SEED`; optional
 * `WALD_KILL9_SYNC_POLICY` (default `always`) and `WALD_KILL9_SYNC_INTERVAL_MS` (for `interval`).
 * Without them (as when `node --test` picks up every file under test/) it does nothing.
 */
import { isWalError, Wal, type AppendRecord, type SyncPolicy } from '../../src/index.js';
import { BATCHES_PER_WRITER, digestRecords, SEGMENT_SIZE_BYTES, WRITERS, writerBatches, type AckLine, type RejectLine } from './kill9-records.js';

const SYNC_POLICIES: readonly string[] = ['always', 'interval', 'none'] satisfies SyncPolicy[];

function print(line: object): void {
  // Short lines to a pipe: one write(2) each, so a kill never leaves half a line.
  process.stdout.write(JSON.stringify(line) + '\n');
}

/** Appends the writer's batches in order; false when one was rejected (the writer then stops). */
async function runWriter(wal: Wal, round: number, writer: number, seed: number): Promise<boolean> {
  let seq = 0;
  for (const records of writerBatches(seed, round, writer, BATCHES_PER_WRITER)) {
    const input: AppendRecord[] = records.map((r) => (r.key === undefined ? { value: r.value } : { key: r.key, value: r.value }));
    try {
      const result = await wal.append(input);
      const ack: AckLine = {
        writer,
        seq,
        firstOffset: result.firstOffset,
        lastOffset: result.lastOffset,
        digest: digestRecords(records),
        highWatermark: wal.highWatermark,
      };
      print(ack);
    } catch (error) {
      const reject: RejectLine = { writer, seq, rejected: isWalError(error) ? error.code : String((error as Error).name) };
      print(reject);
      return false;
    }
    seq++;
  }
  return true;
}

function syncPolicy(): SyncPolicy {
  const policy = process.env['WALD_KILL9_SYNC_POLICY'] ?? 'always';
  if (!SYNC_POLICIES.includes(policy)) throw new RangeError(`WALD_KILL9_SYNC_POLICY must be one of ${SYNC_POLICIES.join(', ')}, got ${policy}`);
  return policy as SyncPolicy;
}

async function main(): Promise<void> {
  const dir = process.env['WALD_KILL9_DIR'];
  const round = Number(process.env['WALD_KILL9_ROUND']);
  const seed = Number(process.env['WALD_KILL9_SEED']);
  if (dir === undefined || !Number.isInteger(round) || !Number.isInteger(seed)) return;
  const intervalText = process.env['WALD_KILL9_SYNC_INTERVAL_MS'];
  const syncIntervalMs = intervalText === undefined ? undefined : Number(intervalText);
  const { wal, report } = await Wal.open({ dir, syncPolicy: syncPolicy(), syncIntervalMs, segmentSizeBytes: SEGMENT_SIZE_BYTES });
  print({ ready: true, nextOffset: wal.nextOffset, recovered: report.records });
  const writers: Promise<boolean>[] = [];
  for (let writer = 0; writer < WRITERS; writer++) writers.push(runWriter(wal, round, writer, seed));
  const finished = await Promise.all(writers);
  if (finished.every((done) => !done)) print({ stopped: true, writeState: wal.stats().writeState });
  await wal.close();
  print({ done: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
