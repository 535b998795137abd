/**
 * SIGKILL of a child process that appends keyed records with `always` while it compacts in a loop,
 * a few rounds on the same directory: after each kill the log and its view reopen (a snapshot
 * covers whatever the compactions deleted), every acknowledged put is in the view (or a later put
 * of its key), every acknowledged record still retained reads back identical, and no offset is
 * reused.
 *
 * Randomised (when the kill comes): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkCompactedLog, COMPACTION_WRITERS, APPENDS_PER_WRITER, runCompactionChild, type CompactionAck } from './compaction-records.js';
import { seededRandom } from './kill9-records.js';

const ROUNDS = 3;
/** The kill comes after MIN..MAX acknowledgements, and once the child's compactions have deleted a segment. */
const MIN_ACKS_BEFORE_KILL = 100;
const MAX_ACKS_BEFORE_KILL = 800;

assert.ok(MAX_ACKS_BEFORE_KILL < COMPACTION_WRITERS * APPENDS_PER_WRITER);

test('SIGKILL during compaction under load loses nothing acknowledged, and the view reopens from the snapshot', { timeout: 300_000 }, async (t) => {
  const seedText = process.env['WALD_TEST_SEED'];
  const seed = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  assert.ok(Number.isInteger(seed), `WALD_TEST_SEED must be an integer, got ${String(seedText)}`);
  t.diagnostic(`seed ${seed} (replay with WALD_TEST_SEED=${seed})`);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'wald-kill9-compaction-'));
  const acked: CompactionAck[] = [];
  let expectedNext = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = MIN_ACKS_BEFORE_KILL + random(MAX_ACKS_BEFORE_KILL - MIN_ACKS_BEFORE_KILL + 1);
      const run = await runCompactionChild(dir, round, (r) => r.acks.length >= killAfter && r.segmentsDeleted > 0);
      assert.equal(run.signal, 'SIGKILL', `round ${round}: the child was killed, not ended by itself (exit code ${String(run.code)})`);
      assert.ok(run.nextOffsetAtStart >= expectedNext, `round ${round}: the child found the log as the last check left it`);
      acked.push(...run.acks);
      const { nextOffset, firstOffset } = await checkCompactedLog(dir, acked, `round ${round}`);
      t.diagnostic(`round ${round}: killed after ${run.acks.length} acks and ${run.compactions} compactions; the log starts at ${firstOffset}, next ${nextOffset}`);
      assert.ok(firstOffset > 0, `round ${round}: compactions deleted segments`);
      expectedNext = nextOffset;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
