/**
 * installLeaderSnapshot against a leader's snapshot files (served by a channel that reads them):
 * an incremental chain longer than 64 files is fetched whole and installed; a chain whose base does
 * not sort before it is refused before the READY marker, so nothing is left to resume.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { SNAPSHOT_TRAILER_BYTES } from '../../../src/codec/snapshot-file.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import type { GetSnapshotResponse } from '../../../src/gen/wald/v1/snapshot.js';
import type { LeaderChannel } from '../../../src/replication/leader-channel.js';
import { installLeaderSnapshot, resumeSnapshotInstall } from '../../../src/replication/snapshot-install.js';
import { snapshotInfoMessage } from '../../../src/server/snapshot-info-message.js';
import { listSnapshots } from '../../../src/state/snapshot-reader.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import type { Storage } from '../../../src/storage/storage.js';
import { MemDisk } from '../../support/mem-disk.js';

const LEADER = '/leader';
const FOLLOWER = '/follower';

/** A channel whose GetSnapshot streams the leader's snapshot files as they are on `storage`; `baseOf` may lie about bases. */
function channelOf(storage: Storage, baseOf: (id: string, base: string) => string = (_id, base) => base, mangle: (bytes: Buffer) => Buffer = (bytes) => bytes): LeaderChannel {
  const snapshots = listSnapshots(storage, `${LEADER}/snapshots`).snapshots;
  return {
    getSnapshot(id: string) {
      const info = snapshots.find((s) => s.id === id)!;
      const bytes = storage.readFile(info.path);
      const checksum = createHash('sha256').update(bytes.subarray(0, bytes.length - SNAPSHOT_TRAILER_BYTES)).digest('hex');
      const message = snapshotInfoMessage(info, checksum);
      const messages: GetSnapshotResponse[] = [
        { content: { $case: 'info', value: { ...message, baseSnapshotId: baseOf(id, message.baseSnapshotId) } } },
        { content: { $case: 'chunk', value: mangle(Buffer.from(bytes)) } },
      ];
      return Object.assign((async function* () {
        yield* messages;
      })(), { cancel: () => undefined });
    },
  } as unknown as LeaderChannel;
}

async function leaderWithChain(disk: MemDisk, incrementals: number): Promise<string> {
  const storage = disk.mount();
  const { wal } = await Wal.open({ dir: LEADER, storage, preallocate: false });
  const { keeper } = await StateKeeper.open({ wal, storage });
  try {
    await keeper.append([{ key: Buffer.from('k0'), value: Buffer.from('v0') }]);
    let head = (await keeper.createSnapshot()).id;
    for (let i = 1; i <= incrementals; i++) {
      await keeper.append([{ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) }]);
      head = (await keeper.createSnapshot({ incremental: true })).id;
    }
    return head;
  } finally {
    await keeper.close();
    await wal.close();
  }
}

describe('installLeaderSnapshot', () => {
  test('fetches and installs a chain of a full snapshot and 70 incrementals', async () => {
    const disk = new MemDisk();
    const head = await leaderWithChain(disk, 70);
    const storage = disk.mount();
    const report = await installLeaderSnapshot(channelOf(storage), storage, FOLLOWER, head, { frameSeed: 7, epochHistory: [] }, pino({ level: 'silent' }));
    assert.equal(report.filesFetched, 71);
    const { wal } = await Wal.open({ dir: FOLLOWER, storage, preallocate: false });
    const { keeper } = await StateKeeper.open({ wal, storage });
    try {
      assert.equal(wal.firstOffset, 71);
      assert.equal((await keeper.get(Buffer.from('k70')))?.value.toString(), 'v70');
      assert.equal((await keeper.get(Buffer.from('k0')))?.value.toString(), 'v0');
    } finally {
      await keeper.close();
      await wal.close();
    }
  });

  test('a base that does not sort before its snapshot is refused before READY: nothing to resume, the old log stays', async () => {
    const disk = new MemDisk();
    const head = await leaderWithChain(disk, 2);
    const storage = disk.mount();
    // The leader names the head as its own base: a loop.
    const looping = channelOf(storage, (id, base) => (base === '' ? base : id));
    await assert.rejects(installLeaderSnapshot(looping, storage, FOLLOWER, head, { frameSeed: 7, epochHistory: [] }, pino({ level: 'silent' })), (error: unknown) => isWalError(error, 'WAL_CORRUPTION'));
    assert.equal(await resumeSnapshotInstall(storage, FOLLOWER), undefined, 'no READY marker was written');
  });

  test('a snapshot whose bytes fail the checksum the leader sent is refused before READY; the old log and state stay', async () => {
    const disk = new MemDisk();
    const head = await leaderWithChain(disk, 2);
    const storage = disk.mount();
    const { wal: own } = await Wal.open({ dir: FOLLOWER, storage, preallocate: false });
    const { keeper: ownKeeper } = await StateKeeper.open({ wal: own, storage });
    await ownKeeper.append([{ key: Buffer.from('own'), value: Buffer.from('x') }]);
    await ownKeeper.close();
    await own.close();
    // One byte of the body flipped on the way; the info's checksum is the file's.
    const flipping = channelOf(storage, undefined, (bytes) => {
      bytes[100] = bytes[100]! ^ 0xff;
      return bytes;
    });
    await assert.rejects(
      installLeaderSnapshot(flipping, storage, FOLLOWER, head, { frameSeed: 7, epochHistory: [] }, pino({ level: 'silent' })),
      (error: unknown) => isWalError(error, 'WAL_CORRUPTION') && error.details['reason'] === 'checksum mismatch',
    );
    assert.equal(await resumeSnapshotInstall(storage, FOLLOWER), undefined, 'no READY marker was written');
    const { wal } = await Wal.open({ dir: FOLLOWER, storage, preallocate: false });
    const { keeper } = await StateKeeper.open({ wal, storage });
    try {
      assert.deepEqual([wal.firstOffset, wal.nextOffset], [0, 1], 'the old log');
      assert.equal((await keeper.get(Buffer.from('own')))?.value.toString(), 'x');
      assert.equal(await keeper.get(Buffer.from('k2')), undefined, 'nothing of the leader\'s state');
    } finally {
      await keeper.close();
      await wal.close();
    }
  });

  for (const [where, snapshotDir] of [['a snapshot directory of its own inside the data directory', 'snaps'], ['an absolute snapshot directory elsewhere', '/elsewhere/snaps']] as const) {
    test(`installs into the follower's snapshot directory: ${where}`, async () => {
      const disk = new MemDisk();
      const head = await leaderWithChain(disk, 2);
      const storage = disk.mount();
      const resolved = snapshotDir.startsWith('/') ? snapshotDir : `${FOLLOWER}/${snapshotDir}`;
      // The follower's own log, and a snapshot of it in that directory: the install replaces both.
      const { wal: own } = await Wal.open({ dir: FOLLOWER, storage, preallocate: false });
      const { keeper: ownKeeper } = await StateKeeper.open({ wal: own, storage, options: { snapshotDir } });
      await ownKeeper.append([{ key: Buffer.from('stale'), value: Buffer.from('x') }]);
      await ownKeeper.createSnapshot();
      await ownKeeper.close();
      await own.close();
      await installLeaderSnapshot(channelOf(storage), storage, FOLLOWER, head, { frameSeed: 7, epochHistory: [] }, pino({ level: 'silent' }), resolved);
      const { wal } = await Wal.open({ dir: FOLLOWER, storage, preallocate: false });
      const { keeper, report } = await StateKeeper.open({ wal, storage, options: { snapshotDir } });
      try {
        assert.equal(report.snapshot?.id, head, 'the leader\'s chain, from the configured directory');
        assert.equal((await keeper.get(Buffer.from('k2')))?.value.toString(), 'v2');
        assert.equal(await keeper.get(Buffer.from('stale')), undefined, 'nothing of the follower\'s own state');
      } finally {
        await keeper.close();
        await wal.close();
      }
    });
  }
});
