/**
 * A follower whose file system loses power: its data directory is on the FUSE pass-through of
 * test/support/power-cut-fs.ts, which drops everything not fsynced (in half the rounds keeping a
 * random part of the unsynced pages, in any order). During sustained appends to the leader the
 * follower is killed with SIGKILL and the power cut at once; restarted on what survived, its log
 * must be a prefix of the leader's (whole frames, the leader's bytes: no torn or foreign record),
 * and it must catch up with neither a gap nor a duplicate. Needs FUSE and python3-fusepy.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { WalClient } from '../../src/client/wal-client.js';
import { PowerCutFs } from '../support/power-cut-fs.js';
import { makeTempDir } from '../support/temp-dir.js';
import { readAll, startServe, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';
import { seededRandom } from './kill9-records.js';

const ROUNDS = 3;
const seedText = process.env['WALD_TEST_SEED'];
const SEED = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);

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
    // Bounded: at most 3000 batches however long the rounds take.
    for (let batch = 0; batch < 3000 && !isStopping; batch++) {
      await writer.append(Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(`v${acknowledged + i}`) })));
      acknowledged += 10;
    }
  })();
  for (let round = 0; round < ROUNDS; round++) {
    await waitForNextOffset(follower.address, acknowledged + 100 + random(200));
    running.delete(follower);
    await follower.kill();
    const cut = await disk.cut(round % 2 === 0 ? {} : { keepPagesSeed: random(2 ** 30) });
    t.diagnostic(`round ${round}: cut lost ${cut.durablePages} pages, kept ${cut.livePages}`);
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
