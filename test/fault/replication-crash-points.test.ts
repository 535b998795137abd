/**
 * Power cuts at every disk operation of the replication primitives, under every sync policy, with
 * unsynced bytes lost or persisted page by page in any order:
 * - a leader beginning epochs among appends: the log opens, every frame carries the epoch its
 *   history names for its offset (the history never lacks a frame's epoch), and an epoch whose
 *   beginEpoch resolved is there, starting where it said;
 * - a follower appending a leader's frames (appendFrames, across the leader's segment rotations
 *   and epochs): the follower opens (its copied frames' sync lags are the leader's and are not
 *   believed, so a lost frame before a surviving one is a torn tail, not corruption), holds a
 *   byte-identical prefix of the leader's frames with agreeing epochs and, under `always`, every
 *   run acknowledged; resumed, it ends byte-identical to the leader, segment files included.
 *
 * Randomised (which unsynced pages survive): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SyncPolicy } from '../../src/engine/types.js';
import { Wal } from '../../src/engine/wal.js';
import { FakeClock } from '../support/fake-clock.js';
import { copyFrames, usedSegmentBytes } from '../support/frame-copy.js';
import { MemDisk, type UnsyncedSurvival } from '../support/mem-disk.js';
import { random, testSeed } from '../support/seed.js';

const LEADER = '/leader';
const FOLLOWER = '/follower';
const BIG_EPOCH = 2 ** 33 + 5;

function openLog(disk: MemDisk, dir: string, syncPolicy: SyncPolicy, clock: FakeClock, segmentSizeBytes = 4096): Promise<{ wal: Wal }> {
  return Wal.open({
    dir,
    storage: disk.mount(),
    segmentSizeBytes,
    preallocate: false,
    indexIntervalBytes: 256,
    clock: clock.now,
    syncPolicy,
    syncIntervalMs: 3_600_000,
    recoveryPointIntervalMs: 1,
    onWarning: () => {},
  });
}

const value = (b: number, r: number): Buffer => Buffer.from(`batch ${b} record ${r} `.padEnd(60 + ((b * 7 + r) % 90), '.'));

/** Every frame's epoch is the history's epoch at its base offset; returns the frames' bytes, in order. */
async function framesAgreeingWithHistory(wal: Wal, label: string): Promise<Buffer[]> {
  const history = wal.epochHistory();
  const out: Buffer[] = [];
  for (let next = wal.firstOffset, n = 0; next <= wal.highWatermark && n < 10_000; n++) {
    const run = await wal.readFrames(next, 1 << 20);
    for (const frame of run.frames) {
      const epoch = history.findLast((entry) => entry.startOffset <= frame.baseOffset)?.epoch ?? 0;
      assert.equal(frame.epoch, epoch, `${label}: frame ${frame.baseOffset} carries its history epoch`);
      out.push(frame.bytes);
    }
    next = run.nextOffset;
  }
  return out;
}

interface LeaderOutcome {
  acked: { firstOffset: number; count: number }[];
  epochs: { epoch: number; startOffset: number }[];
}

/** Appends with two epochs begun among them (one above 2^32), and a close. */
async function leaderWorkload(disk: MemDisk, syncPolicy: SyncPolicy, clock: FakeClock): Promise<LeaderOutcome> {
  const outcome: LeaderOutcome = { acked: [], epochs: [] };
  let wal: Wal | undefined;
  let b = 0;
  const appendSome = async (log: Wal, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const batch = b++;
      clock.advance(1);
      const count = 1 + (batch % 3);
      const result = await log.append(Array.from({ length: count }, (_, r) => ({ value: value(batch, r) })));
      outcome.acked.push({ firstOffset: result.firstOffset, count });
    }
  };
  try {
    ({ wal } = await openLog(disk, LEADER, syncPolicy, clock));
    await appendSome(wal, 12);
    outcome.epochs.push(await wal.beginEpoch(3));
    await appendSome(wal, 12);
    // Queued, not awaited: the epoch begins after them.
    const queued = appendSome(wal, 1);
    queued.catch(() => undefined);
    outcome.epochs.push(await wal.beginEpoch(BIG_EPOCH));
    await queued;
    await appendSome(wal, 12);
    await wal.close();
  } catch {
    await wal?.close().catch(() => undefined);
  }
  return outcome;
}

async function verifyLeader(disk: MemDisk, syncPolicy: SyncPolicy, outcome: LeaderOutcome, label: string): Promise<void> {
  const { wal } = await openLog(disk, LEADER, syncPolicy, new FakeClock(2_000_000_000_000));
  try {
    await framesAgreeingWithHistory(wal, label);
    for (const epoch of outcome.epochs) assert.ok(wal.epochHistory().some((e) => e.epoch === epoch.epoch && e.startOffset === epoch.startOffset), `${label}: epoch ${epoch.epoch} survives as begun`);
    if (syncPolicy === 'always') {
      const lastAcked = outcome.acked.at(-1);
      if (lastAcked !== undefined) assert.ok(wal.nextOffset >= lastAcked.firstOffset + lastAcked.count, `${label}: acknowledged appends survive`);
    }
    const next = await wal.append([{ value: Buffer.from('after') }], { sync: true });
    const frames = await framesAgreeingWithHistory(wal, `${label}, after an append`);
    assert.equal(frames.length > 0, true);
    assert.equal(next.firstOffset, wal.nextOffset - 1);
  } finally {
    await wal.close();
  }
}

/**
 * The leader whose frames followers copy: several segments of two pages and more (so that a
 * follower's unsynced frames can lose a page before one that survives), three epochs, producers.
 * Appended under `always`, so every frame claims (sync lag 1) that all before it was durable.
 */
async function buildLeader(disk: MemDisk): Promise<void> {
  const clock = new FakeClock();
  const { wal } = await openLog(disk, LEADER, 'always', clock, 8192);
  for (let b = 0; b < 90; b++) {
    if (b === 25) await wal.beginEpoch(2);
    if (b === 60) await wal.beginEpoch(BIG_EPOCH);
    clock.advance(1);
    const options = b % 5 === 0 ? { producerId: 'p', sequence: b } : {};
    await wal.append(Array.from({ length: 1 + (b % 3) }, (_, r) => ({ value: value(b, r) })), options);
  }
  await wal.close();
}

/** Copies the leader's frames in runs (a sync and a reopen in between); returns the offset every acknowledged run reached. */
async function followerWorkload(disk: MemDisk, syncPolicy: SyncPolicy, leader: Wal): Promise<{ ackedNext: number }> {
  const outcome = { ackedNext: 0 };
  let wal: Wal | undefined;
  const copy = async (log: Wal, until: number): Promise<void> => {
    for (let n = 0; n < 200 && log.nextOffset < until; n++) {
      const run = await leader.readFrames(log.nextOffset, 2500);
      const frames = run.frames.filter((frame) => frame.baseOffset < until);
      if (frames.length === 0) break;
      const result = await log.appendFrames(
        frames.map((frame) => frame.bytes),
        { segmentHeader: run.segmentHeader },
      );
      outcome.ackedNext = result.nextOffset;
    }
  };
  try {
    ({ wal } = await openLog(disk, FOLLOWER, syncPolicy, new FakeClock()));
    await copy(wal, 70);
    await wal.sync();
    await wal.close();
    ({ wal } = await openLog(disk, FOLLOWER, syncPolicy, new FakeClock()));
    await copy(wal, Number.MAX_SAFE_INTEGER);
    await wal.close();
  } catch {
    await wal?.close().catch(() => undefined);
  }
  return outcome;
}

async function verifyFollower(disk: MemDisk, syncPolicy: SyncPolicy, leader: Wal, leaderDisk: MemDisk, leaderFrames: readonly Buffer[], ackedNext: number, label: string): Promise<void> {
  const { wal } = await openLog(disk, FOLLOWER, syncPolicy, new FakeClock());
  try {
    const frames = await framesAgreeingWithHistory(wal, label);
    frames.forEach((frame, i) => assert.ok(frame.equals(leaderFrames[i]!), `${label}: frame ${i} is the leader's, byte for byte`));
    if (syncPolicy === 'always') assert.ok(wal.nextOffset >= ackedNext, `${label}: acknowledged frames survive (${wal.nextOffset} < ${ackedNext})`);
    await copyFrames(leader, wal, 5000);
    await wal.sync();
    assert.deepEqual(wal.epochHistory(), leader.epochHistory(), `${label}: resumed, the same history`);
    assert.deepEqual(await wal.hashRange(0), await leader.hashRange(0), `${label}: resumed, the same frames`);
  } finally {
    await wal.close();
  }
  assert.deepEqual(usedSegmentBytes(disk.mount(), FOLLOWER), usedSegmentBytes(leaderDisk.mount(), LEADER), `${label}: segment files byte-identical`);
}

const SWEEPS: readonly { readonly syncPolicy: SyncPolicy; readonly survival: 'lost' | 'pages' }[] = [
  { syncPolicy: 'always', survival: 'lost' },
  { syncPolicy: 'always', survival: 'pages' },
  { syncPolicy: 'interval', survival: 'pages' },
  { syncPolicy: 'none', survival: 'pages' },
];

function survivalFor(mode: 'lost' | 'pages', next: () => number): UnsyncedSurvival | undefined {
  return mode === 'lost' ? undefined : { randomPages: next };
}

describe('replication crash points', () => {
  for (const sweep of SWEEPS) {
    const name = `${sweep.syncPolicy}, unsynced bytes ${sweep.survival === 'lost' ? 'lost' : 'persisted page by page in any order'}`;
    test(`${name}: beginEpoch among appends leaves frames and history in agreement after a crash at any disk operation`, async () => {
      const reference = new MemDisk();
      const full = await leaderWorkload(reference, sweep.syncPolicy, new FakeClock());
      assert.equal(full.epochs.length, 2, 'the workload runs to the end without a crash');
      const totalOps = reference.ops;
      const next = random(testSeed(`replication crash points, leader (${name}), ${totalOps} disk operations`));
      for (let op = 1; op <= totalOps; op++) {
        const disk = new MemDisk();
        disk.crashAt(op, survivalFor(sweep.survival, next));
        const outcome = await leaderWorkload(disk, sweep.syncPolicy, new FakeClock());
        disk.crash(survivalFor(sweep.survival, next));
        await verifyLeader(disk, sweep.syncPolicy, outcome, `${name}: crash at operation ${op}/${totalOps}`);
      }
    });

    test(`${name}: a follower appending a leader's frames recovers a byte-identical prefix after a crash at any disk operation`, async () => {
      const source = new MemDisk();
      await buildLeader(source);
      const { wal: leader } = await openLog(source, LEADER, 'always', new FakeClock(3_000_000_000_000), 8192);
      assert.ok(leader.listSegments().length >= 3);
      try {
        const leaderFrames = await framesAgreeingWithHistory(leader, 'leader');
        const reference = new MemDisk();
        const full = await followerWorkload(reference, sweep.syncPolicy, leader);
        assert.equal(full.ackedNext, leader.nextOffset, 'the workload copies everything without a crash');
        const totalOps = reference.ops;
        const next = random(testSeed(`replication crash points, follower (${name}), ${totalOps} disk operations`));
        for (let op = 1; op <= totalOps; op++) {
          const disk = new MemDisk();
          disk.crashAt(op, survivalFor(sweep.survival, next));
          const outcome = await followerWorkload(disk, sweep.syncPolicy, leader);
          disk.crash(survivalFor(sweep.survival, next));
          await verifyFollower(disk, sweep.syncPolicy, leader, source, leaderFrames, outcome.ackedNext, `${name}: crash at operation ${op}/${totalOps}`);
        }
      } finally {
        await leader.close();
      }
    });
  }
});
