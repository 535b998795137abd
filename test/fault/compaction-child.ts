/**
 * The child process of kill9-compaction.test.ts and power-cut-compaction.test.ts: opens the log in
 * `WALD_COMPACTION_DIR` with its key-value view, appends keyed records from a few concurrent
 * writers and compacts in a loop meanwhile (no retention: every covered segment goes), printing one
 * JSON line per acknowledged append and per compaction, until the parent kills it. Bounded: each
 * writer stops after `APPENDS_PER_WRITER` appends, then the compaction loop ends and the log closes.
 *
 * Environment: `WALD_COMPACTION_DIR`, `WALD_COMPACTION_ROUND`. Without them it does nothing.
 */
import { Wal } from '../../src/index.js';
import { Compactor } from '../../src/state/compactor.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../src/state/state-options.js';
import { NodeStorage } from '../../src/storage/node-storage.js';
import { APPENDS_PER_WRITER, COMPACTION_SEGMENT_BYTES, COMPACTION_WRITERS, keyOf, valueOf, type CompactionAck } from './compaction-records.js';

function print(line: object): void {
  // Short lines to a pipe: one write(2) each, so a kill never leaves half a line.
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function runWriter(wal: Wal, round: number, writer: number): Promise<void> {
  for (let i = 0; i < APPENDS_PER_WRITER; i++) {
    const { firstOffset } = await wal.append([{ key: keyOf(round, writer, i), value: valueOf(round, writer, i) }]);
    const ack: CompactionAck = { round, writer, i, offset: firstOffset };
    print(ack);
  }
}

async function main(): Promise<void> {
  const dir = process.env['WALD_COMPACTION_DIR'];
  const round = Number(process.env['WALD_COMPACTION_ROUND']);
  if (dir === undefined || !Number.isInteger(round)) return;
  const storage = new NodeStorage();
  const { wal } = await Wal.open({ dir, storage, syncPolicy: 'always', segmentSizeBytes: COMPACTION_SEGMENT_BYTES });
  const { keeper } = await StateKeeper.open({ wal, storage });
  const compactor = new Compactor({ wal, state: keeper, storage, options: { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0 } });
  print({ ready: true, nextOffset: wal.nextOffset, firstOffset: wal.firstOffset });
  let writing = true;
  const writers = Array.from({ length: COMPACTION_WRITERS }, (_, writer) => runWriter(wal, round, writer));
  const compactions = (async () => {
    while (writing) {
      const result = await compactor.compact();
      print({ compacted: true, segmentsDeleted: result.segmentsDeleted, firstOffset: result.firstOffset, snapshotId: result.snapshotId });
    }
  })();
  await Promise.all(writers);
  writing = false;
  await compactions;
  await keeper.close();
  await wal.close();
  print({ done: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
