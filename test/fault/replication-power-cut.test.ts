/**
 * A follower whose file system loses power: its data directory is on the FUSE pass-through of
 * test/support/power-cut-fs.ts, which drops everything not fsynced (in half the rounds keeping a
 * random part of the unsynced pages, in any order). During sustained appends to the leader the
 * follower is killed with SIGKILL and the power cut at once. Just before, the test reads the offset
 * the follower has called durable (its GetStats high watermark, which moves only after its own
 * fsync, and is what it reports to the leader). Restarted on what survived, first with a leader
 * that cannot be reached (so it recovers and serves, but copies nothing), its log must still hold
 * every record below that offset, byte for byte the leader's (HashRange), and be a prefix of the
 * leader's (whole frames: no torn or foreign record); a follower that skipped its fsync fails
 * here. Restarted with its leader, it must then catch up with neither a gap nor a duplicate.
 * Needs FUSE and python3-fusepy.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { WalClient } from '../../src/client/wal-client.js';
import type { HashRangeResponse } from '../../src/gen/wald/v1/replication.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { PowerCutFs } from '../support/power-cut-fs.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rawClient, readAll, startServe, unary, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';
import { seededRandom } from './kill9-records.js';

const ROUNDS = 3;
/** Batches of 10 records the writer appends at most: the loop is bounded however long the rounds take. */
const MAX_BATCHES = 10_000;
const seedText = process.env['WALD_TEST_SEED'];
const SEED = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
/** A leader address nothing listens on: the follower restarted there recovers and serves, and copies nothing. */
const NO_LEADER = '127.0.0.1:1';

/** The offset after the last record the server at `address` holds durably (GetStats high watermark + 1). */
async function durableNextOffset(address: string): Promise<number> {
  const client = rawClient(address);
  try {
    const stats = await unary<GetStatsResponse>((callback) => client.getStats({}, new Metadata(), { deadline: Date.now() + 5000 }, callback));
    return stats.highWatermark === undefined ? 0 : Number(stats.highWatermark) + 1;
  } finally {
    client.close();
  }
}

/** HashRange of [0, toOffset) at `address`: the SHA-256 of those frames as stored. */
async function hashPrefix(address: string, toOffset: number): Promise<HashRangeResponse> {
  const client = rawClient(address);
  try {
    return await unary<HashRangeResponse>((callback) => client.hashRange({ fromOffset: 0n, toOffset: BigInt(toOffset) }, new Metadata(), { deadline: Date.now() + 5000 }, callback));
  } finally {
    client.close();
  }
}

test('a follower power-cut during sustained appends restarts on a prefix of the leader log and catches up without gap or duplicate', { timeout: 240_000 }, async (t) => {
  t.diagnostic(`seed ${SEED} (replay with WALD_TEST_SEED=${SEED})`);
  const random = seededRandom(SEED);
  const disk = await PowerCutFs.mount();
  t.after(() => disk.unmount());
  const temp = makeTempDir('wald-repl-power-cut-');
  t.after(() => temp.remove());
  const running = new Set<ServeChild>();
  t.after(async () => {
    for (const child of running) await child.kill().catch(() => undefined);
  });
  const leader = await startServe(join(temp.dir, 'leader'), ['--segment-size-bytes', String(64 * 1024)]);
  running.add(leader);
  const followerDir = join(disk.mountDir, 'follower');
  let follower = await startServe(followerDir, ['--follow', leader.address]);
  running.add(follower);
  const writer = new WalClient(leader.address);
  t.after(() => writer.close());
  let acknowledged = 0;
  let isStopping = false;
  const appends = (async () => {
    for (let batch = 0; batch < MAX_BATCHES && !isStopping; batch++) {
      await writer.append(Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(`v${acknowledged + i}`) })));
      acknowledged += 10;
    }
  })();
  for (let round = 0; round < ROUNDS; round++) {
    // Never beyond what the writer appends in all: a fast writer may be done before the last round.
    await waitForNextOffset(follower.address, Math.min(acknowledged + 100 + random(200), MAX_BATCHES * 10));
    // Read last, so the follower's durable offset can only have grown by the kill.
    const durable = await durableNextOffset(follower.address);
    running.delete(follower);
    await follower.kill();
    const cut = await disk.cut(round % 2 === 0 ? {} : { keepPagesSeed: random(2 ** 30) });
    t.diagnostic(`round ${round}: follower said ${durable} durable; cut lost ${cut.durablePages} pages, kept ${cut.livePages}`);
    const recovered = await startServe(followerDir, ['--follow', NO_LEADER], follower.port);
    running.add(recovered);
    const survived = await durableNextOffset(recovered.address);
    assert.ok(survived >= durable, `round ${round}: the follower said offsets below ${durable} were durable, but only ${survived} survived the power cut`);
    const [own, leaders] = await Promise.all([hashPrefix(recovered.address, durable), hashPrefix(leader.address, durable)]);
    assert.equal(Number(own.recordCount), durable, `round ${round}: the follower holds every record below ${durable}`);
    assert.deepEqual(own, leaders, `round ${round}: the frames below ${durable} are the leader's bytes`);
    const held = await readAll(recovered.address);
    assert.equal(held.length, survived);
    assert.deepEqual(held, await readAll(leader.address).then((all) => all.slice(0, survived)), `round ${round}: the recovered log is a prefix of the leader's`);
    running.delete(recovered);
    await recovered.stop();
    follower = await startServe(followerDir, ['--follow', leader.address], follower.port);
    running.add(follower);
  }
  isStopping = true;
  await appends;
  await waitForNextOffset(follower.address, acknowledged);
  const copy = await readAll(follower.address);
  assert.equal(copy.length, acknowledged);
  copy.forEach((record, i) => {
    assert.equal(record.offset, i, 'no gap, no duplicate');
    assert.equal(record.value, `v${i}`);
  });
  assert.deepEqual(copy, await readAll(leader.address));
});
