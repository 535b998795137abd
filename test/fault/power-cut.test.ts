/**
 * Power cuts on a real file system. A FUSE pass-through (test/support/fuse/unsynced_fs.py) keeps
 * what was synced apart from what was merely written; a child process appends to a log on it, the
 * parent kills the child with SIGKILL after a random number of acknowledgements and at once cuts
 * the power: everything not fsynced (file bytes) or not directory-fsynced (names) is lost, and in
 * half the rounds a random part of the unsynced pages reaches the disk anyway, in any order. Then
 * the log is reopened on the mount and checked:
 *
 * - `always`: every acknowledged batch is there with identical bytes;
 * - `interval` and `none`: what was lost is a suffix (and under `interval` nothing at or below a
 *   high watermark the child saw);
 * - under every policy: offsets dense, whole batches, nothing but what the children wrote, in each
 *   writer's order, and nothing an earlier round's check saw is lost.
 *
 * Unlike kill9.test.ts (where the page cache survives the kill) this catches a missing fsync.
 * Needs FUSE and python3-fusepy, and fails without them (CI installs them).
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`. The seed fixes the records,
 * the kill points and the pages a cut keeps; where in its write path the child dies is timing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Wal, type AppendRecord, type SyncPolicy } from '../../src/index.js';
import { PowerCutFs } from '../support/power-cut-fs.js';
import { runKill9Child } from './kill9-child-runner.js';
import { checkAckedPrefix, checkAcks, checkStructure, readWholeLog } from './kill9-log-checks.js';
import { BATCHES_PER_WRITER, seededRandom, SEGMENT_SIZE_BYTES, WRITERS, writerBatches, type AckLine } from './kill9-records.js';

const run = promisify(execFile);
const ROUNDS = 6;
/** The kill comes after 0..MAX_ACKS_BEFORE_KILL acknowledgements: always before the child is done. */
const MAX_ACKS_BEFORE_KILL = 150;
/** Short, so that `interval` syncs several times within a round. */
const SYNC_INTERVAL_MS = 10;
const PAGE_BYTES = 4096;
const TEST_TIMEOUT_MS = 60_000;

assert.ok(MAX_ACKS_BEFORE_KILL < WRITERS * BATCHES_PER_WRITER);

const seedText = process.env['WALD_TEST_SEED'];
const SEED = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
assert.ok(Number.isInteger(SEED), `WALD_TEST_SEED must be an integer, got ${String(seedText)}`);

/** Mounts a fresh power-cut file system that is unmounted (and its temp dirs removed) when the test ends, pass or fail. */
async function mountFor(t: TestContext): Promise<PowerCutFs> {
  const disk = await PowerCutFs.mount();
  t.after(() => disk.unmount());
  return disk;
}

/** This test's PRNG: the file's seed, varied per test so that tests do not share kill points. */
function randomFor(t: TestContext, salt: number): (below: number) => number {
  t.diagnostic(`seed ${SEED} (replay with WALD_TEST_SEED=${SEED})`);
  return seededRandom(SEED ^ Math.imul(salt + 1, 0x9e3779b1));
}

function writeFile(path: string, bytes: Buffer, sync: boolean): void {
  const fd = openSync(path, 'wx+');
  try {
    writevSync(fd, [bytes], 0);
    if (sync) fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

test('the power-cut file system keeps file bytes as of their last fsync and names as of their directory fsync', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const disk = await mountFor(t);
  const dir = disk.mountDir;
  writeFile(join(dir, 'kept'), Buffer.from('synced'), true);
  writeFile(join(dir, 'renamed'), Buffer.from('r'), true);
  writeFile(join(dir, 'unlinked'), Buffer.from('u'), true);
  const unlinked = openSync(join(dir, 'unlinked'), 'r');
  fsyncSync(unlinked);
  closeSync(unlinked);
  syncDir(dir);
  const kept = openSync(join(dir, 'kept'), 'r+');
  writevSync(kept, [Buffer.from(' and then not')], 6);
  closeSync(kept);
  writeFile(join(dir, 'never-named'), Buffer.from('data synced, name not'), true);
  renameSync(join(dir, 'renamed'), join(dir, 'renamed-to'));
  unlinkSync(join(dir, 'unlinked'));
  const before = await disk.stats();
  assert.deepEqual({ fdatasync: before.fdatasync, fsync: before.fsync, fsyncdir: before.fsyncdir }, { fdatasync: 4, fsync: 1, fsyncdir: 1 }, 'fdatasync arrives as a datasync, fsync as a full one, fsync of a directory opened read-only as fsyncdir');

  await disk.cut();
  assert.deepEqual(readdirSync(dir).sort(), ['kept', 'renamed', 'unlinked']);
  assert.equal(readFileSync(join(dir, 'kept'), 'utf8'), 'synced');
  assert.equal(readFileSync(join(dir, 'renamed'), 'utf8'), 'r');
  assert.equal(readFileSync(join(dir, 'unlinked'), 'utf8'), 'u');
  writeFile(join(dir, 'after-cut'), Buffer.from('x'), true);
  await disk.cut();
  assert.deepEqual(readdirSync(dir).sort(), ['kept', 'renamed', 'unlinked'], 'what a cut left is durable; what came after is not');
});

test('the pass-through serves what the engine uses: exclusive create, writev, ftruncate, fstat, readdir', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const disk = await mountFor(t);
  const path = join(disk.mountDir, 'file');
  const fd = openSync(path, 'wx+');
  try {
    assert.equal(writevSync(fd, [Buffer.from('abc'), Buffer.alloc(2 * PAGE_BYTES, 'd')], 0), 3 + 2 * PAGE_BYTES);
    assert.throws(() => openSync(path, 'wx+'), { code: 'EEXIST' });
    ftruncateSync(fd, 2);
    fdatasyncSync(fd);
    assert.equal(fstatSync(fd).size, 2);
  } finally {
    closeSync(fd);
  }
  syncDir(disk.mountDir);
  await disk.cut();
  assert.deepEqual(readdirSync(disk.mountDir), ['file']);
  assert.equal(readFileSync(path, 'utf8'), 'ab');
});

test('a cut with keep-pages keeps each unsynced page from the live or the durable side, and a length between the two', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const disk = await mountFor(t);
  const random = randomFor(t, 1);
  const durable = Buffer.alloc(5 * PAGE_BYTES, 'a');
  const live = Buffer.concat([Buffer.alloc(PAGE_BYTES, 'a'), Buffer.alloc(3 * PAGE_BYTES, 'b'), Buffer.alloc(PAGE_BYTES, 'a'), Buffer.alloc(3 * PAGE_BYTES - 100, 'c')]);
  const sides = { live: 0, durable: 0 };
  for (let cut = 0; cut < 4; cut++) {
    const path = join(disk.mountDir, `file-${cut}`);
    writeFile(path, durable, true);
    syncDir(disk.mountDir);
    const fd = openSync(path, 'r+');
    writevSync(fd, [live], 0);
    closeSync(fd);
    const report = await disk.cut({ keepPagesSeed: random(2 ** 31) });
    const after = readFileSync(path);
    assert.ok(after.length >= durable.length && after.length <= live.length, `length ${after.length} lies between ${durable.length} and ${live.length}`);
    for (let at = 0; at < after.length; at += PAGE_BYTES) {
      const page = after.subarray(at, at + PAGE_BYTES);
      const fromLive = page.equals(live.subarray(at, at + page.length));
      const fromDurable = page.equals(Buffer.concat([durable, Buffer.alloc(live.length)]).subarray(at, at + page.length));
      assert.ok(fromLive || fromDurable, `page at ${at} is the live or the durable one`);
    }
    assert.equal(report.livePages + report.durablePages, 6, 'six pages differ between live and durable');
    sides.live += report.livePages;
    sides.durable += report.durablePages;
  }
  t.diagnostic(`pages kept live ${sides.live}, durable ${sides.durable}`);
});

test('fail-fsync fails the next fsyncs of matching files with the code given and makes nothing durable', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const disk = await mountFor(t);
  const path = join(disk.mountDir, 'x.seg');
  writeFile(path, Buffer.from('v1'), true);
  syncDir(disk.mountDir);
  await disk.failFsync('EIO', 1, '*.seg');
  writeFile(join(disk.mountDir, 'other'), Buffer.from('not matched'), true);
  const fd = openSync(path, 'r+');
  try {
    writevSync(fd, [Buffer.from('v2')], 0);
    assert.throws(() => fdatasyncSync(fd), { code: 'EIO' });
    await disk.failFsync('ENOSPC', 1);
    assert.throws(() => fsyncSync(fd), { code: 'ENOSPC' });
  } finally {
    closeSync(fd);
  }
  assert.equal((await disk.stats()).failedFsyncs, 2);
  await disk.cut();
  assert.equal(readFileSync(path, 'utf8'), 'v1');
});

test('flock on the mount (the kernel emulates it) refuses a second holder', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const disk = await mountFor(t);
  const lock = join(disk.mountDir, 'LOCK');
  writeFileSync(lock, '');
  const { stdout } = await run('flock', ['--nonblock', lock, '--command', `flock --nonblock ${lock} true; echo $?`]);
  assert.equal(stdout.trim(), '1', 'a second flock of a held lock fails');
  await run('flock', ['--nonblock', lock, 'true']);
});

/** Runs ROUNDS child / kill / cut / reopen rounds on one log under `syncPolicy`, checking the log after each. */
async function powerCutRounds(t: TestContext, syncPolicy: SyncPolicy, random: (below: number) => number): Promise<void> {
  const disk = await mountFor(t);
  const dir = disk.mountDir;
  /** Acknowledged batches a check found: durable since (the check reopened and closed the log). */
  const mustSurvive: AckLine[] = [];
  let expectedNext = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const killAfter = random(MAX_ACKS_BEFORE_KILL + 1);
    const keepPagesSeed = round % 2 === 1 ? random(2 ** 31) : undefined;
    const child = await runKill9Child({ dir, round, seed: SEED, syncPolicy, syncIntervalMs: SYNC_INTERVAL_MS, shouldKill: (c) => c.acks.length >= killAfter });
    const cut = await disk.cut({ keepPagesSeed });
    const mode = keepPagesSeed === undefined ? 'cut' : 'cut with keep-pages';
    t.diagnostic(`round ${round}: killed after ${killAfter} acks (${child.acks.length} in all); ${mode}: ${cut.livePages} unsynced pages kept, ${cut.durablePages} lost`);
    assert.equal(child.signal, 'SIGKILL', `round ${round}: the child was killed, not ended by itself (exit code ${String(child.code)})`);
    assert.equal(child.nextOffsetAtStart, expectedNext, `round ${round}: the child found the log as the last check left it`);
    const { wal, report } = await Wal.open({ dir, syncPolicy, segmentSizeBytes: SEGMENT_SIZE_BYTES });
    try {
      t.diagnostic(`round ${round}: recovered ${report.records} records; faults: ${report.faults.map((f) => f.kind).join(', ') || 'none'}`);
      const records = await readWholeLog(wal);
      checkStructure(records, SEED);
      assert.ok(records.length >= expectedNext, `round ${round}: the ${expectedNext} records an earlier check saw are still there (log has ${records.length})`);
      checkAcks(records, mustSurvive);
      if (syncPolicy === 'always') {
        checkAcks(records, child.acks);
        mustSurvive.push(...child.acks);
      } else {
        const kept = checkAckedPrefix(records, child.acks);
        t.diagnostic(`round ${round}: ${kept.length} of ${child.acks.length} acknowledged batches survived`);
        mustSurvive.push(...kept);
      }
      if (syncPolicy !== 'none') {
        const highWatermark = Math.max(-1, ...child.acks.map((ack) => ack.highWatermark));
        assert.ok(highWatermark < records.length, `round ${round}: offsets up to the high watermark ${highWatermark} the child saw are durable (log has ${records.length})`);
      }
      expectedNext = records.length;
    } finally {
      await wal.close();
    }
  }
}

test('always: every acknowledged append survives a power cut, byte for byte, offsets dense, batches whole', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await powerCutRounds(t, 'always', randomFor(t, 2));
});

test('interval: a power cut loses at most a suffix of the log and nothing below the high watermark', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await powerCutRounds(t, 'interval', randomFor(t, 3));
});

test('none: a power cut loses at most a suffix of the log; the log opens, offsets dense, batches whole', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await powerCutRounds(t, 'none', randomFor(t, 4));
});

test('always: a failed fdatasync rejects the appends waiting on it, makes the log read-only, and a power cut then loses nothing acknowledged', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const disk = await mountFor(t);
  const random = randomFor(t, 5);
  const dir = disk.mountDir;
  const failAfter = 1 + random(MAX_ACKS_BEFORE_KILL);
  let armed: Promise<void> | undefined;
  const child = await runKill9Child({
    dir,
    round: 0,
    seed: SEED,
    syncPolicy: 'always',
    shouldKill: (c) => {
      // Only the active segment's fdatasync: a failed background preallocation is merely a warning.
      if (armed === undefined && c.acks.length >= failAfter) armed = disk.failFsync('EIO', 1, '*.seg');
      return c.stopped !== undefined;
    },
  });
  await armed;
  const stats = await disk.stats();
  await disk.cut();
  t.diagnostic(`fdatasync set to fail after ${failAfter} acks; ${child.acks.length} acknowledged; rejected: ${child.rejects.map((r) => r.rejected).join(', ') || 'none'}`);
  assert.ok(armed !== undefined, `the child acknowledged ${failAfter} appends before ending`);
  assert.equal(stats.failedFsyncs, 1, 'the failure was injected once');
  assert.ok(child.stopped !== undefined, 'every writer stopped on a rejected append');
  assert.equal(child.stopped.writeState, 'read-only');
  assert.ok(child.rejects.some((r) => r.rejected === 'WAL_IO_ERROR'), 'the appends waiting on the failed fdatasync got WAL_IO_ERROR');
  for (const reject of child.rejects) assert.ok(['WAL_IO_ERROR', 'WAL_READ_ONLY'].includes(reject.rejected), `writer ${reject.writer}: ${reject.rejected}`);

  const { wal } = await Wal.open({ dir, syncPolicy: 'always', segmentSizeBytes: SEGMENT_SIZE_BYTES });
  try {
    const records = await readWholeLog(wal);
    checkStructure(records, SEED);
    checkAcks(records, child.acks);
    const next = writerBatches(SEED, 1, 0, 1).next();
    assert.ok(next.done !== true);
    const input: AppendRecord[] = next.value.map((r) => (r.key === undefined ? { value: r.value } : { key: r.key, value: r.value }));
    const appended = await wal.append(input);
    assert.equal(appended.firstOffset, records.length, 'the reopened log is writable again and continues the log');
  } finally {
    await wal.close();
  }
});
