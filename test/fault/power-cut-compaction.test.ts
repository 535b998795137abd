/**
 * Power cuts on a real file system during compaction under load: a child appends keyed records
 * with `always` and compacts in a loop on the FUSE pass-through of power-cut.test.ts
 * (test/support/fuse/unsynced_fs.py); the parent kills it after a random number of
 * acknowledgements (and at least one compaction) and at once cuts the power, so everything not
 * fsynced (file bytes) or not directory-fsynced (names: the snapshot's rename, the segments'
 * unlinks) is lost, and in half the rounds a random part of the unsynced pages reaches the disk
 * anyway. Then the log and its view reopen and are checked as after a kill -9 (see
 * compaction-records.ts): nothing acknowledged lost, the view from a snapshot that covers the
 * deleted part, no offset reused. Unlike kill9-compaction.test.ts this catches a missing fsync.
 * Needs FUSE and python3-fusepy, and fails without them (CI installs them).
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PowerCutFs } from '../support/power-cut-fs.js';
import { APPENDS_PER_WRITER, checkCompactedLog, COMPACTION_WRITERS, runCompactionChild, type CompactionAck } from './compaction-records.js';
import { seededRandom } from './kill9-records.js';

const ROUNDS = 4;
const MIN_ACKS_BEFORE_KILL = 50;
const MAX_ACKS_BEFORE_KILL = 600;

assert.ok(MAX_ACKS_BEFORE_KILL < COMPACTION_WRITERS * APPENDS_PER_WRITER);

test('a power cut during compaction under load loses nothing acknowledged, and the view reopens from the snapshot', { timeout: 120_000 }, async (t) => {
  const seedText = process.env['WALD_TEST_SEED'];
  const seed = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  assert.ok(Number.isInteger(seed), `WALD_TEST_SEED must be an integer, got ${String(seedText)}`);
  t.diagnostic(`seed ${seed} (replay with WALD_TEST_SEED=${seed})`);
  const random = seededRandom(seed);
  const disk = await PowerCutFs.mount();
  t.after(() => disk.unmount());
  const dir = disk.mountDir;
  const acked: CompactionAck[] = [];
  let expectedNext = 0;
  let compactedRounds = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const killAfter = MIN_ACKS_BEFORE_KILL + random(MAX_ACKS_BEFORE_KILL - MIN_ACKS_BEFORE_KILL + 1);
    const keepPagesSeed = round % 2 === 1 ? random(2 ** 31) : undefined;
    const run = await runCompactionChild(dir, round, (r) => r.acks.length >= killAfter && r.segmentsDeleted > 0);
    const cut = await disk.cut({ keepPagesSeed });
    assert.equal(run.signal, 'SIGKILL', `round ${round}: the child was killed, not ended by itself (exit code ${String(run.code)})`);
    assert.ok(run.nextOffsetAtStart >= expectedNext, `round ${round}: the child found the log as the last check left it`);
    acked.push(...run.acks);
    const { nextOffset, firstOffset } = await checkCompactedLog(dir, acked, `round ${round}`);
    t.diagnostic(
      `round ${round}: killed after ${run.acks.length} acks and ${run.compactions} compactions; ` +
        `${cut.livePages} unsynced pages kept, ${cut.durablePages} lost; the log starts at ${firstOffset}, next ${nextOffset}`,
    );
    if (firstOffset > 0) compactedRounds++;
    expectedNext = nextOffset;
  }
  assert.ok(compactedRounds > 0, 'compactions deleted segments that the cuts kept deleted');
});
