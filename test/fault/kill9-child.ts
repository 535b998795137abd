/**
 * The child process of kill9.test.ts: opens the log in `WALD_KILL9_DIR` with `always` and appends
 * batches of varying sizes from a few concurrent writers, printing one JSON line per acknowledged
 * append (after it resolved) until the parent kills it. Bounded: each writer stops after
 * `BATCHES_PER_WRITER` batches, and then the log is closed cleanly.
 *
 * Without its environment (as when `node --test` picks up every file under test/) it does nothing.
 */
import { Wal, type AppendRecord } from '../../src/index.js';
import { BATCHES_PER_WRITER, digestRecords, SEGMENT_SIZE_BYTES, WRITERS, writerBatches, type AckLine } from './kill9-records.js';


function print(line: object): void {
  // Short lines to a pipe: one write(2) each, so a kill never leaves half a line.
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function runWriter(wal: Wal, round: number, writer: number, seed: number): Promise<void> {
  let seq = 0;
  for (const records of writerBatches(seed, round, writer, BATCHES_PER_WRITER)) {
    const input: AppendRecord[] = records.map((r) => (r.key === undefined ? { value: r.value } : { key: r.key, value: r.value }));
    const result = await wal.append(input);
    const ack: AckLine = { writer, seq, firstOffset: result.firstOffset, lastOffset: result.lastOffset, digest: digestRecords(records) };
    print(ack);
    seq++;
  }
}

async function main(): Promise<void> {
  const dir = process.env['WALD_KILL9_DIR'];
  const round = Number(process.env['WALD_KILL9_ROUND']);
  const seed = Number(process.env['WALD_KILL9_SEED']);
  if (dir === undefined || !Number.isInteger(round) || !Number.isInteger(seed)) return;
  const { wal, report } = await Wal.open({ dir, syncPolicy: 'always', segmentSizeBytes: SEGMENT_SIZE_BYTES });
  print({ ready: true, nextOffset: wal.nextOffset, recovered: report.records });
  const writers: Promise<void>[] = [];
  for (let writer = 0; writer < WRITERS; writer++) writers.push(runWriter(wal, round, writer, seed));
  await Promise.all(writers);
  await wal.close();
  print({ done: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
