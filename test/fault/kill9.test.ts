/**
 * SIGKILL of a child process appending with `always`, a few times on the same directory: after each
 * kill every acknowledged batch is in the log with identical bytes, offsets are dense from 0, batches
 * are whole, and nothing but what the child wrote is there.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Wal } from '../../src/index.js';
import { runKill9Child } from './kill9-child-runner.js';
import { checkAcks, checkStructure, readWholeLog } from './kill9-log-checks.js';
import { BATCHES_PER_WRITER, seededRandom, SEGMENT_SIZE_BYTES, WRITERS, type AckLine } from './kill9-records.js';

const ROUNDS = 4;
/** The kill comes after 0..MAX_ACKS_BEFORE_KILL acknowledgements: always before the child is done. */
const MAX_ACKS_BEFORE_KILL = 200;

assert.ok(MAX_ACKS_BEFORE_KILL < WRITERS * BATCHES_PER_WRITER);

test('every acknowledged append survives SIGKILL of the appending process, offsets dense, batches whole', { timeout: 300_000 }, async (t) => {
  const seedText = process.env['WALD_TEST_SEED'];
  const seed = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  assert.ok(Number.isInteger(seed), `WALD_TEST_SEED must be an integer, got ${String(seedText)}`);
  t.diagnostic(`seed ${seed} (replay with WALD_TEST_SEED=${seed})`);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'wald-kill9-'));
  const acked: AckLine[] = [];
  let expectedNext = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = random(MAX_ACKS_BEFORE_KILL + 1);
      const result = await runKill9Child({ dir, round, seed, shouldKill: (run) => run.acks.length >= killAfter });
      t.diagnostic(`round ${round}: killed after ${killAfter} acks, ${result.acks.length} acknowledged in all`);
      assert.equal(result.signal, 'SIGKILL', `round ${round}: the child was killed, not ended by itself (exit code ${String(result.code)})`);
      assert.equal(result.nextOffsetAtStart, expectedNext, `round ${round}: the child found the log as the last check left it`);
      acked.push(...result.acks);
      const { wal, report } = await Wal.open({ dir, syncPolicy: 'always', segmentSizeBytes: SEGMENT_SIZE_BYTES });
      try {
        t.diagnostic(`round ${round}: recovered ${report.records} records; faults: ${report.faults.map((f) => f.kind).join(', ') || 'none'}`);
        const records = await readWholeLog(wal);
        checkStructure(records, seed);
        checkAcks(records, acked);
        expectedNext = records.length;
      } finally {
        await wal.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
